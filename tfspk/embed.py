"""Embed audio files with a trained export.

    python -m tfspk.embed --model=exports/spk INPUTS... --output=emb.npz [--vad]

INPUTS are audio files, directories (every audio file below them, recursively), globs,
or manifest TSVs (`path<TAB>speaker[<TAB>utt_id]`, see tfspk.corpora.manifest). The
output is the `.npz` eval.extract writes (`ids`, `embeddings`, `speakers`), or, when it
ends with `.ark`, a Kaldi ark with its `.scp` beside it (read with kaldiio).

Resumable: progress is saved atomically to `<output>.partial.npz` every
`--save_every` utterances; a rerun skips the ids already there (and those of an
existing output) and says how many it skipped.
"""
from __future__ import annotations

import glob
import os
import sys
from typing import Iterable, Optional

import numpy as np
from absl import app, flags

from tfspk import extras
from tfspk.shards.cli import user_errors

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".sph", ".m4a", ".aac", ".mp4")
MANIFEST_EXTENSIONS = (".tsv",)


def _audio_id(path: str, root: Optional[str]) -> str:
    relative = os.path.relpath(path, root) if root else path
    return os.path.splitext(relative)[0].replace(os.sep, "/")


def collect_inputs(inputs: Iterable[str]) -> list[tuple[str, str, str]]:
    """(utt_id, path, speaker) for every input; raises ValueError on a duplicate id."""
    from tfspk.corpora import manifest

    items = []
    for item in inputs:
        if os.path.isdir(item):
            for directory, _, names in sorted(os.walk(item)):
                for name in sorted(names):
                    if name.lower().endswith(AUDIO_EXTENSIONS):
                        path = os.path.join(directory, name)
                        items.append((_audio_id(path, item), path, ""))
        elif os.path.isfile(item) and item.lower().endswith(MANIFEST_EXTENSIONS):
            items += [(u.utt_id, u.path, u.speaker) for u in manifest.read_manifest(item)]
        elif os.path.isfile(item):
            items.append((_audio_id(item, None), item, ""))
        else:
            matches = sorted(p for p in glob.glob(item, recursive=True) if os.path.isfile(p))
            if not matches:
                raise FileNotFoundError(f"{item}: no such file, directory or matching glob")
            items += [(_audio_id(p, None), p, "") for p in matches]
    seen: dict[str, str] = {}
    for utt_id, path, _ in items:
        if utt_id in seen and seen[utt_id] != path:
            raise ValueError(f"utterance id {utt_id!r} given twice ({seen[utt_id]}, {path})")
        seen[utt_id] = path
    unique = {}
    for utt_id, path, speaker in items:
        unique.setdefault(utt_id, (utt_id, path, speaker))
    return list(unique.values())


def partial_path(output: str) -> str:
    return output + ".partial.npz"


def _atomic_npz(path: str, ids, embeddings, speakers) -> None:
    from tfspk.scoring import embeddings as embeddings_io

    temporary = f"{path}.tmp{os.getpid()}.npz"
    embeddings_io.save_embeddings(temporary, ids, embeddings, speakers)
    with open(temporary, "rb") as stream:
        os.fsync(stream.fileno())
    os.replace(temporary, path)


def _read_done(output: str):
    """(ids, embeddings, speakers) already embedded, from the partial or final output."""
    from tfspk.scoring import embeddings as embeddings_io

    for path in (partial_path(output), output):
        if os.path.isfile(path) and path.endswith(".npz"):
            done = embeddings_io.load_embeddings(path)
            speakers = (done.speakers.tolist() if done.speakers is not None
                        else [""] * len(done.ids))
            return done.ids.tolist(), list(done.embeddings), speakers
    if output.endswith(".ark") and os.path.isfile(output[:-4] + ".scp"):
        kaldiio = extras.require("kaldiio", "kaldi", "Kaldi ark/scp output")

        ids, rows = [], []
        for key, value in kaldiio.load_scp(output[:-4] + ".scp").items():
            ids.append(key)
            rows.append(np.asarray(value, np.float32))
        return ids, rows, [""] * len(ids)
    return [], [], []


