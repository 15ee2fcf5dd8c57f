"""Embeddings from an exported SavedModel for every utterance of a corpus.

    python -m eval.extract --saved_model=exports/spk/1 --input_format=voxceleb \
        --input=$VOX1/test --output=test.npz

Utterances are sorted by length and batched with padding, so each batch wastes little
compute on padding; the model's `serving_default` signature takes `waveform` and
`lengths`. The npz holds `ids`, `embeddings` and `speakers` (no pickles).
"""
from __future__ import annotations

import dataclasses
import sys
from typing import Iterator

import numpy as np
import tensorflow as tf
from absl import app, flags
from tqdm import tqdm

INPUT_FORMATS = ("voxceleb", "kaldi", "timit", "manifest", "tfrecords")


@dataclasses.dataclass
class LoadedUtterance:
    utt_id: str
    speaker: str
    waveform: np.ndarray


def read_corpus(input_format: str, path: str, sample_rate: int = 16000
                ) -> Iterator[LoadedUtterance]:
    """Yields every utterance of a corpus as a float32 waveform at `sample_rate`."""
    if input_format == "tfrecords":
        from tfspk import schema

        files = sorted(tf.io.gfile.glob(path))
        if not files:
            raise FileNotFoundError(f"{path}: no TFRecord shards match")
        compression = "GZIP" if files[0].endswith(".gz") else ""
        for record in tf.data.TFRecordDataset(files, compression_type=compression):
            example = schema.parse_example_numpy(record.numpy())
            if example["sample_rate"] != sample_rate:
                raise ValueError(f"{example['utt_id']}: sample rate {example['sample_rate']} "
                                 f"!= model's {sample_rate}")
            yield LoadedUtterance(example["utt_id"], example["speaker"],
                                  example["pcm16"].astype(np.float32) / 32768.0)
        return
    from tfspk import audio
    from tfspk.corpora import kaldi, manifest, timit, voxceleb

    readers = {"voxceleb": voxceleb.read_voxceleb, "kaldi": kaldi.read_data_dir,
               "timit": timit.read_timit, "manifest": manifest.read_manifest}
    if input_format not in readers:
        raise ValueError(f"unknown input format {input_format!r}; one of {INPUT_FORMATS}")
    for utt in readers[input_format](path):
        waveform, _ = audio.load_audio(utt.path, sample_rate, start=utt.start, end=utt.end)
        yield LoadedUtterance(utt.utt_id, utt.speaker, waveform)


def _embed_window(serve, window, batch_size, max_batch_samples, output_key):
    """Embeds a list of utterances, batching them shortest first; returns [n, D]."""
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
        lengths = np.array([len(w) for w in rows], np.int32)
        batch = np.zeros((len(rows), lengths.max()), np.float32)
        for r, w in enumerate(rows):
            batch[r, :len(w)] = w
        try:
            output = serve(waveform=tf.constant(batch), lengths=tf.constant(lengths))
        except tf.errors.InvalidArgumentError as error:
            ids = [window[i].utt_id for i in order[start:end]]
            raise ValueError(f"utterances {ids}: {error.message}") from error
        values = output[output_key].numpy()
        for r, i in enumerate(order[start:end]):
            embeddings[i] = values[r]
        start = end
    return np.stack(embeddings).astype(np.float32)


def extract_embeddings(saved_model: str, utterances, batch_size: int = 16,
                       max_batch_samples: int = 16000 * 240, window_size: int = 2048,
                       signature: str = "serving_default", output_key: str = "embedding",
                       progress: bool = True):
    """Runs the SavedModel over `utterances`; returns (ids, speakers, [N, D] float32).

    Utterances stream through in windows of `window_size`, each sorted by length before
    batching, so memory stays bounded on VoxCeleb-sized corpora while padding stays small.
    """
    model = tf.saved_model.load(saved_model)
    if signature not in model.signatures:
        raise ValueError(f"{saved_model}: no signature {signature!r}; "
                         f"has {sorted(model.signatures)}")
    serve = model.signatures[signature]
    ids, speakers, chunks, window = [], [], [], []
    bar = tqdm(desc="embedding", unit="utt", disable=not progress, file=sys.stderr)

    def flush():
        chunks.append(_embed_window(serve, window, batch_size, max_batch_samples, output_key))
        bar.update(len(window))
        window.clear()

    for utt in utterances:
        ids.append(utt.utt_id)
        speakers.append(utt.speaker)
        window.append(utt)
        if len(window) >= window_size:
            flush()
    if window:
        flush()
    bar.close()
    matrix = np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)
    return ids, speakers, matrix


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
    flags.mark_flag_as_required("saved_model", flag_values=flag_values)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from eval import embeddings as embeddings_io

    FLAGS = flags.FLAGS
    ids, speakers, matrix = extract_embeddings(
        FLAGS.saved_model, read_corpus(FLAGS.input_format, FLAGS.input, FLAGS.sample_rate),
        batch_size=FLAGS.batch_size)
    embeddings_io.save_embeddings(FLAGS.output, ids, matrix, speakers)
    print(f"wrote {len(ids)} embeddings of dimension {matrix.shape[1]} to {FLAGS.output}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
