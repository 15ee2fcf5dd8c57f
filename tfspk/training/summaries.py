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


#: Scalar tags the trainer writes to `model_dir/train` every --log_every steps, and
#: those validation writes to `model_dir/validation`; the graph goes to `train` once.
TRAIN_SCALARS = ("loss", "accuracy", "learning_rate", "examples_per_second")
VALIDATION_SCALARS = ("eer", "min_dcf_p0.01", "min_dcf_p0.001")


def write_graph(log_dir_or_writer, concrete_function, step: int = 0):
    """The traced train step's graph, for TensorBoard's Graphs tab; to a log directory
    or an existing `tf.summary` writer (one event file per run, not one more)."""
    writer = (tf.summary.create_file_writer(log_dir_or_writer)
              if isinstance(log_dir_or_writer, (str, os.PathLike)) else log_dir_or_writer)
    with writer.as_default(step=step):
        tf.summary.graph(concrete_function.graph)
    writer.flush()


def read_events(log_dir: str) -> dict:
    """{"scalars": {tag: [(step, value), ...]}, "graphs": number of graph events} from
    every event file in `log_dir` (what TensorBoard would show)."""
    from tensorflow.core.util import event_pb2

    scalars: dict[str, list] = {}
    graphs = 0
    for name in sorted(os.listdir(log_dir)):
        if not name.startswith("events.out.tfevents"):
            continue
        for record in tf.data.TFRecordDataset(os.path.join(log_dir, name)):
            event = event_pb2.Event.FromString(record.numpy())
            if event.graph_def:
                graphs += 1
            for value in event.summary.value:
                if value.HasField("tensor"):
                    number = float(tf.make_ndarray(value.tensor))
                else:
                    number = float(value.simple_value)
                scalars.setdefault(value.tag, []).append((int(event.step), number))
    return {"scalars": scalars, "graphs": graphs}
