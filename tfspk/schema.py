"""The TFRecord example schema shared by every writer and reader in tfspk.

One `tf.train.Example` per utterance:

| key              | type        | meaning                                              |
| ---------------- | ----------- | ---------------------------------------------------- |
| schema_version   | int64       | `SCHEMA_VERSION`; readers refuse newer versions      |
| utt_id           | bytes       | utterance id, unique within a split                  |
| speaker          | bytes       | speaker id as in the corpus                          |
| label            | int64       | integer speaker label from `speakers.tsv` (-1: none) |
| audio_pcm16      | bytes       | little-endian int16 PCM, mono                        |
| sample_rate      | int64       | samples per second                                   |
| num_samples      | int64       | len(audio_pcm16) // 2                                |
| phone_starts     | int64 list  | phone segment starts in samples (optional, may be [])|
| phone_ends       | int64 list  | phone segment ends in samples, exclusive             |
| phone_labels     | bytes list  | TIMIT-61 labels                                      |

PCM is stored as raw bytes rather than an int64 list: 2 bytes a sample instead of
up to 10 varint bytes, and `tf.io.decode_raw` reads it without a copy loop.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import tensorflow as tf

SCHEMA_VERSION = 1

FEATURE_SPEC = {
    "schema_version": tf.io.FixedLenFeature([], tf.int64),
    "utt_id": tf.io.FixedLenFeature([], tf.string),
    "speaker": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    "audio_pcm16": tf.io.FixedLenFeature([], tf.string),
    "sample_rate": tf.io.FixedLenFeature([], tf.int64),
    "num_samples": tf.io.FixedLenFeature([], tf.int64),
    "phone_starts": tf.io.VarLenFeature(tf.int64),
    "phone_ends": tf.io.VarLenFeature(tf.int64),
    "phone_labels": tf.io.VarLenFeature(tf.string),
}


def _int64s(values: Iterable[int]) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _bytes(values: Iterable[bytes]) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def serialize_example(
    utt_id: str,
    speaker: str,
    label: int,
    pcm16: np.ndarray,
    sample_rate: int,
    phones: Sequence[tuple[int, int, str]] | None = None,
) -> bytes:
    """Serialises one utterance; `pcm16` is a 1-D int16 array."""
    pcm16 = np.asarray(pcm16)
    if pcm16.dtype != np.int16 or pcm16.ndim != 1:
        raise ValueError(
            f"{utt_id}: audio must be 1-D int16, got {pcm16.dtype} {pcm16.shape}")
    phones = list(phones or [])
    feature = {
        "schema_version": _int64s([SCHEMA_VERSION]),
        "utt_id": _bytes([utt_id.encode("utf-8")]),
        "speaker": _bytes([speaker.encode("utf-8")]),
        "label": _int64s([int(label)]),
        "audio_pcm16": _bytes([pcm16.astype("<i2").tobytes()]),
        "sample_rate": _int64s([int(sample_rate)]),
        "num_samples": _int64s([pcm16.shape[0]]),
        "phone_starts": _int64s(int(p[0]) for p in phones),
        "phone_ends": _int64s(int(p[1]) for p in phones),
        "phone_labels": _bytes(str(p[2]).encode("utf-8") for p in phones),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    # deterministic=True: protobuf map order otherwise varies across processes, and
    # shard checksums must not.
    return example.SerializeToString(deterministic=True)


def decode_pcm16(data: tf.Tensor) -> tf.Tensor:
    """`audio_pcm16` bytes (or a substring of whole samples) -> float32 in [-1, 1), in the
    graph: `k / audio.INT16_SCALE`, the scaling `audio.int16_to_float` applies in NumPy."""
    from tfspk.audio import INT16_SCALE

    pcm = tf.io.decode_raw(data, tf.int16, little_endian=True)
    return tf.cast(pcm, tf.float32) / INT16_SCALE


def parse_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Parses one serialized example inside a tf.data graph.

    Returns `waveform` (float32 in [-1, 1]), `num_samples`, `sample_rate`,
    `label`, `utt_id`, `speaker` and dense `phone_starts`/`phone_ends`/`phone_labels`.
    """
    parsed = tf.io.parse_single_example(serialized, FEATURE_SPEC)
    version_ok = tf.debugging.assert_less_equal(
        parsed["schema_version"], tf.constant(SCHEMA_VERSION, tf.int64),
        message="TFRecord written by a newer tfspk schema")
    with tf.control_dependencies([version_ok]):
        waveform = decode_pcm16(parsed["audio_pcm16"])
    return {
        "waveform": waveform,
        "num_samples": parsed["num_samples"],
        "sample_rate": parsed["sample_rate"],
        "label": parsed["label"],
        "utt_id": parsed["utt_id"],
        "speaker": parsed["speaker"],
        "phone_starts": tf.sparse.to_dense(parsed["phone_starts"]),
        "phone_ends": tf.sparse.to_dense(parsed["phone_ends"]),
        "phone_labels": tf.sparse.to_dense(parsed["phone_labels"], default_value=b""),
    }


def parse_example_numpy(serialized: bytes) -> dict:
    """Parses one serialized example eagerly into Python/numpy values (no graph)."""
    example = tf.train.Example.FromString(serialized)
    f = example.features.feature
    version = f["schema_version"].int64_list.value[0]
    if version > SCHEMA_VERSION:
        raise ValueError(f"example schema version {version} > supported {SCHEMA_VERSION}")
    pcm16 = np.frombuffer(f["audio_pcm16"].bytes_list.value[0], dtype="<i2").astype(np.int16)
    return {
        "schema_version": version,
        "utt_id": f["utt_id"].bytes_list.value[0].decode("utf-8"),
        "speaker": f["speaker"].bytes_list.value[0].decode("utf-8"),
        "label": f["label"].int64_list.value[0],
        "pcm16": pcm16,
        "sample_rate": f["sample_rate"].int64_list.value[0],
        "num_samples": f["num_samples"].int64_list.value[0],
        "phones": list(zip(f["phone_starts"].int64_list.value,
                           f["phone_ends"].int64_list.value,
                           (b.decode("utf-8") for b in f["phone_labels"].bytes_list.value))),
    }
