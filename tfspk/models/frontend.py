"""Compose a waveform front end (e.g. `tfspk.features.MfccFeatures`) with an
embedding model, for waveform-in, embedding-out serving."""
import keras


def with_waveform_frontend(embedding_model, frontend_layer, name=None):
    """Model `{"waveform": float32 [B, S], "lengths": int32 [B] samples}` -> outputs
    of `embedding_model`.

    `frontend_layer(waveform, lengths)` must return `(features [B, T, F],
    frame_lengths [B])`, F matching the embedding model's `features` input.
    """
    inputs = {
        "waveform": keras.Input(shape=(None,), dtype="float32", name="waveform"),
        "lengths": keras.Input(shape=(), dtype="int32", name="lengths"),
    }
    features, frame_lengths = frontend_layer(inputs["waveform"], inputs["lengths"])
    expected = embedding_model.input["features"].shape[-1]
    if features.shape[-1] != expected:
        raise ValueError(f"{frontend_layer.name} gives {features.shape[-1]} features "
                         f"per frame but {embedding_model.name} expects {expected}")
    outputs = embedding_model({"features": features, "lengths": frame_lengths})
    return keras.Model(inputs, outputs,
                       name=name or f"{embedding_model.name}_waveform")
