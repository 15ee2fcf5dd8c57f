"""Periodic validation during training: cosine EER / minDCF on a trial list (cosine
scoring is `tfspk.backend.CosineScorer`'s, the front end wired by
`tfspk.frontend.network_inputs`, as in export and evaluation)."""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from tfspk import metrics, trials as trials_lib
from tfspk.backend.cosine import CosineScorer
from tfspk.frontend.layers import network_inputs


@dataclasses.dataclass
class ValidationResult:
    eer: float
    min_dcf_p01: float
    min_dcf_p001: float
    ids: list[str]
    speakers: list[str]
    embeddings: np.ndarray


def embed_dataset(frontend, embedding_model, dataset, embedding_layer="fc2"):
    """Embeds every utterance of an `eval_dataset`; returns ids, speakers, [N, D]."""

    @tf.function(reduce_retracing=True)
    def embed(waveform, lengths):
        return embedding_model(network_inputs(frontend, waveform, lengths),
                               training=False)[embedding_layer]

    ids, speakers, chunks = [], [], []
    for batch in dataset:
        chunks.append(embed(batch["waveform"], tf.cast(batch["lengths"], tf.int32)).numpy())
        ids.extend(x.decode("utf-8") for x in batch["utt_id"].numpy())
        speakers.extend(x.decode("utf-8") for x in batch["speaker"].numpy())
    return ids, speakers, np.concatenate(chunks).astype(np.float32)


def cosine_trial_scores(ids, embeddings, trial_list):
    """(cosine score, label) of every trial, `ids` naming the rows of `embeddings`."""
    index = {utt: i for i, utt in enumerate(ids)}
    enroll = np.array([index[t.enroll] for t in trial_list])
    test = np.array([index[t.test] for t in trial_list])
    scores = CosineScorer().score_pairs(embeddings, embeddings, enroll, test)
    labels = np.array([t.label for t in trial_list], dtype=np.int64)
    return scores, labels


def validate(frontend, embedding_model, dataset, trials_path, embedding_layer="fc2"):
    ids, speakers, embeddings = embed_dataset(frontend, embedding_model, dataset,
                                              embedding_layer)
    trial_list = trials_lib.read_trials(trials_path, known_ids=set(ids), self_trials="error")
    scores, labels = cosine_trial_scores(ids, embeddings, trial_list)
    eer, _ = metrics.eer(scores, labels)
    return ValidationResult(
        eer=eer,
        min_dcf_p01=metrics.min_dcf(scores, labels, p_target=0.01)[0],
        min_dcf_p001=metrics.min_dcf(scores, labels, p_target=0.001)[0],
        ids=ids, speakers=speakers, embeddings=embeddings)
