"""`Backend`: a chain of transforms ending in a scorer, saved as one file set.

The standard recipe (Kaldi's VoxCeleb/SRE x-vector back end) is
`make_plda_backend()`: mean subtraction -> LDA(200) -> length normalisation ->
PLDA, all fitted on training embeddings with speaker labels. Enrollment models
over several utterances are the mean of the transformed utterances,
length-normalised again, scored with their utterance count (Kaldi's
`ivector-mean` + `--num-utts`).

Saved layout, in a folder: `backend.json` (classes and configs of every step)
and `backend.npz` (their arrays, keyed `transforms/<i>/<name>` and
`scorer/<name>`).
"""
from __future__ import annotations

import pathlib
from typing import NamedTuple, Sequence

import numpy as np

from tfspk.backend.base import (FORMAT_VERSION, BackendFileError, Scorer, Transform,
                                build_component, read_files, write_files)
from tfspk.backend.cosine import CosineScorer
from tfspk.backend.lda import LDA
from tfspk.backend.linalg import check_matrix, group_means
from tfspk.backend.plda import PLDA
from tfspk.backend.transforms import LengthNormalization, MeanSubtraction

FILE_STEM = "backend"


class Enrollment(NamedTuple):
    """Enrollment models in the scorer's input space, with utterance counts."""
    vectors: np.ndarray
    counts: np.ndarray


class Backend:
    """Transforms applied in order, then a scorer.

    `fit(embeddings, speakers)` fits each step on the output of the previous one.
    """

    def __init__(self, transforms: Sequence[Transform], scorer: Scorer):
        self.transforms = list(transforms)
        self.scorer = scorer
        # Embedding size the backend was fitted on (None: unknown, e.g. an older file)
        # and the file it was loaded from, so a mismatch is an error naming both.
        self.input_dim: int | None = None
        self.source: str | None = None

    @property
    def produces_llr(self) -> bool:
        return self.scorer.produces_llr

    def describe(self) -> dict:
        return {"transforms": [step.describe() for step in self.transforms],
                "scorer": self.scorer.describe()}

    def fit(self, embeddings, speakers=None) -> "Backend":
        embeddings = check_matrix(embeddings)
        self.input_dim = int(embeddings.shape[1])
        for step in self.transforms:
            embeddings = step.fit_transform(embeddings, speakers)
        self.scorer.fit(embeddings, speakers)
        return self

    def transform(self, embeddings) -> np.ndarray:
        """Embeddings [n, d] in the scorer's input space."""
        embeddings = check_matrix(embeddings)
        if self.input_dim is not None and embeddings.shape[1] != self.input_dim:
            raise ValueError(f"embeddings of dimension {embeddings.shape[1]}, but the "
                             f"backend{f' {self.source}' if self.source else ''} was "
                             f"trained on dimension {self.input_dim}")
        for step in self.transforms:
            embeddings = step.transform(embeddings)
        return embeddings

    def enroll(self, embeddings, model_index=None, num_models: int | None = None) -> Enrollment:
        """Enrollment models from utterance embeddings.

        `model_index[i]` is the model of utterance `i` (default: one model per
        utterance). The transformed utterances of a model are averaged and,
        when the chain length-normalises, normalised again.
        """
        transformed = self.transform(embeddings)
        if model_index is None:
            return Enrollment(transformed, np.ones(len(transformed)))
        model_index = np.asarray(model_index)
        num_models = int(model_index.max()) + 1 if num_models is None else num_models
        vectors = group_means(transformed, model_index, num_models)
        counts = np.bincount(model_index, minlength=num_models).astype(np.float64)
        length_norms = [s for s in self.transforms if isinstance(s, LengthNormalization)]
        if length_norms:
            vectors = length_norms[-1].transform(vectors)
        return Enrollment(vectors, counts)

    def score_pairs(self, enrollment: Enrollment, test_vectors, enroll_index,
                    test_index) -> np.ndarray:
        """Trial scores; `test_vectors` come from `transform`."""
        return self.scorer.score_pairs(enrollment.vectors, test_vectors, enroll_index,
                                       test_index, enrollment.counts)

    def score_matrix(self, enrollment: Enrollment, test_vectors) -> np.ndarray:
        return self.scorer.score_matrix(enrollment.vectors, test_vectors, enrollment.counts)

    def save(self, directory: str | pathlib.Path) -> None:
        arrays = {}
        for i, step in enumerate(self.transforms):
            arrays.update({f"transforms/{i}/{k}": v for k, v in step.get_arrays().items()})
        arrays.update({f"scorer/{k}": v for k, v in self.scorer.get_arrays().items()})
        extra = {} if self.input_dim is None else {"input_dim": self.input_dim}
        write_files(pathlib.Path(directory) / FILE_STEM,
                    {"format_version": FORMAT_VERSION, **self.describe(), **extra}, arrays)

    @classmethod
    def load(cls, directory: str | pathlib.Path) -> "Backend":
        prefix = pathlib.Path(directory) / FILE_STEM
        config, arrays = read_files(prefix)
        source = f"{prefix}.json"
        if "scorer" not in config or not isinstance(config.get("transforms"), list):
            raise BackendFileError(f"{source}: needs 'transforms' (a list) and 'scorer'")

        def arrays_under(key):
            return {name[len(key):]: value for name, value in arrays.items()
                    if name.startswith(key)}

        transforms = [build_component(step, arrays_under(f"transforms/{i}/"), source)
                      for i, step in enumerate(config["transforms"])]
        scorer = build_component(config["scorer"], arrays_under("scorer/"), source)
        if not isinstance(scorer, Scorer) or not all(isinstance(t, Transform) for t in transforms):
            raise BackendFileError(f"{source}: transforms and scorer are of the wrong kinds")
        backend = cls(transforms, scorer)
        backend.source = source
        if isinstance(config.get("input_dim"), int):
            backend.input_dim = config["input_dim"]
        return backend


def make_plda_backend(lda_dim: int | None = 200, num_em_iters: int = 10) -> Backend:
    """Mean subtraction -> LDA (skipped when `lda_dim` is None or 0) ->
    length normalisation to sqrt(dim) -> PLDA."""
    transforms: list[Transform] = [MeanSubtraction()]
    if lda_dim:
        transforms.append(LDA(lda_dim))
    transforms.append(LengthNormalization("sqrt_dim"))
    return Backend(transforms, PLDA(num_em_iters=num_em_iters))


def make_cosine_backend(subtract_mean: bool = True) -> Backend:
    """Cosine scoring, after subtracting the training mean when `subtract_mean`
    (then the backend must be fitted; otherwise it is usable as is)."""
    return Backend([MeanSubtraction()] if subtract_mean else [], CosineScorer())
