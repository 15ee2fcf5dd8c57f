"""TensorBoard output: scalars, the model graph and the embedding projector."""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf


def write_projector(log_dir: str, embeddings: np.ndarray, speakers: list[str],
                    ids: list[str], tensor_name: str = "validation_embeddings"):
    """Validation embeddings with speaker labels for TensorBoard's projector tab."""
    from tensorboard.plugins import projector

    os.makedirs(log_dir, exist_ok=True)
    with open(os.path.join(log_dir, "metadata.tsv"), "w", encoding="utf-8") as f:
        f.write("speaker\tutterance\n")
        for speaker, utt in zip(speakers, ids):
            f.write(f"{speaker}\t{utt}\n")
    variable = tf.Variable(embeddings, name=tensor_name)
    checkpoint = tf.train.Checkpoint(embedding=variable)
    checkpoint.save(os.path.join(log_dir, "embedding.ckpt"))
    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = "embedding/.ATTRIBUTES/VARIABLE_VALUE"
    embedding.metadata_path = "metadata.tsv"
    projector.visualize_embeddings(log_dir, config)


def write_graph(log_dir: str, concrete_function):
    """The traced train step's graph, for TensorBoard's Graphs tab."""
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        tf.summary.graph(concrete_function.graph)
    writer.flush()
