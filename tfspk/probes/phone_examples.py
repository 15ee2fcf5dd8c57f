"""Training and test material for the phone recognizer: per-utterance frame embeddings
of one layer with their folded reference and per-frame phone labels, normalisation,
padding into batches, and the framewise training pieces."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from tfspk import phones
from tfspk.probes import data
from tfspk.probes.edit_distance import fold_label, fold_phones
from tfspk.probes.frames import FrameEmbedder
from tfspk.probes.recognizer import SYMBOLS, UNLABELLED, ctc_min_frames

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


def collect_examples(embedder: FrameEmbedder, utterances, layer: str,
                     progress: bool = True) -> list[Example]:
    """One Example per utterance from `layer`'s frames (float16 to halve memory)."""
    examples = []
    for utt, frames in data.embed_utterances(embedder, utterances, [layer],
                                             f"phone_recognition: {layer}", progress):
        reference, targets = encode(data.phone_labels(utt))
        layer_frames = frames[layer]
        # float16 halves memory; the recognizer computes in float32 after normalisation.
        examples.append(Example(layer_frames.astype(np.float16), targets, reference,
                                frame_phone_labels(embedder, layer, utt, len(layer_frames))))
    return examples


class Normaliser:
    """Per-dimension standardisation with training-set statistics: layers differ in scale
    by orders of magnitude (MFCC vs ReLU outputs) and one learning rate must fit all."""

    def __init__(self, examples: Sequence[Example]):
        stacked = np.concatenate([ex.frames.astype(np.float64) for ex in examples])
        self.mean = stacked.mean(axis=0)
        self.scale = 1.0 / np.maximum(stacked.std(axis=0), 1e-5)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return ((frames.astype(np.float64) - self.mean) * self.scale).astype(np.float32)


@dataclasses.dataclass
class Batch:
    frames: np.ndarray          # [B, T, D] float32, zero padded
    lengths: np.ndarray         # [B]
    labels: np.ndarray          # [B, L] CTC targets, zero padded
    label_lengths: np.ndarray   # [B]
    frame_labels: np.ndarray    # [B, T], UNLABELLED on padding


def pad_batch(batch: Sequence[Example], normaliser: Normaliser) -> Batch:
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
    return Batch(frames, lengths, labels, label_lengths, frame_labels)


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


def is_usable(example: Example, loss: str) -> bool:
    if loss == "ctc":
        return bool(example.targets) and len(example.frames) >= ctc_min_frames(example.targets)
    return bool((example.frame_labels != UNLABELLED).any())