def write_output(output: str, ids, embeddings, speakers) -> None:
    """npz (eval.embeddings format) or, for `.ark`, Kaldi ark + scp via kaldiio."""
    directory = os.path.dirname(output)
    if directory:
        os.makedirs(directory, exist_ok=True)
    if output.endswith(".ark"):
        kaldiio = extras.require("kaldiio", "kaldi", "Kaldi ark/scp output")

        bad = [i for i in ids if not i or any(c.isspace() for c in i)]
        if bad:
            raise ValueError(f"Kaldi keys cannot hold whitespace: {bad[:3]}")
        scp = output[:-4] + ".scp"
        temp_ark, temp_scp = output + ".tmp", scp + ".tmp"
        with kaldiio.WriteHelper(f"ark,scp:{temp_ark},{temp_scp}") as writer:
            for utt_id, row in zip(ids, embeddings):
                writer(utt_id, np.asarray(row, np.float32))
        # The scp names the temporary ark; point it at the final one.
        with open(temp_scp, encoding="utf-8") as stream:
            text = stream.read().replace(temp_ark, output)
        with open(temp_scp, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temp_ark, output)
        os.replace(temp_scp, scp)
    else:
        _atomic_npz(output, ids, np.stack(embeddings), speakers)


def embed_inputs(model, inputs: Iterable[str], output: str, batch_size: int = 16,
                 save_every: int = 64, progress: bool = True) -> dict:
    """Embeds every input not already in `output`/its partial file; returns counts."""
    from tqdm import tqdm

    items = collect_inputs(inputs)
    ids, rows, speakers = _read_done(output)
    done = set(ids)
    todo = [item for item in items if item[0] not in done]
    skipped = len(items) - len(todo)
    bar = tqdm(total=len(todo), desc="embedding", unit="utt", disable=not progress,
               file=sys.stderr)
    since_save = 0
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        waveforms = [model.load_waveform(path) for _, path, _ in chunk]
        embeddings = model.embed_waveforms(waveforms, batch_size, [p for _, p, _ in chunk])
        for (utt_id, _, speaker), row in zip(chunk, embeddings):
            ids.append(utt_id)
            rows.append(row)
            speakers.append(speaker)
        bar.update(len(chunk))
        since_save += len(chunk)
        if since_save >= save_every:
            _atomic_npz(partial_path(output), ids, np.stack(rows), speakers)
            since_save = 0
    bar.close()
    if not ids:
        raise ValueError("no inputs to embed")
    if todo or not os.path.isfile(output):
        write_output(output, ids, rows, speakers)
    if os.path.isfile(partial_path(output)):
        os.remove(partial_path(output))
    return {"embedded": len(todo), "skipped": skipped, "total": len(ids)}


def define_flags(flag_values=flags.FLAGS):
    """CLI flags; defined on demand so importing this module defines none."""
    flags.DEFINE_string("model", None, "Export directory (BASE/NAME or BASE/NAME/<version>).",
                        flag_values=flag_values)
    flags.DEFINE_string("output", None, "Output .npz, or .ark (Kaldi, .scp beside).",
                        flag_values=flag_values)
    flags.DEFINE_integer("batch_size", 16, "Utterances per batch.", lower_bound=1,
                         flag_values=flag_values)
    flags.DEFINE_integer("save_every", 64, "Save progress every N utterances.",
                         lower_bound=1, flag_values=flag_values)
    flags.DEFINE_bool("vad", False, "Drop non-speech (energy VAD) before embedding.",
                      flag_values=flag_values)
    flags.mark_flags_as_required(["model", "output"], flag_values=flag_values)


def run_from_flags(argv, flag_values=flags.FLAGS) -> dict:
    from tfspk.inference import SpeakerModel

    if len(argv) < 2:
        raise app.UsageError("give at least one input (file, directory, glob or manifest)")
    if not (flag_values.output.endswith(".npz") or flag_values.output.endswith(".ark")):
        raise app.UsageError(f"--output must end with .npz or .ark, got {flag_values.output}")
    if flag_values.output.endswith(".ark"):  # before any work, not at the end
        extras.require("kaldiio", "kaldi", f"--output={flag_values.output} (Kaldi ark/scp)")
    model = SpeakerModel.load_for_cli(flag_values.model, vad=flag_values.vad)
    return embed_inputs(model, argv[1:], flag_values.output, flag_values.batch_size,
                        flag_values.save_every)


@user_errors
def main(argv, flag_values=flags.FLAGS):
    counts = run_from_flags(argv, flag_values)
    print(f"embedded {counts['embedded']}, skipped {counts['skipped']} already done; "
          f"{counts['total']} embeddings in {flag_values.output}")


if __name__ == "__main__":
    from tfspk import flagfiles

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
