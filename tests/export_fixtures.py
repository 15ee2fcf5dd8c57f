"""Shared set-up for the export and serving tests: a tiny trained-looking run
directory (model_spec.json + a checkpoint, no training), exported once, plus speech."""
from __future__ import annotations

import os

import numpy as np

SAMPLE_RATE = 16000


def tiny_spec(architecture="paper_cnn"):
    from tfspk import model_spec as spec_lib

    return spec_lib.ModelSpec(
        architecture=architecture, num_speakers=5, conv_filters=(16, 16, 16, 24),
        fc_units=(24, 12), features=spec_lib.FeatureSpec(num_mel_bins=20, num_ceps=20))


def make_model_dir(model_dir, spec, steps=(7,), seed=0):
    """Writes model_spec.json and one checkpoint per step the way training does.

    Every step gets different weights (the previous ones plus noise), so that a test
    can tell which checkpoint was restored. Returns `{step: classifier weights}` and the
    classifier holding the last step's weights.
    """
    import keras
    import tensorflow as tf

    from tfspk import model_spec as spec_lib

    keras.utils.set_random_seed(seed)
    classifier = spec_lib.build_classifier_model(spec)
    os.makedirs(os.path.join(model_dir, "checkpoints"), exist_ok=True)
    spec.save(model_dir)
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=classifier), os.path.join(model_dir, "checkpoints"),
        max_to_keep=None, checkpoint_name="ckpt")
    rng = np.random.default_rng(seed)
    weights = {}
    for index, step in enumerate(steps):
        if index:
            for variable in classifier.weights:
                variable.assign(variable.numpy() + 0.05 * rng.standard_normal(
                    variable.shape).astype(np.float32))
        manager.save(checkpoint_number=step)
        weights[step] = [v.numpy() for v in classifier.weights]
    return weights, classifier


def export_tiny_model(root) -> str:
    """A tiny paper-CNN model dir under `root`, exported as version 1; returns the base."""
    from tfspk import export

    model_dir = os.path.join(str(root), "run")
    make_model_dir(model_dir, tiny_spec())
    base = os.path.join(str(root), "models", "spk")
    export.export_saved_model(model_dir, base, version=1, warmup=False)
    return base


def speech_like(num_samples, seed=0, rate=SAMPLE_RATE):
    """Voiced, syllable-modulated harmonic signal with a gliding pitch, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / rate
    pitch = 110 + 40 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(k * phase) / k * (1 + np.cos(2 * np.pi * k * 700 / 3000))
                 for k in range(1, 25))
    syllables = 0.5 * (1 + np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6))) ** 2
    signal = syllables * voiced + 0.3 * rng.standard_normal(num_samples)
    return (0.1 * signal / np.abs(signal).max()).astype(np.float32)


def librispeech_clips(directory, seconds, offset_seconds=0.5):
    """Crops of `seconds[i]` from the i-th LibriSpeech file (sorted), float32."""
    import soundfile

    paths = sorted(p for p in os.listdir(directory) if p.endswith(".flac"))
    clips = []
    for path, duration in zip(paths, seconds):
        audio, rate = soundfile.read(os.path.join(directory, path), dtype="float32")
        assert rate == SAMPLE_RATE, (path, rate)
        start = int(offset_seconds * rate)
        clips.append(audio[start:start + int(duration * rate)])
    return clips


def keras_embeddings(classifier, spec, waveforms, layer=None):
    """The reference: front end + trained Keras network on each waveform alone."""
    import tensorflow as tf

    from tfspk import model_spec as spec_lib

    frontend = spec_lib.build_frontend(spec)
    result = []
    for waveform in waveforms:
        features, frame_lengths = frontend(tf.constant(waveform[None]),
                                           tf.constant([len(waveform)]))
        outputs = classifier.embedding_model(
            {"features": features, "lengths": frame_lengths}, training=False)
        result.append(outputs[layer or spec.embedding_layer].numpy()[0])
    return np.stack(result)
