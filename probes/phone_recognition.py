"""Phone recognition from each layer's frame embeddings (paper section 4, Fig. 2).

For every layer, a small recognizer (2-layer bidirectional LSTM + linear output, CTC loss
over the 39 folded phones) is trained on the TRAIN split's frame embeddings and scored on
TEST by phone error rate: greedy CTC decoding, Levenshtein alignment to the reference
folded to 39 phones with q removed. A speaker network that discards phonetic content gives
a high PER.

`python -m probes.phone_recognition --saved_model=DIR --timit_dir=DIR --output_dir=OUT`
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags
from tqdm import tqdm

from tfspk import phones

from probes import cli, data
from probes.edit_distance import EditCounts, edit_distance, fold_phones
from probes.frames import FrameEmbedder
from probes.report import Artifact, update_report, write_csv, write_json

PROBE = "phone_recognition"
BLANK = 0
#: Output symbols: CTC blank, then the 39 folded phones.
SYMBOLS: tuple[str, ...] = ("<blank>",) + phones.TIMIT39


@dataclasses.dataclass
class RecognizerConfig:
    """Sizes and schedule of the per-layer recognizer."""

    units: int = 128
    num_layers: int = 2
    bidirectional: bool = True
    epochs: int = 10
    batch_size: int = 16
    learning_rate: float = 1e-3
    clip_norm: float = 5.0
    seed: int = 0


@keras.saving.register_keras_serializable(package="probes")
class CtcPhoneRecognizer(keras.Model):
    """Stacked (Bi)LSTM over `[B, T, D]` frames with explicit lengths -> `[B, T, C]` logits."""

    def __init__(self, num_symbols: int = len(SYMBOLS), units: int = 128, num_layers: int = 2,
                 bidirectional: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.num_symbols = num_symbols
        self.units = units
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.recurrent = []
        for index in range(num_layers):
            lstm = keras.layers.LSTM(units, return_sequences=True, name=f"lstm{index + 1}")
            if bidirectional:
                lstm = keras.layers.Bidirectional(lstm, name=f"bilstm{index + 1}")
            self.recurrent.append(lstm)
        self.output_layer = keras.layers.Dense(num_symbols, name="logits")

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
                      num_layers=self.num_layers, bidirectional=self.bidirectional)
        return config


@dataclasses.dataclass
class Example:
    frames: np.ndarray          # [T, D]
    targets: list[int]          # symbol ids of the folded reference (no blanks)
    reference: list[str]        # folded reference phones


def encode(labels61: Sequence[str]) -> tuple[list[str], list[int]]:
    """Folded reference (q removed) and its symbol ids."""
    reference = fold_phones(labels61)
    return reference, [SYMBOLS.index(label) for label in reference]


def ctc_min_frames(targets: Sequence[int]) -> int:
    """Frames CTC needs for `targets`: one per label plus a blank between repeats."""
    repeats = sum(1 for a, b in zip(targets, targets[1:]) if a == b)
    return len(targets) + repeats


def greedy_ctc_decode(frame_symbols: Sequence[int], blank: int = BLANK) -> list[int]:
    """Best-path decoding: merge runs of the same symbol, then drop blanks."""
    decoded, previous = [], None
    for symbol in frame_symbols:
        symbol = int(symbol)
        if symbol != previous and symbol != blank:
            decoded.append(symbol)
        previous = symbol
    return decoded


def collect_examples(embedder: FrameEmbedder, utterances, layer: str,
                     progress: bool = True) -> list[Example]:
    examples = []
    for utt, frames in data.embed_utterances(embedder, utterances, [layer],
                                             f"{PROBE}: {layer}", progress):
        reference, targets = encode(data.phone_labels(utt))
        # float16 halves memory; the recognizer computes in float32 after normalisation.
        examples.append(Example(frames[layer].astype(np.float16), targets, reference))
    return examples


class _Normaliser:
    """Per-dimension standardisation with training-set statistics: layers differ in scale
    by orders of magnitude (MFCC vs ReLU outputs) and one learning rate must fit all."""

    def __init__(self, examples: Sequence[Example]):
        stacked = np.concatenate([ex.frames.astype(np.float64) for ex in examples])
        self.mean = stacked.mean(axis=0)
        self.scale = 1.0 / np.maximum(stacked.std(axis=0), 1e-5)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return ((frames.astype(np.float64) - self.mean) * self.scale).astype(np.float32)


def _pad_batch(batch: Sequence[Example], normaliser: _Normaliser):
    lengths = np.array([len(ex.frames) for ex in batch], np.int32)
    frames = np.zeros((len(batch), lengths.max(), batch[0].frames.shape[1]), np.float32)
    for row, ex in enumerate(batch):
        frames[row, :lengths[row]] = normaliser(ex.frames)
    label_lengths = np.array([len(ex.targets) for ex in batch], np.int32)
    labels = np.zeros((len(batch), max(label_lengths.max(), 1)), np.int32)
    for row, ex in enumerate(batch):
        labels[row, :len(ex.targets)] = ex.targets
    return frames, lengths, labels, label_lengths


@dataclasses.dataclass
class TrainedRecognizer:
    model: CtcPhoneRecognizer
    normaliser: _Normaliser
    losses: list[float]          # mean training CTC loss per epoch
    skipped: int                 # training utterances too short for their labels

    def decode(self, examples: Sequence[Example], batch_size: int = 16) -> list[list[str]]:
        """Greedy CTC transcriptions (39-phone labels) of `examples`."""
        if not examples:
            return []
        dims = examples[0].frames.shape[1]

        # Traced once for all batch shapes: eager LSTM calls are about 20x slower.
        @tf.function(input_signature=[tf.TensorSpec([None, None, dims], tf.float32),
                                      tf.TensorSpec([None], tf.int32)])
        def best_path(frames, lengths):
            return tf.argmax(self.model((frames, lengths), training=False), axis=-1)

        hypotheses = []
        for start in range(0, len(examples), batch_size):
            batch = examples[start:start + batch_size]
            frames, lengths, _, _ = _pad_batch(batch, self.normaliser)
            best = best_path(frames, lengths).numpy()
            for row, length in enumerate(lengths):
                hypotheses.append([SYMBOLS[s] for s in greedy_ctc_decode(best[row, :length])])
        return hypotheses


def train_recognizer(examples: Sequence[Example], config: RecognizerConfig,
                     progress: bool = True) -> TrainedRecognizer:
    """Trains a CtcPhoneRecognizer with Adam in a custom loop (one device)."""
    usable = [ex for ex in examples if ex.targets and len(ex.frames) >= ctc_min_frames(ex.targets)]
    if not usable:
        raise ValueError(f"{PROBE}: no training utterance has enough frames for its phones")
    keras.utils.set_random_seed(config.seed)
    normaliser = _Normaliser(usable)
    model = CtcPhoneRecognizer(len(SYMBOLS), config.units, config.num_layers,
                               config.bidirectional)
    optimizer = keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.clip_norm)
    dims = usable[0].frames.shape[1]

    @tf.function(input_signature=[tf.TensorSpec([None, None, dims], tf.float32),
                                  tf.TensorSpec([None], tf.int32),
                                  tf.TensorSpec([None, None], tf.int32),
                                  tf.TensorSpec([None], tf.int32)])
    def step(frames, lengths, labels, label_lengths):
        with tf.GradientTape() as tape:
            logits = model((frames, lengths), training=True)
            loss = tf.reduce_mean(tf.nn.ctc_loss(
                labels, logits, label_lengths, lengths, logits_time_major=False,
                blank_index=BLANK))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    rng = np.random.default_rng(config.seed)
    losses = []
    for _ in tqdm(range(config.epochs), desc=f"{PROBE}: training", disable=not progress,
                  leave=False):
        order = rng.permutation(len(usable))
        epoch_losses = []
        for start in range(0, len(order), config.batch_size):
            batch = [usable[i] for i in order[start:start + config.batch_size]]
            epoch_losses.append(float(step(*_pad_batch(batch, normaliser))))
        losses.append(float(np.mean(epoch_losses)))
    return TrainedRecognizer(model, normaliser, losses, len(examples) - len(usable))


@dataclasses.dataclass
class LayerPer:
    layer: str
    counts: EditCounts
    losses: list[float]
    skipped: int

    @property
    def per(self) -> float:
        return self.counts.error_rate


def layer_phone_error_rate(embedder: FrameEmbedder, train, test, layer: str,
                           config: RecognizerConfig, progress: bool = True) -> LayerPer:
    """Trains on `train` utterances' `layer` frames and scores PER on `test`."""
    recognizer = train_recognizer(collect_examples(embedder, train, layer, progress),
                                  config, progress)
    test_examples = collect_examples(embedder, test, layer, progress)
    counts = EditCounts()
    for example, hypothesis in zip(test_examples, recognizer.decode(test_examples)):
        counts = counts + edit_distance(example.reference, hypothesis)
    return LayerPer(layer, counts, recognizer.losses, recognizer.skipped)


