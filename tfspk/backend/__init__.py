"""Verification back ends on numpy: transforms, PLDA/cosine scoring, score norm.

One concept per module; this package re-exports the public API:

* `transforms`: `MeanSubtraction`, `Whitening`, `LengthNormalization`
* `lda`: `LDA` (Kaldi `ivector-compute-lda`)
* `plda`: two-covariance `PLDA` trained by EM (Kaldi `ivector-compute-plda`)
* `cosine`: `CosineScorer`
* `score_norm`: `normalize_scores`, `cohort_statistics` (Z/T/S/AS-norm)
* `pipeline`: `Backend`, `make_plda_backend`, `make_cosine_backend`
* `base`: `Transform`, `Scorer`, `Component.load`, errors
"""
from tfspk.backend.base import (BackendFileError, Component, NotFittedError, Scorer,
                                Transform)
from tfspk.backend.cosine import CosineScorer
from tfspk.backend.lda import LDA
from tfspk.backend.pipeline import (Backend, Enrollment, make_cosine_backend,
                                    make_plda_backend)
from tfspk.backend.plda import PLDA
from tfspk.backend.score_norm import METHODS as SCORE_NORM_METHODS
from tfspk.backend.score_norm import cohort_statistics, normalize_scores
from tfspk.backend.transforms import LengthNormalization, MeanSubtraction, Whitening

__all__ = [
    "Backend", "BackendFileError", "Component", "CosineScorer", "Enrollment", "LDA",
    "LengthNormalization", "MeanSubtraction", "NotFittedError", "PLDA",
    "SCORE_NORM_METHODS", "Scorer", "Transform", "Whitening", "cohort_statistics",
    "make_cosine_backend", "make_plda_backend", "normalize_scores",
]
