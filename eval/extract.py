"""Embeddings from an exported SavedModel for every utterance of a corpus.

    python -m eval.extract --saved_model=exports/spk/1 --input_format=voxceleb \
        --input=$VOX1/test --output=test.npz

Utterances are sorted by length and batched with padding, so each batch wastes little
compute on padding; the model's `serving_default` signature takes `waveform` and
`lengths`. The npz holds `ids`, `embeddings` and `speakers` (no pickles).

Every utterance passes `tfspk.audio.check_audio` (the build's and inference's check:
empty, NaN/Inf, silent or DC-only audio is refused) before it is embedded. One bad
utterance (missing, unreadable, silent, refused by the model) does not stop the others:
it is listed in `<output>.rejects.tsv` beside the npz (`path<TAB>reason<TAB>utt_id`, as
the shard build writes) and left out of the npz. The exit status is 1 when more than
--max_reject_fraction of the utterances were rejected (default 0: an evaluation must not
silently miss utterances), 2 for a user error (`error: ...` naming the file or flag).
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import sys
from typing import Iterator

import numpy as np
import tensorflow as tf
from absl import app, flags
from tqdm import tqdm

from tfspk.audio import reject_reason

INPUT_FORMATS = ("voxceleb", "kaldi", "timit", "manifest", "tfrecords")


@dataclasses.dataclass
class LoadedUtterance:
    utt_id: str
    speaker: str
    waveform: np.ndarray
    path: str = ""  # the file it came from (named in errors and rejects), if any
    # Its place in the corpus: the reader thread reports load failures ahead of the
    # embedding loop, so rejects are put back in corpus order by this.
    position: int = -1


@dataclasses.dataclass(frozen=True)
class Reject:
    """An utterance left out: `reason` is `<code>: <detail>` (AudioError's code)."""

    utt_id: str
    path: str
    reason: str
    position: int = -1  # the utterance's place in the corpus (LoadedUtterance.position)


def read_corpus(input_format: str, path: str, sample_rate: int = 16000,
                rejects: list | None = None) -> Iterator[LoadedUtterance]:
    """Yields every utterance of a corpus as a float32 waveform at `sample_rate`.

    With a `rejects` list, an utterance that cannot be loaded (missing or unreadable
    file, wrong sample rate in a shard) is appended to it as a `Reject` and skipped;
    without one, its AudioError (naming the file) is raised.
    """
    from tfspk import audio

    positions = itertools.count()

    def refuse(error, utt_id, where):
        if rejects is None:
            raise error
        rejects.append(Reject(utt_id, where, reject_reason(error), next(positions)))

    if input_format == "tfrecords":
        from tfspk import schema

        files = sorted(tf.io.gfile.glob(path))
        if not files:
            raise FileNotFoundError(f"--input={path}: no TFRecord shards match")
        from tfspk.shards.verify import SHARD_NAME_RE
        wrong = [f for f in files if not SHARD_NAME_RE.search(f)]
        if wrong:
            raise ValueError(f"--input={path}: matches files that are not TFRecord shards: "
                             f"{', '.join(wrong[:5])}")
        for shard in files:
            compression = "GZIP" if shard.endswith(".gz") else ""
            try:
                for record in tf.data.TFRecordDataset(shard, compression_type=compression):
                    example = schema.parse_example_numpy(record.numpy())
                    if example["sample_rate"] != sample_rate:
                        refuse(audio.AudioError(
                            f"{example['utt_id']}: sample rate {example['sample_rate']} "
                            f"!= model's {sample_rate}", shard, "sample_rate"),
                            example["utt_id"], shard)
                        continue
                    yield LoadedUtterance(example["utt_id"], example["speaker"],
                                          audio.int16_to_float(example["pcm16"]), shard,
                                          next(positions))
            except tf.errors.OpError as error:
                message = " ".join(str(error.message).split())
                raise ValueError(f"{shard}: unreadable shard ({message})") from None
        return
    from tfspk.corpora import manifest
    from tfspk.shards import build

    if input_format not in INPUT_FORMATS:
        raise ValueError(f"unknown input format {input_format!r}; one of {INPUT_FORMATS}")
    if input_format == "manifest" and rejects is None:
        corpus = manifest.read_manifest(path)  # a missing file is an error up front
    else:
        # The shard build's reader (Kaldi segments in samples at `sample_rate`); a missing
        # manifest file becomes a reject.
        corpus = build.read_corpus(input_format, path, sample_rate)
    for utt in corpus:
        try:
            waveform, _ = audio.load_audio(utt.path, sample_rate, start=utt.start,
                                           end=utt.end)
        except audio.AudioError as error:
            refuse(error, utt.utt_id, utt.path)
            continue
        yield LoadedUtterance(utt.utt_id, utt.speaker, waveform, utt.path, next(positions))


def _embed_batch(serve, rows, output_keys):
    """{key: [len(rows), D_key]} for one padded batch."""
    lengths = np.array([len(w) for w in rows], np.int32)
    batch = np.zeros((len(rows), lengths.max()), np.float32)
    for r, w in enumerate(rows):
        batch[r, :len(w)] = w
    output = serve(waveform=tf.constant(batch), lengths=tf.constant(lengths))
    missing = [key for key in output_keys if key not in output]
    if missing:
        raise ValueError(f"the signature has no output(s) {missing}; it has "
                         f"{sorted(output)}")
    return {key: output[key].numpy() for key in output_keys}


def _embed_window(serve, window, batch_size, max_batch_samples, output_keys,
                  rejects=None):
    """Embeds a list of utterances, batching them shortest first; returns
    {key: [n, D_key]} and the indices embedded (all, unless `rejects` took some the
    model refused)."""
    order = sorted(range(len(window)), key=lambda i: len(window[i].waveform))
    embeddings: list[np.ndarray | None] = [None] * len(window)
    start = 0
    while start < len(order):
        # The longest row decides the padded width: cap rows x width to bound memory.
        end = start + 1
        while (end < len(order) and end - start < batch_size
               and (end - start + 1) * len(window[order[end]].waveform) <= max_batch_samples):
            end += 1
        rows = [window[i].waveform for i in order[start:end]]
        try:
            batch = _embed_batch(serve, rows, output_keys)
            values = [{key: batch[key][r] for key in output_keys} for r in range(len(rows))]
        except tf.errors.InvalidArgumentError as error:
            ids = [window[i].utt_id for i in order[start:end]]
            if rejects is None:
                raise ValueError(f"utterances {ids}: {error.message}") from error
            values = [None] * len(rows)
            for r, i in enumerate(order[start:end]):  # find the one(s) the model refuses
                try:
                    single_row = _embed_batch(serve, [rows[r]], output_keys)
                    values[r] = {key: single_row[key][0] for key in output_keys}
                except tf.errors.InvalidArgumentError as single:
                    message = " ".join(str(single.message).split())
                    rejects.append(Reject(window[i].utt_id, window[i].path,
                                          f"model: {message}", window[i].position))
        for r, i in enumerate(order[start:end]):
            embeddings[i] = values[r]
        start = end
    kept = [i for i, e in enumerate(embeddings) if e is not None]
    if not kept:
        return {key: np.zeros((0, 0), np.float32) for key in output_keys}, kept
    return {key: np.stack([embeddings[i][key] for i in kept]).astype(np.float32)
            for key in output_keys}, kept


def _prefetched(items: Iterator, depth: int) -> Iterator:
    """`items`, produced by a background thread up to `depth` ahead, so reading and
    decoding the next utterances overlaps the model running on the current ones. An
    exception raised while producing is re-raised here, at the item it replaced."""
    if depth <= 0:
        yield from items
        return
    import queue
    import threading

    buffer: queue.Queue = queue.Queue(maxsize=depth)
    done, stop = object(), threading.Event()

    def produce():
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put((True, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            buffer.put((False, error))
            return
        buffer.put((True, done))

    thread = threading.Thread(target=produce, name="extract-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = buffer.get()
            if not ok:
                raise item
            if item is done:
                return
            yield item
    finally:
        stop.set()


def extract_embeddings(saved_model: str, utterances, batch_size: int = 16,
                       max_batch_samples: int = 16000 * 240, window_size: int = 2048,
                       signature: str | None = None,
                       output_key: str | tuple[str, ...] | list[str] = "embedding",
                       progress: bool = True, rejects: list | None = None,
                       sample_rate: int = 16000, min_seconds: float = 0.0,
                       prefetch: int | None = None):
    """Runs the SavedModel over `utterances`; returns (ids, speakers, [N, D] float32).

    Utterances stream through in windows of `window_size`, each sorted by length before
    batching, so memory stays bounded on VoxCeleb-sized corpora while padding stays small.
    A background thread reads the next `prefetch` utterances (default: a window's worth)
    while the model runs. Each utterance is first checked with `tfspk.audio.check_audio`
    (at `sample_rate`, `min_seconds`). With a `rejects` list, an utterance that fails the
    check or that the model refuses is appended to it as a `Reject` and left out of the
    result; without one, the first such utterance raises a ValueError naming it.

    Several layers in one pass: `output_key` a list of the `embeddings` signature's
    outputs (e.g. ["fc1", "fc2"]; `signature` defaults to it then) returns
    (ids, speakers, {layer: [N, D_layer]}), every layer from the same run of the network.
    """
    from tfspk import audio
    from tfspk.export.archive import ALL_EMBEDDINGS

    several = not isinstance(output_key, str)
    output_keys = tuple(output_key) if several else (output_key,)
    if not output_keys:
        raise ValueError("no output layers requested")
    if signature is None:
        signature = ALL_EMBEDDINGS if several else "serving_default"
    model = tf.saved_model.load(saved_model)
    if signature not in model.signatures:
        raise ValueError(f"{saved_model}: no signature {signature!r}; "
                         f"has {sorted(model.signatures)}")
    serve = model.signatures[signature]
    ids, speakers, chunks, window = [], [], [], []
    bar = tqdm(desc="embedding", unit="utt", disable=not progress, file=sys.stderr)

    def flush():
        matrices, kept = _embed_window(serve, window, batch_size, max_batch_samples,
                                       output_keys, rejects)
        if kept:
            chunks.append(matrices)
        ids.extend(window[i].utt_id for i in kept)
        speakers.extend(window[i].speaker for i in kept)
        bar.update(len(window))
        window.clear()

    for utt in _prefetched(iter(utterances), window_size if prefetch is None else prefetch):
        try:
            audio.check_audio(utt.waveform, sample_rate, utt.path or utt.utt_id,
                              min_seconds=min_seconds)
        except audio.AudioError as error:
            if rejects is None:
                raise
            rejects.append(Reject(utt.utt_id, utt.path, reject_reason(error), utt.position))
            bar.update(1)
            continue
        window.append(utt)
        if len(window) >= window_size:
            flush()
    if window:
        flush()
    bar.close()
    matrices = {key: (np.concatenate([chunk[key] for chunk in chunks]) if chunks
                      else np.zeros((0, 0), np.float32)) for key in output_keys}
    return ids, speakers, (matrices if several else matrices[output_keys[0]])


def define_corpus_flags(flag_values=flags.FLAGS):
    """--input_format, --input, --output, --sample_rate: shared by every corpus-to-npz CLI."""
    flags.DEFINE_enum("input_format", None, list(INPUT_FORMATS), "Corpus format.",
                      flag_values=flag_values)
    flags.DEFINE_string("input", None, "Corpus root, Kaldi data dir, manifest TSV or "
                        "shard glob.", flag_values=flag_values)
    flags.DEFINE_string("output", None, "Output .npz (ids, embeddings, speakers).",
                        flag_values=flag_values)
    flags.DEFINE_integer("sample_rate", 16000, "Sample rate of the model / features.",
                         flag_values=flag_values)
    flags.mark_flags_as_required(["input_format", "input", "output"],
                                 flag_values=flag_values)


def define_flags(flag_values=flags.FLAGS):
    """CLI flags; defined on demand so importing this module defines none."""
    define_corpus_flags(flag_values)
    flags.DEFINE_string("saved_model", None, "Exported SavedModel directory "
                        "(BASE/NAME/<version>).", flag_values=flag_values)
    flags.DEFINE_integer("batch_size", 16, "Utterances per batch.", lower_bound=1,
                         flag_values=flag_values)
    flags.DEFINE_float("max_reject_fraction", 0.0, "Exit 1 when more than this fraction "
                       "of the utterances is rejected (the npz and rejects list are still "
                       "written).", lower_bound=0.0, upper_bound=1.0, flag_values=flag_values)
    flags.DEFINE_float("min_duration", 0.0, "Reject utterances shorter than this (s); the "
                       "model's own minimum applies too.", lower_bound=0.0,
                       flag_values=flag_values)
    flags.DEFINE_list("layers", [], "Embedding layers to extract in one pass (e.g. "
                      "fc1,fc2) through the export's `embeddings` signature; --output then "
                      "names one npz per layer with {layer} (e.g. emb/{layer}/dev.npz). "
                      "Empty: the export's serving_default embedding.",
                      flag_values=flag_values)
    flags.mark_flag_as_required("saved_model", flag_values=flag_values)
    flags.register_validator("sample_rate", lambda v: v is not None and v > 0,
                             message="--sample_rate must be > 0", flag_values=flag_values)


def layer_outputs(output: str, layers: list[str]) -> dict:
    """{layer: npz path} for --layers (`{layer}` in --output filled in); {None: output}
    without layers. Raises ValueError when several layers would share one file."""
    if not layers:
        if "{layer}" in output:
            raise ValueError(f"--output={output}: {{layer}} needs --layers")
        return {None: output}
    if len(layers) > 1 and "{layer}" not in output:
        raise ValueError(f"--output={output}: with --layers={','.join(layers)} it must "
                         "contain {layer} (one npz per layer)")
    return {layer: output.replace("{layer}", layer) for layer in layers}


def rejects_path(output: str) -> str:
    """`<output without .npz>.rejects.tsv`, beside the npz."""
    stem = output[:-4] if output.endswith(".npz") else output
    return stem + ".rejects.tsv"


def _user_errors(main):
    from tfspk.shards.cli import user_errors
    return user_errors(main)


@_user_errors
def main(argv, flag_values=flags.FLAGS):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from eval import embeddings as embeddings_io
    from tfspk.shards.metadata import write_rejects_tsv

    FLAGS = flag_values  # noqa: N806 - the flags this call reads
    if not os.path.isdir(FLAGS.saved_model):
        raise ValueError(f"--saved_model={FLAGS.saved_model}: not a directory")
    layers = list(dict.fromkeys(FLAGS.layers))
    outputs = layer_outputs(FLAGS.output, layers)
    rejects: list[Reject] = []
    utterances = read_corpus(FLAGS.input_format, FLAGS.input, FLAGS.sample_rate, rejects)
    ids, speakers, result = extract_embeddings(
        FLAGS.saved_model, utterances, batch_size=FLAGS.batch_size, rejects=rejects,
        sample_rate=FLAGS.sample_rate, min_seconds=FLAGS.min_duration,
        output_key=layers if layers else "embedding")
    matrices = result if layers else {None: result}
    rejects.sort(key=lambda r: r.position)  # corpus order (stable for unnumbered ones)
    total = len(ids) + len(rejects)
    for layer, output in outputs.items():
        listed = rejects_path(output)
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        write_rejects_tsv(listed, [(r.path, r.reason, r.utt_id) for r in rejects])
        if not ids:
            raise ValueError(f"--input={FLAGS.input}: all {total} utterances were rejected; "
                             f"nothing written to {output}; reasons in {listed}")
        embeddings_io.save_embeddings(output, ids, matrices[layer], speakers)
        print(f"wrote {len(ids)} embeddings of dimension {matrices[layer].shape[1]} to "
              f"{output}; {len(rejects)} rejected (listed in {listed})")
    fraction = len(rejects) / total
    if fraction > FLAGS.max_reject_fraction:
        print(f"error: {len(rejects)} of {total} utterances rejected "
              f"({100 * fraction:.2f}% > --max_reject_fraction "
              f"{100 * FLAGS.max_reject_fraction:.2f}%); see {listed}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
