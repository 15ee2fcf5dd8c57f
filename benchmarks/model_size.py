"""Parameter counts and analytic FLOPs of the full-size tfspk models.

For each architecture: parameters of the embedding network (up to fc2), of the
training classifier with a softmax over `--num_speakers`, FLOPs per input frame
of the frame-rate layers (a multiply-add counts 2) and FLOPs per utterance of
the layers after pooling. The paper reports about 13M parameters for its CNN.

    python benchmarks/model_size.py --num_speakers=1211
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from tfspk import models  # noqa: E402

_NUM_SPEAKERS = flags.DEFINE_integer(
    "num_speakers", 1211, "Softmax classes (1,211 = VoxCeleb1 development speakers).",
    lower_bound=2)
_NUM_FEATURES = flags.DEFINE_integer("num_features", 40, "MFCCs per frame.",
                                     lower_bound=1)
_XVECTOR_FEATURES = flags.DEFINE_integer(
    "xvector_features", 30, "MFCCs per frame for the x-vector (Kaldi recipe: 30).",
    lower_bound=1)

ARCHITECTURES = {
    "paper_cnn relu_all": lambda f, _: models.build_paper_cnn(f, variant="relu_all"),
    "paper_cnn linear_fc1": lambda f, _: models.build_paper_cnn(f, variant="linear_fc1"),
    "paper_cnn attentive": lambda f, _: models.build_paper_cnn(f, pooling="attentive"),
    "frame_level_cnn": lambda f, _: models.build_frame_level_cnn(f),
    "xvector": lambda _, x: models.build_xvector(x),
}


def model_size_table(num_speakers, num_features, xvector_features):
    """Rows `(name, embedding params, classifier params, FLOPs/frame, FLOPs/utt)`."""
    rows = []
    for name, build in ARCHITECTURES.items():
        embedding_model = build(num_features, xvector_features)
        classifier = models.build_classifier(embedding_model, num_speakers)
        cost = models.count_flops_per_frame(embedding_model)
        rows.append((name, models.count_parameters(embedding_model)["total"],
                     models.count_parameters(classifier)["total"], cost.per_frame,
                     cost.per_utterance))
    return rows


def main(argv):
    del argv
    rows = model_size_table(_NUM_SPEAKERS.value, _NUM_FEATURES.value,
                            _XVECTOR_FEATURES.value)
    print(f"{'model':<22} {'params to fc2':>14} {'+ softmax ' + str(_NUM_SPEAKERS.value):>16}"
          f" {'MFLOP/frame':>12} {'MFLOP/utt':>10}")
    for name, embedding, classifier, per_frame, per_utterance in rows:
        print(f"{name:<22} {embedding:>14,} {classifier:>16,} {per_frame / 1e6:>12.3f}"
              f" {per_utterance / 1e6:>10.3f}")


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
