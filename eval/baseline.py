"""A trivial speaker baseline: per-utterance mean and standard deviation of MFCCs.

It anchors every results table: a learned embedding that does not beat it has not
learned speakers. Same front end as the models (`tfspk.features.kaldi_mfcc`, paper
options: 40 mel bins, 40 cepstra, 25/10 ms), no mean normalisation (the mean *is* the
feature).

    python -m eval.baseline --input_format=voxceleb --input=$VOX1/test --output=base.npz
"""
from __future__ import annotations

import sys

import numpy as np
import tensorflow as tf
from absl import app, flags
from tqdm import tqdm

from tfspk import features


def mfcc_mean_std(waveform: np.ndarray, sample_rate: int = 16000, **mfcc_options) -> np.ndarray:
    """[mean, std] over frames of the utterance's MFCCs: a (2 x num_ceps,) vector."""
    options = {"num_mel_bins": 40, "num_ceps": 40} | mfcc_options
    frames = features.kaldi_mfcc(tf.constant(waveform, tf.float32), sample_rate,
                                 **options).numpy()
    return np.concatenate([frames.mean(axis=0), frames.std(axis=0)]).astype(np.float32)


def baseline_embeddings(utterances, sample_rate: int = 16000, progress: bool = True):
    """(ids, speakers, [N, 2C]) for `eval.extract.read_corpus`-style utterances."""
    ids, speakers, rows = [], [], []
    for utt in tqdm(utterances, desc="MFCC mean+std", unit="utt", disable=not progress,
                    file=sys.stderr):
        ids.append(utt.utt_id)
        speakers.append(utt.speaker)
        rows.append(mfcc_mean_std(utt.waveform, sample_rate))
    return ids, speakers, np.stack(rows) if rows else np.zeros((0, 80), np.float32)


def define_flags(flag_values=flags.FLAGS):
    from eval.extract import define_corpus_flags

    define_corpus_flags(flag_values)


def main(argv, flag_values=flags.FLAGS):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from eval.extract import read_corpus
    from tfspk.scoring import embeddings as embeddings_io

    values = flag_values
    ids, speakers, matrix = baseline_embeddings(
        read_corpus(values.input_format, values.input, values.sample_rate), values.sample_rate)
    embeddings_io.save_embeddings(values.output, ids, matrix, speakers)
    print(f"wrote {len(ids)} baseline embeddings to {values.output}")


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
