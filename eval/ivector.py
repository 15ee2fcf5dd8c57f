"""The i-vector system (Kaldi's anchor for Table 4): UBM, T matrix, extraction.

    python -m eval.ivector --stage=train_ubm --input_format=voxceleb --input=$TRAIN \
        --ubm=exp/ubm.npz --num_components=512
    python -m eval.ivector --stage=train_tv ... --ubm=exp/ubm.npz --tv=exp/tv.npz
    python -m eval.ivector --stage=extract ... --ubm=exp/ubm.npz --tv=exp/tv.npz \
        --output=test.npz

Front end (Kaldi sre-style): `tfspk.features.kaldi_mfcc` with 30 mel bins and 20
cepstra (`--num_ceps`), energy VAD on the raw MFCCs (Kaldi VoxCeleb vad.conf: threshold 5.5, mean scale 0.5), deltas and
delta-deltas (Kaldi add-deltas, window 2; `--deltas=false` to skip) -> 60 dims,
per-utterance CMN (`apply_cmn`), voiced frames only. The extract stage writes the
`eval.embeddings` npz (ids, embeddings, speakers) that eval.score reads. Models are npz
with a JSON sidecar.

Train the UBM and T on data disjoint from the utterances you test: the i-vectors of T's
own training utterances are whitened as a set, and a backend fitted on some of them is
biased against the rest (worse than chance on LibriSpeech halves; see
`tfspk.ivector.total_variability.MIN_UTTERANCES_PER_DIM`).
"""
from __future__ import annotations

import sys

import numpy as np
import tensorflow as tf
from absl import app, flags
from tqdm import tqdm

from tfspk import features

STAGES = ("train_ubm", "train_tv", "extract")


def add_deltas(frames: np.ndarray, order: int = 2, window: int = 2) -> np.ndarray:
    """Kaldi add-deltas: regression deltas over +-window frames (edges replicated)."""
    out = [frames]
    current = frames
    denom = 2 * sum(k * k for k in range(1, window + 1))
    for _ in range(order):
        padded = np.pad(current, ((window, window), (0, 0)), mode="edge")
        n = len(current)
        current = sum(k * (padded[window + k:window + k + n] - padded[window - k:window - k + n])
                      for k in range(1, window + 1)) / denom
        out.append(current)
    return np.concatenate(out, axis=1)


def ivector_frames(waveform: np.ndarray, sample_rate: int = 16000, num_ceps: int = 20,
                   num_mel_bins: int = 30, deltas: bool = True) -> np.ndarray:
    """[voiced frames, D] float32 features of one utterance (see the module docstring)."""
    mfcc = features.kaldi_mfcc(tf.constant(waveform, tf.float32), sample_rate,
                               num_mel_bins=num_mel_bins, num_ceps=num_ceps)
    voiced = features.energy_vad(mfcc, vad_energy_threshold=5.5,
                                 vad_energy_mean_scale=0.5).numpy()
    x = mfcc.numpy().astype(np.float64)
    if deltas:
        x = add_deltas(x)
    x = features.apply_cmn(tf.constant(x)).numpy()
    if not voiced.any():
        voiced[:] = True
    return x[voiced].astype(np.float32)


def corpus_frames(utterances, sample_rate=16000, progress=True, **options):
    ids, speakers, frames = [], [], []
    for utt in tqdm(utterances, desc="features", unit="utt", disable=not progress,
                    file=sys.stderr):
        ids.append(utt.utt_id)
        speakers.append(utt.speaker)
        frames.append(ivector_frames(utt.waveform, sample_rate, **options))
    return ids, speakers, frames


