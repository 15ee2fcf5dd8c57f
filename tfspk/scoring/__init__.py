"""Scoring embeddings: embedding files (`embeddings`: `.npz` I/O) and trial scoring with
a cosine or PLDA backend, score normalisation and calibration (`score`:
`score_trials`, metrics, score files). `python -m eval.score` is the command line."""
from tfspk.scoring.embeddings import (EmbeddingFileError, EmbeddingSet, load_embeddings,
                                      save_embeddings)
from tfspk.scoring.score import (BACKENDS, SCORE_IDS, ScoreFileError, compute_metrics,
                                 read_scores, score_trials, write_kaldi_trials, write_scores)

__all__ = [
    "BACKENDS", "EmbeddingFileError", "EmbeddingSet", "SCORE_IDS", "ScoreFileError",
    "compute_metrics", "load_embeddings", "read_scores", "save_embeddings", "score_trials",
    "write_kaldi_trials", "write_scores",
]
