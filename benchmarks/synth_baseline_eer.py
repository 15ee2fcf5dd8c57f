"""Difficulty of the synthetic VoxCeleb-layout corpus: EER of a trivial speaker baseline.

Generates a clean corpus (default 50 speakers x 10 utterances at the default --spread),
represents each utterance by the mean and standard deviation of its 40-dim Kaldi MFCCs
(`eval.baseline`, tfspk's Kaldi-compatible MFCC, 40 mel bins), scores every pair of utterances by cosine similarity and
prints the equal error rate. The default spread is calibrated so that this lands between
5% and 35%: hard enough that a learned embedding has something to learn, easy enough that
training signal exists.

    python benchmarks/synth_baseline_eer.py --num_speakers=50 --utts_per_speaker=10
"""
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import soundfile  # noqa: E402
from absl import app, flags  # noqa: E402

from eval.baseline import mfcc_mean_std  # noqa: E402
from tfspk import metrics  # noqa: E402
from tfspk.synth import corpus  # noqa: E402

flags.DEFINE_integer("num_speakers", 50, "Speakers to generate.", lower_bound=3)
flags.DEFINE_integer("utts_per_speaker", 10, "Utterances per speaker.", lower_bound=2)
flags.DEFINE_float("spread", corpus.DEFAULT_SPREAD, "Voice spread.", lower_bound=0.0)
flags.DEFINE_integer("seed", 0, "Corpus seed.")
flags.DEFINE_integer("num_workers", 2, "Synthesis processes.", lower_bound=1)
FLAGS = flags.FLAGS


def baseline_eer(root):
    """EER (fraction) of cosine-scored MFCC mean+std over all utterance pairs under root/wav."""
    paths, speakers = [], []
    wav_root = os.path.join(root, "wav")
    for speaker in sorted(os.listdir(wav_root)):
        for directory, _, files in sorted(os.walk(os.path.join(wav_root, speaker))):
            for name in sorted(files):
                paths.append(os.path.join(directory, name))
                speakers.append(speaker)
    embeddings = np.stack([mfcc_mean_std(*soundfile.read(path, dtype="float32"))
                           for path in paths])
    embeddings -= embeddings.mean(axis=0)  # centre: cosine of raw MFCC stats is all ~1
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    scores = embeddings @ embeddings.T
    first, second = np.triu_indices(len(paths), k=1)
    labels = (np.array(speakers)[first] == np.array(speakers)[second]).astype(int)
    return metrics.eer(scores[first, second], labels)[0]


def main(argv):
    del argv
    with tempfile.TemporaryDirectory() as root:
        summary = corpus.generate_voxceleb(root, FLAGS.num_speakers, FLAGS.utts_per_speaker,
                                           seed=FLAGS.seed, spread=FLAGS.spread,
                                           num_workers=FLAGS.num_workers, progress=True)
        eer = baseline_eer(root)
    print(f"speakers={summary['speakers']} utterances={summary['utterances']} "
          f"hours={summary['hours']:.3f} spread={FLAGS.spread} seed={FLAGS.seed}")
    print(f"MFCC mean+std cosine baseline EER: {100 * eer:.2f}%")


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
