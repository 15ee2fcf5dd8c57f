"""Kaldi-style i-vector system: diagonal GMM-UBM, Baum-Welch stats, total variability.

`gmm` (DiagGmm, train_ubm), `stats` (baum_welch), `total_variability`
(TotalVariability, train_tv, extract). Models are saved as npz + JSON (no pickles).
"""
from tfspk.ivector.gmm import DiagGmm, train_ubm  # noqa: F401
from tfspk.ivector.stats import baum_welch  # noqa: F401
from tfspk.ivector.total_variability import TotalVariability, train_tv  # noqa: F401