def phone_error_rates(embedder: FrameEmbedder, train, test,
                      layers: Optional[Sequence[str]] = None,
                      config: Optional[RecognizerConfig] = None,
                      progress: bool = True) -> dict[str, LayerPer]:
    config = config or RecognizerConfig()
    return {layer: layer_phone_error_rate(embedder, train, test, layer, config, progress)
            for layer in (layers or embedder.layers)}


def write_outputs(results: dict[str, LayerPer], config: RecognizerConfig,
                  output_dir: str) -> list[Artifact]:
    from probes.broad_class import plot_accuracy

    rows = [(r.layer, f"{r.per:.6f}", r.counts.substitutions, r.counts.deletions,
             r.counts.insertions, r.counts.reference_length, f"{r.losses[-1]:.4f}", r.skipped)
            for r in results.values()]
    csv_path = write_csv(os.path.join(output_dir, "phone_error_rate.csv"),
                         ["layer", "per", "substitutions", "deletions", "insertions",
                          "reference_phones", "final_train_ctc_loss", "skipped_train_utts"],
                         rows)
    json_path = write_json(os.path.join(output_dir, "phone_recognition.json"), {
        "config": dataclasses.asdict(config),
        "layers": {r.layer: {"per": r.per, "train_losses": r.losses,
                             **dataclasses.asdict(r.counts)} for r in results.values()}})
    png_path = plot_accuracy({r.layer: r.per for r in results.values()},
                             os.path.join(output_dir, "phone_error_rate.png"),
                             "Phone error rate per layer (BiLSTM-CTC, 39 phones)",
                             ylabel="PER")
    best = min(results.values(), key=lambda r: r.per)
    return [
        Artifact(PROBE, csv_path, f"PER per layer, 39 folded phones (best {best.layer}: "
                 f"{best.per:.3f})"),
        Artifact(PROBE, png_path, "PER per layer (paper Fig. 2)"),
        Artifact(PROBE, json_path, "recognizer config, training losses and edit counts"),
    ]


