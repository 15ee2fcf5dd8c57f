"""Test-time fixtures for the probes: a tone-coded TIMIT-layout corpus, oracle and noise
frame embedders that read the code back from the audio, and tiny tfspk models.

In the tone corpus each phone is a pure tone whose frequency identifies the phone, so an
embedder can recover the phone (and its broad class) from the waveform alone, exactly as a
FrameEmbedder must: `embed(waveform)` has no access to the labels.
"""
from __future__ import annotations

import os

import numpy as np
import soundfile

from tfspk import phones

from probes.frames import FrameEmbedder, make_geometry

RATE = 16000
WINDOW, SHIFT = 400, 160
#: Two phones per broad class, each with its own tone.
TONE_PHONES = ("t", "k", "jh", "ch", "s", "f", "m", "n", "l", "r", "iy", "aa",
               "tcl", "kcl", "pau", "h#")
TONES_HZ = 250.0 + 125.0 * np.arange(len(TONE_PHONES))
TRAIN_SPEAKERS = ("FAAA0", "MBBB0", "FCCC0", "MDDD0")
TEST_SPEAKERS = ("FEEE0", "MFFF0")
UTTERANCES = ("SA1", "SA2", "SI1", "SI2", "SI3", "SX1", "SX2", "SX3", "SX4", "SX5")
#: Oracle layer geometry: `broad_conv` mimics conv2 of the paper CNN (kernels 5 and 7,
#: stride 2), i.e. frame j is centred on MFCC frame 5 + 2 j.
CONV_OFFSET, CONV_STRIDE, CONV_SPAN = 5, 2, 11


def write_tone_timit(root: str, seed: int = 0, phones_per_utterance=(6, 10),
                     phone_ms=(60, 140), utterances=UTTERANCES) -> str:
    """Writes `root/{TRAIN,TEST}/DR1/<SPK>/<UTT>.{WAV,PHN}` (NIST SPHERE, 16 kHz)."""
    rng = np.random.default_rng(seed)
    for split, speakers in (("TRAIN", TRAIN_SPEAKERS), ("TEST", TEST_SPEAKERS)):
        for speaker in speakers:
            folder = os.path.join(root, split, "DR1", speaker)
            os.makedirs(folder, exist_ok=True)
            amplitude = rng.uniform(0.2, 0.4)
            for utt in utterances:
                pieces, lines, position = [], [], 0
                for _ in range(rng.integers(*phones_per_utterance, endpoint=True)):
                    index = rng.integers(len(TONE_PHONES))
                    length = int(rng.integers(*phone_ms, endpoint=True) * RATE // 1000)
                    t = np.arange(length) / RATE
                    pieces.append(amplitude * np.sin(2 * np.pi * TONES_HZ[index] * t
                                                     + rng.uniform(0, 2 * np.pi)))
                    lines.append(f"{position} {position + length} {TONE_PHONES[index]}")
                    position += length
                signal = np.concatenate(pieces) + 0.003 * rng.standard_normal(position)
                soundfile.write(os.path.join(folder, utt + ".WAV"), signal, RATE,
                                format="NIST", subtype="PCM_16")
                with open(os.path.join(folder, utt + ".PHN"), "w") as f:
                    f.write("\n".join(lines) + "\n")
    return root


def tone_phone_ids(waveform: np.ndarray) -> np.ndarray:
    """Per 25 ms / 10 ms frame (Kaldi snip_edges framing), the index of the nearest tone."""
    count = 1 + (len(waveform) - WINDOW) // SHIFT
    frames = np.stack([waveform[i * SHIFT:i * SHIFT + WINDOW] for i in range(count)])
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(WINDOW), n=4096, axis=1))
    peak_hz = np.argmax(spectrum, axis=1) * RATE / 4096
    return np.argmin(np.abs(peak_hz[:, None] - TONES_HZ[None, :]), axis=1)


def oracle_embedder(noise_dims: int = 16, seed: int = 0) -> FrameEmbedder:
    """Layers: `phone_onehot` (16), `broad_onehot` (8, one-hot broad class), `broad_conv`
    (broad_onehot seen through conv2's geometry) and `noise` (Gaussian, no information)."""
    classes = list(phones.BROAD_CLASSES)
    phone_class = np.array([classes.index(phones.broad_class(p)) for p in TONE_PHONES])
    rng = np.random.default_rng(seed)

    def fn(waveform, lengths):
        ids = tone_phone_ids(np.asarray(waveform)[0, :int(lengths[0])])
        broad = np.eye(len(classes), dtype=np.float32)[phone_class[ids]]
        conv_frames = (len(ids) - CONV_SPAN) // CONV_STRIDE + 1
        conv = broad[CONV_OFFSET + CONV_STRIDE * np.arange(conv_frames)]
        return {"phone_onehot": np.eye(len(TONE_PHONES), dtype=np.float32)[ids][None],
                "broad_onehot": broad[None], "broad_conv": conv[None],
                "noise": rng.standard_normal((1, len(ids), noise_dims)).astype(np.float32)}

    geometry = make_geometry({"phone_onehot": (0, 1), "broad_onehot": (0, 1),
                              "broad_conv": (CONV_OFFSET, CONV_STRIDE), "noise": (0, 1)})
    return FrameEmbedder(fn, geometry, name="oracle")


TINY_SPEC = dict(architecture="frame_level_cnn", num_speakers=4, conv_filters=(8, 8, 8, 12),
                 fc_units=(12, 6))


def tiny_spec():
    from tfspk import model_spec
    return model_spec.ModelSpec(**TINY_SPEC)


def tiny_embedder(seed: int = 0) -> FrameEmbedder:
    """A randomly initialised tiny frame-level CNN with the real front end and geometry."""
    import keras

    from tfspk import export, model_spec, models

    keras.utils.set_random_seed(seed)
    spec = tiny_spec()
    embedding_model = model_spec.build_embedding_model(spec)
    return FrameEmbedder.from_keras(models.frame_embedding_model(embedding_model),
                                    model_spec.build_frontend(spec),
                                    export.frame_geometry(spec, embedding_model), name="tiny")


def write_tiny_run(model_dir: str, steps=(0, 5, 10), seed: int = 0) -> str:
    """A training directory (model_spec.json + checkpoints/ckpt-<step>) of the tiny CNN,
    the weights nudged between checkpoints as training would."""
    import keras
    import tensorflow as tf

    from tfspk import model_spec

    keras.utils.set_random_seed(seed)
    spec = tiny_spec()
    os.makedirs(model_dir, exist_ok=True)
    spec.save(model_dir)
    classifier = model_spec.build_classifier_model(spec)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=classifier),
                                         os.path.join(model_dir, "checkpoints"),
                                         max_to_keep=None, checkpoint_name="ckpt")
    rng = np.random.default_rng(seed)
    for step in steps:
        for variable in classifier.trainable_variables:
            variable.assign((np.asarray(variable) + 0.05 * rng.standard_normal(variable.shape))
                            .astype(np.float32))
        manager.save(checkpoint_number=step)
    return model_dir
