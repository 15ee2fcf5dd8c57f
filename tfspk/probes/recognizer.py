"""The phone recognizer of `tfspk.probes.phone_recognition`: output symbols, the
(Bi)LSTM model, its two losses (CTC, framewise cross-entropy) and decoding."""
from __future__ import annotations

from typing import Optional, Sequence

import keras
import tensorflow as tf

from tfspk import phones

LOSSES = ("framewise", "ctc")
BLANK = 0
#: CTC output symbols: the blank, then the 39 folded phones.
SYMBOLS: tuple[str, ...] = ("<blank>",) + phones.TIMIT39
#: Frame label of a frame no phone owns (q, or outside the alignment): no loss there.
UNLABELLED = -1


def output_symbols(loss: str) -> tuple[str, ...]:
    """The recognizer's output classes for `loss`: framewise has no blank."""
    if loss not in LOSSES:
        raise ValueError(f"phone_recognition: unknown loss {loss!r}; choose one of {LOSSES}")
    return SYMBOLS if loss == "ctc" else phones.TIMIT39


@keras.saving.register_keras_serializable(package="probes")
class PhoneRecognizer(keras.Model):
    """Stacked (Bi)LSTM over `[B, T, D]` frames with explicit lengths -> `[B, T, C]` logits."""

    def __init__(self, num_symbols: int = len(SYMBOLS), units: int = 128, num_layers: int = 2,
                 bidirectional: bool = True, seed: Optional[int] = None, **kwargs):
        """`seed` (an int) makes the initial weights reproducible without touching the
        global random state; None draws them from Keras' global generator."""
        super().__init__(**kwargs)
        self.num_symbols = num_symbols
        self.units = units
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.seed = seed
        seeds = iter(range(3 * (2 * num_layers + 1)))

        def initializers():
            # Every weight matrix gets its own seed (a shared int seed would give the
            # forward and backward LSTMs the same start).
            if seed is None:
                return {}
            return {"kernel_initializer": keras.initializers.GlorotUniform(
                        seed=seed * 1000 + next(seeds)),
                    "recurrent_initializer": keras.initializers.Orthogonal(
                        seed=seed * 1000 + next(seeds))}

        self.recurrent = []
        for index in range(num_layers):
            lstm = keras.layers.LSTM(units, return_sequences=True, name=f"lstm{index + 1}",
                                     **initializers())
            if bidirectional:
                backward = keras.layers.LSTM(units, return_sequences=True, go_backwards=True,
                                             name=f"lstm{index + 1}_backward", **initializers())
                lstm = keras.layers.Bidirectional(lstm, backward_layer=backward,
                                                  name=f"bilstm{index + 1}")
            self.recurrent.append(lstm)
        output_init = ({} if seed is None else {"kernel_initializer":
                       keras.initializers.GlorotUniform(seed=seed * 1000 + next(seeds))})
        self.output_layer = keras.layers.Dense(num_symbols, name="logits", **output_init)

    def call(self, inputs, training=None):
        frames, lengths = inputs
        # Padding must not leak into the backward LSTM, hence an explicit mask.
        mask = tf.sequence_mask(lengths, tf.shape(frames)[1])
        x = frames
        for layer in self.recurrent:
            x = layer(x, mask=mask, training=training)
        return self.output_layer(x)

    def get_config(self):
        config = super().get_config()
        config.update(num_symbols=self.num_symbols, units=self.units,
                      num_layers=self.num_layers, bidirectional=self.bidirectional,
                      seed=self.seed)
        return config


def ctc_loss(logits, batch_tensors):
    """Mean CTC loss per utterance."""
    lengths, labels, label_lengths, _ = batch_tensors
    return tf.reduce_mean(tf.nn.ctc_loss(labels, logits, label_lengths, lengths,
                                         logits_time_major=False, blank_index=BLANK))


def framewise_loss(logits, batch_tensors):
    """Mean cross-entropy per labelled frame (padding and UNLABELLED frames excluded)."""
    _, _, _, frame_labels = batch_tensors
    labelled = tf.cast(frame_labels != UNLABELLED, logits.dtype)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.maximum(frame_labels, 0), logits=logits)
    return tf.reduce_sum(losses * labelled) / tf.maximum(tf.reduce_sum(labelled), 1.0)


LOSS_FUNCTIONS = {"ctc": ctc_loss, "framewise": framewise_loss}


def ctc_min_frames(targets: Sequence[int]) -> int:
    """Frames CTC needs for `targets`: one per label plus a blank between repeats."""
    repeats = sum(1 for a, b in zip(targets, targets[1:]) if a == b)
    return len(targets) + repeats


def merge_repeats(frame_symbols: Sequence[int]) -> list[int]:
    """Runs of the same symbol collapsed to one: a framewise transcription."""
    merged = []
    for symbol in frame_symbols:
        symbol = int(symbol)
        if not merged or merged[-1] != symbol:
            merged.append(symbol)
    return merged


def greedy_ctc_decode(frame_symbols: Sequence[int], blank: int = BLANK) -> list[int]:
    """Best-path decoding: merge runs of the same symbol, then drop blanks."""
    return [symbol for symbol in merge_repeats(frame_symbols) if symbol != blank]


def decode_frames(frame_symbols: Sequence[int], loss: str) -> list[str]:
    """Phone labels from per-frame best symbols of a recognizer trained with `loss`."""
    symbols = output_symbols(loss)
    ids = greedy_ctc_decode(frame_symbols) if loss == "ctc" else merge_repeats(frame_symbols)
    return [symbols[i] for i in ids]