def config_from_flags() -> RecognizerConfig:
    return RecognizerConfig(units=FLAGS.per_units, num_layers=FLAGS.per_num_layers,
                            bidirectional=FLAGS.per_bidirectional, epochs=FLAGS.per_epochs,
                            batch_size=FLAGS.per_batch_size,
                            learning_rate=FLAGS.per_learning_rate, seed=FLAGS.seed)


FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS) -> None:
    """Common flags plus the recognizer's (`--per_*`)."""
    cli.define_common_flags(flag_values)
    integer, once = flags.DEFINE_integer, cli.define_once
    once(integer, "per_units", 128, "LSTM units per direction of the phone recognizer.",
         flag_values)
    once(integer, "per_num_layers", 2, "LSTM layers of the phone recognizer.", flag_values)
    once(flags.DEFINE_bool, "per_bidirectional", True, "Bidirectional LSTMs.", flag_values)
    once(integer, "per_epochs", 10, "Training epochs per layer.", flag_values)
    once(integer, "per_batch_size", 16, "Utterances per training batch.", flag_values)
    once(flags.DEFINE_float, "per_learning_rate", 1e-3, "Adam learning rate.", flag_values)
    once(flags.DEFINE_list, "per_layers", None, "Layers to train recognizers on; default: "
         "every layer (phone_recognition, run) or the last one (over_training).", flag_values)


def main(argv):
    cli.check_common(argv)
    config = config_from_flags()
    embedder = cli.embedder_from_flags()
    results = phone_error_rates(embedder, cli.split_from_flags("TRAIN"),
                                cli.split_from_flags("TEST"), FLAGS.per_layers, config)
    print(update_report(FLAGS.output_dir, write_outputs(results, config, FLAGS.output_dir)))


if __name__ == "__main__":
    define_flags()
    app.run(main)
