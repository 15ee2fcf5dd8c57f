"""Score calibration: raw scores -> log-likelihood ratios, and named thresholds.

A `Calibration` maps a raw verification score `s` (cosine, PLDA, ...) to a
natural-log likelihood ratio `llr = scale * s + offset` and carries named
operating points as thresholds **in raw score units** (accept `s >= threshold`),
so a deployment can compare raw scores without converting them:

* `bayes_p<p>`: the Bayes decision threshold for target prior `p` (unit costs):
  accept when `llr >= log((1 - p) / p)`, i.e. `s >= (log((1 - p) / p) - offset) / scale`;
* `far_<f>`: the threshold at which a fraction `f` of the calibration set's
  non-target trials is accepted (an empirical false-accept rate).

`fit_calibration(scores, labels, prior)` fits `scale` and `offset` by linear
logistic regression weighted by the prior (Brümmer's BOSARIS/FoCal recipe): it
minimises the prior-weighted cross-entropy

    C(a, b) = prior * mean_target log(1 + e^-(a s + b + logit prior))
              + (1 - prior) * mean_nontarget log(1 + e^(a s + b + logit prior)),

whose value at `prior = 0.5`, in bits, is the Cllr of the calibrated scores.

The file is JSON (conventionally `calibration.json`, also inside an export
folder); `Calibration.load` raises `CalibrationError` (a `ValueError`) naming
the file for anything malformed.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import tempfile
from typing import Optional, Sequence

import numpy as np

FILE_NAME = "calibration.json"
FORMAT = "tfspk.calibration"
FORMAT_VERSION = 1
DEFAULT_P_TARGETS = (0.01, 0.05)
DEFAULT_FARS = (0.01,)


class CalibrationError(ValueError):
    """A calibration file or fit that cannot be used (the message names the file)."""


def bayes_name(p_target: float) -> str:
    """Name of the Bayes operating point for `p_target`, e.g. `bayes_p0.01`."""
    return f"bayes_p{p_target:g}"


def far_name(far: float) -> str:
    """Name of the false-accept-rate operating point, e.g. `far_0.01`."""
    return f"far_{far:g}"


@dataclasses.dataclass
class Calibration:
    """`llr = scale * score + offset`, plus named raw-score thresholds.

    Attributes:
      scale, offset: the affine map from raw scores to natural-log LLRs.
      thresholds: operating point name -> raw score threshold (accept `>=`).
      default_threshold: the name `threshold()` uses when given none.
      prior: the target prior the logistic regression was weighted with.
      metadata: free-form JSON-able facts (trial counts, fit cost, source files...).
    """
    scale: float
    offset: float
    thresholds: dict = dataclasses.field(default_factory=dict)
    default_threshold: str = ""
    prior: float = 0.5
    metadata: dict = dataclasses.field(default_factory=dict)

    def llr(self, scores) -> np.ndarray:
        """Calibrated natural-log likelihood ratios of raw `scores` (float64)."""
        return self.scale * np.asarray(scores, dtype=np.float64) + self.offset

    def threshold(self, name: Optional[str] = None) -> float:
        """Raw score threshold of operating point `name` (default: `default_threshold`)."""
        key = self.default_threshold if name is None else name
        try:
            return float(self.thresholds[key])
        except KeyError:
            raise KeyError(f"no operating point {key!r}; known: "
                           f"{sorted(self.thresholds)}") from None

    def raw_threshold_for_llr(self, llr_threshold: float) -> float:
        """The raw score at which the calibrated LLR equals `llr_threshold`."""
        return raw_threshold(self.scale, self.offset, llr_threshold)

    def bayes_threshold(self, p_target: float, c_miss: float = 1.0,
                        c_fa: float = 1.0) -> float:
        """Raw score threshold of the Bayes decision for any prior and costs."""
        from tfspk.metrics import bayes_threshold
        return self.raw_threshold_for_llr(bayes_threshold(p_target, c_miss, c_fa))

    def to_json(self) -> dict:
        return {"format": FORMAT, "version": FORMAT_VERSION,
                "scale": float(self.scale), "offset": float(self.offset),
                "prior": float(self.prior),
                "thresholds": {str(k): float(v) for k, v in self.thresholds.items()},
                "default_threshold": self.default_threshold,
                "metadata": self.metadata}

    def save(self, path) -> pathlib.Path:
        """Writes JSON atomically (temporary file in the same folder, then rename).

        `path` may be a folder (e.g. an export), in which case `calibration.json`
        is written inside it. Returns the file written.
        """
        path = pathlib.Path(path)
        if path.is_dir():
            path = path / FILE_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_json(), indent=2, sort_keys=False, allow_nan=False) + "\n"
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                             dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
        return path

    @classmethod
    def load(cls, path) -> "Calibration":
        """Reads a file written by `save` (a folder means its `calibration.json`)."""
        path = pathlib.Path(path)
        if path.is_dir():
            path = path / FILE_NAME
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise CalibrationError(f"{path}: cannot read calibration ({error})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise CalibrationError(f"{path}: not valid JSON ({error})") from None
        return cls.from_json(data, path)

    @classmethod
    def from_json(cls, data, path="<calibration>") -> "Calibration":
        def fail(reason):
            raise CalibrationError(f"{path}: {reason}")

        if not isinstance(data, dict):
            fail(f"expected a JSON object, got {type(data).__name__}")
        if data.get("format", FORMAT) != FORMAT:
            fail(f"format is {data.get('format')!r}, expected {FORMAT!r}")
        version = data.get("version", FORMAT_VERSION)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            fail(f"unsupported version {version!r} (this tfspk reads up to "
                 f"{FORMAT_VERSION})")
        for key in ("scale", "offset"):
            if key not in data:
                fail(f"missing {key!r}")
        scale = _finite(data["scale"], "scale", fail)
        offset = _finite(data["offset"], "offset", fail)
        if scale <= 0:
            fail(f"scale must be positive (higher score = more likely target), got {scale}")
        prior = _finite(data.get("prior", 0.5), "prior", fail)
        if not 0.0 < prior < 1.0:
            fail(f"prior must be in (0, 1), got {prior}")
        raw_thresholds = data.get("thresholds", {})
        if not isinstance(raw_thresholds, dict):
            fail("'thresholds' must be an object of name -> number")
        thresholds = {str(name): _finite(value, f"thresholds[{name!r}]", fail)
                      for name, value in raw_thresholds.items()}
        default = data.get("default_threshold", "")
        if not isinstance(default, str):
            fail("'default_threshold' must be a string")
        if default and default not in thresholds:
            fail(f"default_threshold {default!r} is not among the thresholds "
                 f"{sorted(thresholds)}")
        metadata = data.get("metadata", {})
        if not isinstance(metadata, dict):
            fail("'metadata' must be an object")
        return cls(scale=scale, offset=offset, thresholds=thresholds,
                   default_threshold=default, prior=prior, metadata=metadata)


def _finite(value, name, fail) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        fail(f"{name} must be finite, got {value!r}")
    return float(value)


def raw_threshold(scale: float, offset: float, llr_threshold: float) -> float:
    """Raw score `s` with `scale * s + offset == llr_threshold` (scale > 0)."""
    if not scale > 0:
        raise CalibrationError(f"scale must be positive to map thresholds, got {scale}")
    return float((llr_threshold - offset) / scale)


def _check_scores(scores, labels, need_targets: bool = True):
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 1 or scores.shape != labels.shape:
        raise CalibrationError(f"scores and labels must be 1-D of one length, got shapes "
                               f"{scores.shape} and {labels.shape}")
    if not np.isfinite(scores).all():
        raise CalibrationError(f"{int((~np.isfinite(scores)).sum())} scores are NaN or "
                               "infinite")
    if labels.dtype != bool:
        if not np.isin(labels, (0, 1)).all():
            raise CalibrationError("labels must be 0 (non-target) or 1 (target)")
        labels = labels.astype(bool)
    if not (~labels).any():
        raise CalibrationError(f"no non-target trials among {labels.size}")
    if need_targets and not labels.any():
        raise CalibrationError(f"no target trials among {labels.size}")
    return scores, labels


def threshold_for_far(scores, labels, far: float) -> float:
    """Raw threshold at which at most a fraction `far` of the non-targets is accepted.

    With `k = floor(far * num_nontarget)` false accepts allowed, the threshold lies
    strictly above the `(k+1)`-th highest non-target score, halfway to the next
    higher distinct non-target score (so accepting `score >= threshold` lets
    exactly the `k` highest through when there are no ties, and never more than
    `k` with ties). Above the highest non-target score it is the next float up.
    Only non-target trials are used; targets may be absent.
    """
    if not 0.0 <= far < 1.0:
        raise CalibrationError(f"far must be in [0, 1), got {far}")
    scores, labels = _check_scores(scores, labels, need_targets=False)
    nontarget = np.sort(scores[~labels])[::-1]  # descending
    allowed = int(math.floor(far * nontarget.size + 1e-9))
    if allowed >= nontarget.size:
        return float(nontarget[-1])
    blocking = nontarget[allowed]          # must be rejected
    higher = nontarget[:allowed]
    higher = higher[higher > blocking]
    if higher.size:
        return float(0.5 * (blocking + higher[-1]))
    return float(np.nextafter(blocking, np.inf))


def _logistic_objective(params, x, is_target, weights, prior_logit):
    """Prior-weighted cross-entropy (nats), its gradient and Hessian in (a, b)."""
    a, b = params
    z = a * x + b + prior_logit
    sign = np.where(is_target, -1.0, 1.0)   # target cost log(1+e^-z), non-target log(1+e^z)
    value = np.sum(weights * np.logaddexp(0.0, sign * z))
    # d/dz: target -sigmoid(-z), non-target sigmoid(z); second derivative sigmoid(z)(1-sigmoid(z)).
    sig = 0.5 * (1.0 + np.tanh(0.5 * z))
    dz = weights * np.where(is_target, sig - 1.0, sig)
    d2z = weights * sig * (1.0 - sig)
    gradient = np.array([np.dot(dz, x), dz.sum()])
    hessian = np.array([[np.dot(d2z, x * x), np.dot(d2z, x)],
                        [np.dot(d2z, x), d2z.sum()]])
    return value, gradient, hessian


def fit_linear_calibration(scores, labels, prior: float = 0.5,
                           max_iterations: int = 100) -> tuple[float, float, float]:
    """Prior-weighted linear logistic regression: `(scale, offset, cost_bits)`.

    Scores are standardised before fitting (well-conditioned Newton steps) and
    the result mapped back. `cost_bits` is the minimised objective divided by
    `log 2` (the Cllr of the calibrated scores when `prior = 0.5`).
    """
    from scipy import optimize

    if not 0.0 < prior < 1.0:
        raise CalibrationError(f"prior must be in (0, 1), got {prior}")
    scores, labels = _check_scores(scores, labels)
    center, spread = float(scores.mean()), float(scores.std())
    if spread == 0.0:
        raise CalibrationError("all scores are equal; nothing to calibrate")
    x = (scores - center) / spread
    num_target = np.count_nonzero(labels)
    weights = np.where(labels, prior / num_target, (1.0 - prior) / (labels.size - num_target))
    prior_logit = math.log(prior / (1.0 - prior))
    result = optimize.minimize(
        lambda p: _logistic_objective(p, x, labels, weights, prior_logit)[:2],
        x0=np.array([1.0, 0.0]), jac=True,
        hess=lambda p: _logistic_objective(p, x, labels, weights, prior_logit)[2],
        method="trust-exact", options={"maxiter": max_iterations, "gtol": 1e-9})
    a, b = (float(v) for v in result.x)
    if not (math.isfinite(a) and math.isfinite(b)):
        raise CalibrationError(f"logistic regression diverged ({result.message})")
    scale = a / spread
    offset = b - a * center / spread
    return scale, offset, float(result.fun / math.log(2.0))


def fit_calibration(scores, labels, prior: float = 0.5, *,
                    p_targets: Sequence[float] = DEFAULT_P_TARGETS,
                    fars: Sequence[float] = DEFAULT_FARS,
                    default_threshold: Optional[str] = None,
                    metadata: Optional[dict] = None) -> Calibration:
    """Fits `llr = scale * score + offset` and the named thresholds.

    Args:
      scores: raw scores [n] (higher = more likely target) of a calibration set.
      labels: [n] 0/1 or bool, 1 = target.
      prior: target prior weighting the logistic regression (BOSARIS `prior`).
      p_targets: priors whose Bayes thresholds are stored (`bayes_p<p>`); the
        fitting prior is always added.
      fars: false-accept rates whose empirical thresholds are stored (`far_<f>`).
      default_threshold: name returned by `Calibration.threshold()`; default the
        Bayes point of the first of `p_targets` (or of `prior` when empty).
      metadata: extra facts to store; trial counts, the fit's cost and the
        calibration set's Cllr / min-Cllr are added.
    Raises:
      CalibrationError if the scores cannot be calibrated (one class, constant
      scores, or a non-positive fitted scale: scores anti-correlated with labels).
    """
    from tfspk import metrics

    scores, labels = _check_scores(scores, labels)
    scale, offset, cost = fit_linear_calibration(scores, labels, prior)
    if not scale > 0:
        raise CalibrationError(f"fitted scale {scale:.4g} is not positive: the scores do "
                               "not increase with the target probability")
    thresholds = {}
    for p_target in dict.fromkeys([*p_targets, prior]):
        thresholds[bayes_name(p_target)] = raw_threshold(
            scale, offset, metrics.bayes_threshold(p_target))
    for far in fars:
        thresholds[far_name(far)] = threshold_for_far(scores, labels, far)
    if default_threshold is None:
        default_threshold = bayes_name(p_targets[0] if len(p_targets) else prior)
    if default_threshold not in thresholds:
        raise CalibrationError(f"default_threshold {default_threshold!r} is not among "
                               f"{sorted(thresholds)}")
    llrs = scale * scores + offset
    facts = {"num_target": int(labels.sum()), "num_nontarget": int((~labels).sum()),
             "fit_cost_bits": cost, "cllr": metrics.cllr(llrs, labels),
             "min_cllr": metrics.min_cllr(scores, labels),
             "score_range": [float(scores.min()), float(scores.max())]}
    facts.update(metadata or {})
    return Calibration(scale=scale, offset=offset, thresholds=thresholds,
                       default_threshold=default_threshold, prior=prior, metadata=facts)
