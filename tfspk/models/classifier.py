"""Speaker classifier for training: an embedding model plus a classification head.

`logits = classifier({"features", "lengths"}, labels=labels, training=True)`;
margin heads use `labels` to apply their margin, the plain softmax head ignores
them. Logits are float32 (also under mixed precision). Save as `.keras`; after
training, `classifier.embedding_model` is the model to export and extract with.
"""
import inspect

import keras

from tfspk.layers import AAMSoftmax, AMSoftmax

HEADS = ("softmax", "am_softmax", "aam_softmax")


def make_head(kind, num_speakers, **head_kwargs):
    """'softmax' -> Dense logits; 'am_softmax' -> AMSoftmax; 'aam_softmax' -> AAMSoftmax."""
    if kind == "softmax":
        return keras.layers.Dense(num_speakers, dtype="float32", name="head",
                                  **head_kwargs)
    if kind == "am_softmax":
        return AMSoftmax(num_speakers, name="head", **head_kwargs)
    if kind == "aam_softmax":
        return AAMSoftmax(num_speakers, name="head", **head_kwargs)
    raise ValueError(f"head must be one of {HEADS}, got {kind!r}")


@keras.saving.register_keras_serializable(package="tfspk")
class SpeakerClassifier(keras.Model):
    """`embedding_model` (dict outputs) -> `outputs[embedding]` -> `head` -> logits."""

    def __init__(self, embedding_model, head, embedding="fc2", **kwargs):
        super().__init__(**kwargs)
        outputs = embedding_model.output
        if not isinstance(outputs, dict) or embedding not in outputs:
            available = sorted(outputs) if isinstance(outputs, dict) else outputs
            raise ValueError(f"embedding {embedding!r} is not an output of "
                             f"{embedding_model.name}; outputs: {available}")
        self.embedding_model = embedding_model
        self.head = head
        self.embedding = embedding
        self._head_takes_labels = "labels" in inspect.signature(head.call).parameters
        # Create the head's weights now, so that a loaded model has every
        # variable before its weights are restored.
        if not head.built:
            head.build((None, outputs[embedding].shape[-1]))
        self.built = True

    def call(self, inputs, labels=None, training=None):
        embeddings = self.embedding_model(inputs, training=training)[self.embedding]
        if self._head_takes_labels:
            return self.head(embeddings, labels=labels, training=training)
        return self.head(embeddings, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            embedding_model=keras.saving.serialize_keras_object(self.embedding_model),
            head=keras.saving.serialize_keras_object(self.head),
            embedding=self.embedding)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["embedding_model"] = keras.saving.deserialize_keras_object(
            config["embedding_model"])
        config["head"] = keras.saving.deserialize_keras_object(config["head"])
        return cls(**config)


def build_classifier(embedding_model, num_speakers, head="softmax",
                     embedding="fc2", **head_kwargs):
    """A `SpeakerClassifier` with a new head over `embedding_model`'s `embedding`.

    `head_kwargs` go to the head (e.g. `scale=30.0, margin=0.2` for margin
    heads, `easy_margin=True` for AAM-softmax).
    """
    if num_speakers < 2:
        raise ValueError(f"num_speakers must be >= 2, got {num_speakers}")
    return SpeakerClassifier(embedding_model,
                             make_head(head, num_speakers, **head_kwargs),
                             embedding=embedding,
                             name=f"{embedding_model.name}_classifier")