def define_flags(flag_values=flags.FLAGS):
    from eval.extract import INPUT_FORMATS

    define = dict(flag_values=flag_values)
    # The corpus flags of eval.extract, but --output is needed by the extract stage only.
    flags.DEFINE_enum("input_format", None, list(INPUT_FORMATS), "Corpus format.", **define)
    flags.DEFINE_string("input", None, "Corpus root, Kaldi data dir, manifest TSV or "
                        "shard glob.", **define)
    flags.DEFINE_string("output", None, "--stage=extract: output .npz (ids, embeddings, "
                        "speakers).", **define)
    flags.DEFINE_integer("sample_rate", 16000, "Sample rate of the features.",
                         lower_bound=1, **define)
    flags.DEFINE_enum("stage", None, list(STAGES), "What to do.", **define)
    flags.DEFINE_string("ubm", None, "UBM npz (written by train_ubm, read otherwise).", **define)
    flags.DEFINE_string("tv", None, "T-matrix npz (written by train_tv, read by extract).",
                        **define)
    flags.DEFINE_integer("num_components", 512, "UBM components.", lower_bound=1, **define)
    flags.DEFINE_integer("ivector_dim", 400, "i-vector dimension.", lower_bound=1, **define)
    flags.DEFINE_integer("ubm_iters", 4, "EM iterations per split size.", lower_bound=1,
                         **define)
    flags.DEFINE_integer("ubm_final_iters", 8, "EM iterations at the final size.",
                         lower_bound=1, **define)
    flags.DEFINE_integer("ubm_max_frames", 500000, "Frames subsampled for UBM training "
                         "(0 = all).", lower_bound=0, **define)
    flags.DEFINE_integer("tv_iters", 5, "T EM iterations.", lower_bound=1, **define)
    flags.DEFINE_integer("top_k", 20, "Gaussian selection for stats (0 = all).",
                         lower_bound=0, **define)
    flags.DEFINE_integer("num_ceps", 20, "MFCC cepstra.", lower_bound=1, **define)
    flags.DEFINE_boolean("deltas", True, "Append deltas and delta-deltas.", **define)
    flags.DEFINE_integer("seed", 0, "Random seed.", **define)
    flags.mark_flags_as_required(["stage", "ubm", "input_format", "input"], **define)


def run_stage(stage, utterances, ubm_path, tv_path=None, output=None, num_components=512,
              ivector_dim=400, ubm_iters=4, ubm_final_iters=8, ubm_max_frames=500000,
              tv_iters=5, top_k=20, sample_rate=16000, seed=0, **frontend):
    """Runs one stage over `eval.extract.read_corpus`-style utterances."""
    from eval import embeddings as embeddings_io
    from tfspk.ivector import gmm, stats, total_variability

    ids, speakers, frames = corpus_frames(utterances, sample_rate, **frontend)
    if stage == "train_ubm":
        model = gmm.train_ubm(np.concatenate(frames), num_components, ubm_iters,
                              ubm_final_iters, max_frames=ubm_max_frames, seed=seed)
        model.save(ubm_path)
        return model
    ubm = gmm.DiagGmm.load(ubm_path)
    zeroth, first = stats.baum_welch(ubm, frames, top_k=top_k, progress=True)
    if stage == "train_tv":
        model = total_variability.train_tv(ubm, zeroth, first, ivector_dim, tv_iters, seed)
        model.save(tv_path)
        return model
    model = total_variability.TotalVariability.load(tv_path)
    ivectors = model.extract(zeroth, first)
    embeddings_io.save_embeddings(output, ids, ivectors, speakers)
    return ids, speakers, ivectors


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from eval.extract import read_corpus

    FLAGS = flags.FLAGS
    if FLAGS.stage != "train_ubm" and not FLAGS.tv:
        raise app.UsageError(f"--stage={FLAGS.stage} needs --tv")
    if FLAGS.stage == "extract" and not FLAGS.output:
        raise app.UsageError("--stage=extract needs --output (the embeddings npz)")
    if FLAGS.stage != "extract" and FLAGS.output:
        raise app.UsageError(f"--output is written by --stage=extract only, not "
                             f"--stage={FLAGS.stage}")
    run_stage(FLAGS.stage, read_corpus(FLAGS.input_format, FLAGS.input, FLAGS.sample_rate),
              FLAGS.ubm, FLAGS.tv, FLAGS.output, FLAGS.num_components, FLAGS.ivector_dim,
              FLAGS.ubm_iters, FLAGS.ubm_final_iters, FLAGS.ubm_max_frames, FLAGS.tv_iters,
              FLAGS.top_k, FLAGS.sample_rate, FLAGS.seed, num_ceps=FLAGS.num_ceps,
              deltas=FLAGS.deltas)
    print(f"stage {FLAGS.stage} done")


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
