"""Phone recognition from each layer's frame embeddings (paper section 4, Fig. 2).

For every layer, a small recognizer (2-layer bidirectional LSTM + linear output) is
trained on the TRAIN split's frame embeddings and scored on TEST by phone error rate:
Levenshtein alignment of its transcription to the reference folded to Lee & Hon's 39
phones (`sil` kept, q removed). A speaker network that discards phonetic content gives a
high PER. The paper allows CTC or a segmental loss; both are here (`--per_loss`):

- `framewise` (default): per-frame cross-entropy against the phone that owns each frame
  in the .PHN alignment (frame positions from the layer's geometry, as every probe uses);
  decoding takes the best phone per frame and merges runs of the same phone. The dense
  supervision trains in a few epochs on a small corpus.
- `ctc`: CTC over blank + 39 phones, greedy best-path decoding. Needs far more data or
  epochs before it emits anything but blanks (on 180 utterances and 6 epochs it emits
  nothing else: PER 1.0 at every layer).

`python -m probes.phone_recognition --saved_model=DIR --timit_dir=DIR --output_dir=OUT`

Here: the configuration, the training loop, PER per layer and the outputs; the model,
losses and decoding are `tfspk.probes.recognizer`, the examples `tfspk.probes.phone_examples`
(both re-exported here).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from tfspk.probes import checks
from tfspk.probes.edit_distance import EditCounts, edit_distance
from tfspk.probes.frames import FrameEmbedder
# Re-exported: this module's names before the recognizer and examples had their own.
from tfspk.probes.phone_examples import (  # noqa: F401
    Batch, Example, Normaliser, collect_examples, encode, frame_phone_labels, pad_batch,
    training_pieces, is_usable)
from tfspk.probes.recognizer import (  # noqa: F401
    BLANK, LOSS_FUNCTIONS, LOSSES, SYMBOLS, UNLABELLED, PhoneRecognizer, ctc_loss,
    ctc_min_frames, decode_frames, framewise_loss, greedy_ctc_decode, merge_repeats,
    output_symbols)
from tfspk.probes.report import Artifact, write_csv, write_json

PROBE = "phone_recognition"


@dataclasses.dataclass
class RecognizerConfig:
    """Loss, sizes and schedule of the per-layer recognizer.

    The defaults are set for the framewise loss on small corpora: on the demo's 180-
    utterance TIMIT-layout TRAIN split they train in 10-15 s per layer on two CPU cores
    and reach PER 0.12 on MFCCs. For `ctc`, use whole utterances, smaller batches and
    a lower learning rate (e.g. batch 16, 1e-3) and many more epochs.
    """

    loss: str = "framewise"
    units: int = 64
    num_layers: int = 2
    bidirectional: bool = True
    epochs: int = 6
    batch_size: int = 128        # sequences per batch: utterances (ctc) or pieces
    learning_rate: float = 1e-2
    #: framewise: train on pieces of this many frames (0: whole utterances). Short pieces
    #: make wide batches of short sequences, which a CPU runs far faster than few long
    #: ones; dense frame labels lose nothing but some context at the piece ends.
    chunk_frames: int = 32
    clip_norm: float = 5.0
    seed: int = 0

    def __post_init__(self):
        output_symbols(self.loss)   # validates the loss name
        # Checked here, not when the recognizer trains after minutes of embedding; the
        # options are named as the `--per_*` flags that set them.
        for name in ("units", "num_layers", "epochs", "batch_size"):
            checks.check_positive(f"per_{name}", getattr(self, name))
        if self.chunk_frames < 0:
            raise checks.ProbeOptionError("per_chunk_frames", self.chunk_frames,
                                          "must be >= 0 (0: whole utterances)")
        for name, value in (("per_learning_rate", self.learning_rate),
                            ("clip_norm", self.clip_norm)):
            if not value > 0:   # NaN too
                raise checks.ProbeOptionError(name, value, "must be > 0")


@dataclasses.dataclass
class TrainedRecognizer:
    model: PhoneRecognizer
    normaliser: Normaliser
    loss: str
    losses: list[float]          # mean training loss per epoch
    skipped: int                 # training utterances unusable for the loss

    def best_symbols(self, examples: Sequence[Example], batch_size: int = 64):
        """Per example, the `[T]` best output symbol of each valid frame."""
        if not examples:
            return []
        dims = examples[0].frames.shape[1]

        # Traced once for all batch shapes: eager LSTM calls are about 20x slower.
        @tf.function(input_signature=[tf.TensorSpec([None, None, dims], tf.float32),
                                      tf.TensorSpec([None], tf.int32)])
        def best_path(frames, lengths):
            return tf.argmax(self.model((frames, lengths), training=False), axis=-1)

        best = []
        for start in range(0, len(examples), batch_size):
            batch = pad_batch(examples[start:start + batch_size], self.normaliser)
            symbols = best_path(batch.frames, batch.lengths).numpy()
            best.extend(symbols[row, :length] for row, length in enumerate(batch.lengths))
        return best

    def decode(self, examples: Sequence[Example], batch_size: int = 64) -> list[list[str]]:
        """Transcriptions (39-phone labels) of `examples`."""
        return [decode_frames(symbols, self.loss)
                for symbols in self.best_symbols(examples, batch_size)]


def train_recognizer(examples: Sequence[Example], config: RecognizerConfig,
                     progress: bool = True) -> TrainedRecognizer:
    """Trains a PhoneRecognizer with Adam in a custom loop (one device)."""
    usable = [ex for ex in examples if is_usable(ex, config.loss)]
    if not usable:
        raise ValueError(f"{PROBE}: no training utterance is usable for the {config.loss} "
                         "loss (too few frames for its phones, or no labelled frame)")
    normaliser = Normaliser(usable)
    # The seed reaches the initializers; the global random state is left alone.
    model = PhoneRecognizer(len(output_symbols(config.loss)), config.units, config.num_layers,
                            config.bidirectional, seed=config.seed)
    optimizer = keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.clip_norm)
    loss_function = LOSS_FUNCTIONS[config.loss]
    dims = usable[0].frames.shape[1]

    @tf.function(input_signature=[tf.TensorSpec([None, None, dims], tf.float32),
                                  tf.TensorSpec([None], tf.int32),
                                  tf.TensorSpec([None, None], tf.int32),
                                  tf.TensorSpec([None], tf.int32),
                                  tf.TensorSpec([None, None], tf.int32)])
    def step(frames, lengths, labels, label_lengths, frame_labels):
        with tf.GradientTape() as tape:
            logits = model((frames, lengths), training=True)
            loss = loss_function(logits, (lengths, labels, label_lengths, frame_labels))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    rng = np.random.default_rng(config.seed)
    losses = []
    for _ in tqdm(range(config.epochs), desc=f"{PROBE}: training", disable=not progress,
                  leave=False):
        sequences = (training_pieces(usable, config.chunk_frames, rng)
                     if config.loss == "framewise" else usable)
        order = rng.permutation(len(sequences))
        epoch_losses = []
        for start in range(0, len(order), config.batch_size):
            batch = pad_batch([sequences[i] for i in order[start:start + config.batch_size]],
                               normaliser)
            epoch_losses.append(float(step(batch.frames, batch.lengths, batch.labels,
                                           batch.label_lengths, batch.frame_labels)))
        losses.append(float(np.mean(epoch_losses)))
    return TrainedRecognizer(model, normaliser, config.loss, losses,
                             len(examples) - len(usable))


@dataclasses.dataclass
class LayerPer:
    layer: str
    counts: EditCounts
    losses: list[float]
    skipped: int
    frame_accuracy: Optional[float] = None   # framewise: TEST frames given their own phone

    @property
    def per(self) -> float:
        return self.counts.error_rate


def frame_accuracy(examples: Sequence[Example], best: Sequence[np.ndarray]) -> float:
    """Fraction of labelled frames whose best symbol is their phone (framewise symbols)."""
    correct = total = 0
    for example, symbols in zip(examples, best):
        labelled = example.frame_labels != UNLABELLED
        correct += int((symbols[labelled] == example.frame_labels[labelled]).sum())
        total += int(labelled.sum())
    return correct / max(total, 1)


def layer_phone_error_rate(embedder: FrameEmbedder, train, test, layer: str,
                           config: RecognizerConfig, progress: bool = True) -> LayerPer:
    """Trains on `train` utterances' `layer` frames and scores PER on `test`."""
    recognizer = train_recognizer(collect_examples(embedder, train, layer, progress),
                                  config, progress)
    test_examples = collect_examples(embedder, test, layer, progress)
    best = recognizer.best_symbols(test_examples)
    counts = EditCounts()
    for example, symbols in zip(test_examples, best):
        counts = counts + edit_distance(example.reference, decode_frames(symbols, config.loss))
    accuracy = frame_accuracy(test_examples, best) if config.loss == "framewise" else None
    return LayerPer(layer, counts, recognizer.losses, recognizer.skipped, accuracy)


