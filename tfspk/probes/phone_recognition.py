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
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from tfspk import phones

from tfspk.probes import data
from tfspk.probes.edit_distance import EditCounts, edit_distance, fold_label, fold_phones
from tfspk.probes.frames import FrameEmbedder
from tfspk.probes.report import Artifact, write_csv, write_json

PROBE = "phone_recognition"
LOSSES = ("framewise", "ctc")
BLANK = 0
#: CTC output symbols: the blank, then the 39 folded phones.
SYMBOLS: tuple[str, ...] = ("<blank>",) + phones.TIMIT39
#: Frame label of a frame no phone owns (q, or outside the alignment): no loss there.
UNLABELLED = -1


def output_symbols(loss: str) -> tuple[str, ...]:
    """The recognizer's output classes for `loss`: framewise has no blank."""
    if loss not in LOSSES:
        raise ValueError(f"{PROBE}: unknown loss {loss!r}; choose one of {LOSSES}")
    return SYMBOLS if loss == "ctc" else phones.TIMIT39


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


@dataclasses.dataclass
class Example:
    frames: np.ndarray          # [T, D]
    targets: list[int]          # CTC symbol ids of the folded reference (no blanks)
    reference: list[str]        # folded reference phones
    frame_labels: np.ndarray    # [T] index into TIMIT39 of each frame's phone, or UNLABELLED


def encode(labels61: Sequence[str]) -> tuple[list[str], list[int]]:
    """Folded reference (q removed) and its CTC symbol ids."""
    reference = fold_phones(labels61)
    return reference, [SYMBOLS.index(label) for label in reference]


def frame_phone_labels(embedder: FrameEmbedder, layer: str, utt,
                       num_frames: int) -> np.ndarray:
    """`[num_frames]` index into TIMIT39 of the folded phone owning each frame of `layer`.

    A frame belongs to the phone whose segment holds its centre (`segment_frames`). A phone
    too short to hold a centre claims its nearest frame; taking it from the neighbour
    keeps the short phone in the frame sequence. Frames of q (deleted by the folding) and
    frames outside the alignment are UNLABELLED.
    """
    labels = np.full(num_frames, UNLABELLED, np.int32)
    for phone, piece in zip(utt.phones, data.segment_slices(embedder, layer, utt, num_frames)):
        folded = fold_label(phone.label)
        labels[piece] = UNLABELLED if folded is None else phones.TIMIT39.index(folded)
    return labels


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


def collect_examples(embedder: FrameEmbedder, utterances, layer: str,
                     progress: bool = True) -> list[Example]:
    examples = []
    for utt, frames in data.embed_utterances(embedder, utterances, [layer],
                                             f"{PROBE}: {layer}", progress):
        reference, targets = encode(data.phone_labels(utt))
        layer_frames = frames[layer]
        # float16 halves memory; the recognizer computes in float32 after normalisation.
        examples.append(Example(layer_frames.astype(np.float16), targets, reference,
                                frame_phone_labels(embedder, layer, utt, len(layer_frames))))
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


@dataclasses.dataclass
class _Batch:
    frames: np.ndarray          # [B, T, D] float32, zero padded
    lengths: np.ndarray         # [B]
    labels: np.ndarray          # [B, L] CTC targets, zero padded
    label_lengths: np.ndarray   # [B]
    frame_labels: np.ndarray    # [B, T], UNLABELLED on padding


def _pad_batch(batch: Sequence[Example], normaliser: _Normaliser) -> _Batch:
    lengths = np.array([len(ex.frames) for ex in batch], np.int32)
    frames = np.zeros((len(batch), lengths.max(), batch[0].frames.shape[1]), np.float32)
    frame_labels = np.full((len(batch), lengths.max()), UNLABELLED, np.int32)
    for row, ex in enumerate(batch):
        frames[row, :lengths[row]] = normaliser(ex.frames)
        frame_labels[row, :lengths[row]] = ex.frame_labels
    label_lengths = np.array([len(ex.targets) for ex in batch], np.int32)
    labels = np.zeros((len(batch), max(label_lengths.max(), 1)), np.int32)
    for row, ex in enumerate(batch):
        labels[row, :len(ex.targets)] = ex.targets
    return _Batch(frames, lengths, labels, label_lengths, frame_labels)


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


_LOSS_FUNCTIONS = {"ctc": ctc_loss, "framewise": framewise_loss}


def training_pieces(examples: Sequence[Example], chunk_frames: int,
                    rng: np.random.Generator) -> list[Example]:
    """Framewise training sequences: each example cut into pieces of `chunk_frames` frames
    from a random phase (so piece ends move between epochs); pieces without a labelled
    frame are dropped. `chunk_frames=0` keeps whole examples."""
    if chunk_frames <= 0:
        return list(examples)
    pieces = []
    for example in examples:
        cuts = list(range(int(rng.integers(chunk_frames)), len(example.frames), chunk_frames))
        for start, stop in zip([0] + cuts, cuts + [len(example.frames)]):
            labels = example.frame_labels[start:stop]
            if stop > start and (labels != UNLABELLED).any():
                pieces.append(Example(example.frames[start:stop], [], [], labels))
    return pieces


def _usable(example: Example, loss: str) -> bool:
    if loss == "ctc":
        return bool(example.targets) and len(example.frames) >= ctc_min_frames(example.targets)
    return bool((example.frame_labels != UNLABELLED).any())


@dataclasses.dataclass
class TrainedRecognizer:
    model: PhoneRecognizer
    normaliser: _Normaliser
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
            batch = _pad_batch(examples[start:start + batch_size], self.normaliser)
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
    usable = [ex for ex in examples if _usable(ex, config.loss)]
    if not usable:
        raise ValueError(f"{PROBE}: no training utterance is usable for the {config.loss} "
                         "loss (too few frames for its phones, or no labelled frame)")
    normaliser = _Normaliser(usable)
    # The seed reaches the initializers; the global random state is left alone.
    model = PhoneRecognizer(len(output_symbols(config.loss)), config.units, config.num_layers,
                            config.bidirectional, seed=config.seed)
    optimizer = keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.clip_norm)
    loss_function = _LOSS_FUNCTIONS[config.loss]
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
            batch = _pad_batch([sequences[i] for i in order[start:start + config.batch_size]],
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