def phone_error_rates(embedder: FrameEmbedder, train, test,
                      layers: Optional[Sequence[str]] = None,
                      config: Optional[RecognizerConfig] = None,
                      progress: bool = True) -> dict[str, LayerPer]:
    checks.check_layers(embedder, "per_layers", layers)
    config = config or RecognizerConfig()
    return {layer: layer_phone_error_rate(embedder, train, test, layer, config, progress)
            for layer in (layers or embedder.layers)}


def describe(config: RecognizerConfig) -> str:
    """E.g. `2x BiLSTM-64, framewise`: for titles and report lines."""
    kind = "BiLSTM" if config.bidirectional else "LSTM"
    return f"{config.num_layers}x {kind}-{config.units}, {config.loss}"


def write_outputs(results: dict[str, LayerPer], config: RecognizerConfig,
                  output_dir: str) -> list[Artifact]:
    from tfspk.probes.broad_class import plot_accuracy

    def optional(value):
        return "" if value is None else f"{value:.6f}"

    rows = [(r.layer, f"{r.per:.6f}", r.counts.substitutions, r.counts.deletions,
             r.counts.insertions, r.counts.reference_length, optional(r.frame_accuracy),
             f"{r.losses[-1]:.4f}", r.skipped)
            for r in results.values()]
    csv_path = write_csv(os.path.join(output_dir, "phone_error_rate.csv"),
                         ["layer", "per", "substitutions", "deletions", "insertions",
                          "reference_phones", "frame_accuracy", "final_train_loss",
                          "skipped_train_utts"], rows)
    json_path = write_json(os.path.join(output_dir, "phone_recognition.json"), {
        "config": dataclasses.asdict(config),
        "layers": {r.layer: {"per": r.per, "frame_accuracy": r.frame_accuracy,
                             "train_losses": r.losses, **dataclasses.asdict(r.counts)}
                   for r in results.values()}})
    png_path = plot_accuracy({r.layer: r.per for r in results.values()},
                             os.path.join(output_dir, "phone_error_rate.png"),
                             f"Phone error rate per layer ({describe(config)}, 39 phones)",
                             ylabel="PER")
    best = min(results.values(), key=lambda r: r.per)
    return [
        Artifact(PROBE, csv_path, f"PER per layer, 39 folded phones, {describe(config)} "
                 f"(best {best.layer}: {best.per:.3f})"),
        Artifact(PROBE, png_path, "PER per layer (paper Fig. 2)"),
        Artifact(PROBE, json_path, "recognizer config, training losses and edit counts"),
    ]
