"""TIMIT utterances for the probes, their frame embeddings and phone-segment embeddings.

Embeddings are produced utterance by utterance (`embed_utterances` is a generator) so that
a probe keeps only what it needs: the full TIMIT train set at every layer of the paper CNN
would take tens of GB.
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np
from tqdm import tqdm

from tfspk import audio, phones
from tfspk.corpora import timit
from tfspk.corpora.records import CorpusFormatError, Utterance
from tfspk.probes.frames import FrameEmbedder

#: Broad classes in a fixed order for tables and confusion matrices.
BROAD_CLASSES: tuple[str, ...] = tuple(phones.BROAD_CLASSES)


def load_split(timit_dir: str, split: str, max_speakers: Optional[int] = None,
               max_utterances_per_speaker: Optional[int] = None) -> list[Utterance]:
    """Utterances of one TIMIT split that have a phone alignment, sorted by id.

    `max_speakers` keeps the first speakers in sorted order; `max_utterances_per_speaker`
    the first utterances of each (for quick runs). Every kept utterance's audio header is
    read now (`check_alignment`), so an alignment past the end of its audio or an
    unreadable file is refused before any probe work, naming the file.
    """
    from tfspk.probes import checks

    for option, value in (("max_speakers", max_speakers),
                          ("max_utterances_per_speaker", max_utterances_per_speaker)):
        if value is not None:
            checks.check_positive(option, value)
    utterances = [utt for utt in timit.read_timit(timit_dir, split) if utt.phones]
    if not utterances:
        raise CorpusFormatError(f"no {split} utterance has a .PHN alignment", timit_dir)
    by_speaker = group_by_speaker(utterances)
    speakers = sorted(by_speaker)[:max_speakers]
    kept = []
    for speaker in speakers:
        kept.extend(by_speaker[speaker][:max_utterances_per_speaker])
    return [check_alignment(utt) for utt in kept]


def check_alignment(utt: Utterance) -> Utterance:
    """`utt` with its audio's `sample_rate` and `num_samples` in `meta`, after checking
    from the header that its phones end within the audio.

    A .PHN that runs past the audio would otherwise be clipped to the last frames without a
    word (`frames_centred_in` clips to the valid frames) and change the probe results.
    """
    import soundfile

    try:
        info = soundfile.info(utt.path)
    except (soundfile.SoundFileError, RuntimeError, OSError) as error:
        raise audio.AudioError(f"cannot read the audio header ({error})", utt.path) from None
    available = info.frames if utt.end is None else min(utt.end, info.frames)
    timit.check_phones_end(utt.path, utt.phones, available)
    return dataclasses.replace(utt, meta=dict(utt.meta, sample_rate=int(info.samplerate),
                                              num_samples=int(info.frames)))


def group_by_speaker(utterances: Iterable[Utterance]) -> dict[str, list[Utterance]]:
    """`{speaker: [utterances in input order]}`."""
    groups: dict[str, list[Utterance]] = collections.defaultdict(list)
    for utt in utterances:
        groups[utt.speaker].append(utt)
    return dict(groups)


def load_waveform(utt: Utterance, sample_rate: int) -> np.ndarray:
    """The utterance's samples as float32 at `sample_rate`."""
    samples, _ = audio.load_audio(utt.path, sample_rate, start=utt.start, end=utt.end)
    return samples


def embed_utterances(embedder: FrameEmbedder, utterances: Sequence[Utterance],
                     layers: Optional[Sequence[str]] = None, description: str = "embedding",
                     progress: bool = True) -> Iterator[tuple[Utterance, dict[str, np.ndarray]]]:
    """Yields `(utterance, {layer: [T, D]})` for each utterance, keeping only `layers`."""
    layers = tuple(layers or embedder.layers)
    for utt in tqdm(utterances, desc=description, disable=not progress, leave=False):
        frames = embedder.embed(load_waveform(utt, embedder.sample_rate))
        yield utt, {layer: frames[layer] for layer in layers}


def segment_slices(embedder: FrameEmbedder, layer: str, utt: Utterance,
                   num_frames: int) -> list[slice]:
    """The frames of `layer` that belong to each phone of `utt`, in phone order.

    Phones are in the samples of the audio file; when `load_split` recorded the file's
    rate and the model runs at another (`load_waveform` resamples), they are scaled to the
    model's rate."""
    if num_frames < 1:
        raise ValueError(f"{utt.path}: too short for any frame of layer {layer!r}")
    scale = embedder.sample_rate / utt.meta.get("sample_rate", embedder.sample_rate)
    slices = []
    for phone in utt.phones:
        start = round((phone.start - utt.start) * scale)
        end = max(round((phone.end - utt.start) * scale), start + 1)   # never empty
        slices.append(embedder.segment_frames(layer, start, end, num_frames))
    return slices


def segment_means(embedder: FrameEmbedder, layer: str, utt: Utterance,
                  frames: np.ndarray) -> np.ndarray:
    """`[num_phones, D]`: mean frame embedding over each phone segment of `utt`."""
    slices = segment_slices(embedder, layer, utt, len(frames))
    return np.stack([frames[piece].mean(axis=0) for piece in slices])


def phone_labels(utt: Utterance) -> list[str]:
    return [phone.label for phone in utt.phones]


def broad_class_indices(labels: Iterable[str]) -> np.ndarray:
    """Index into BROAD_CLASSES of each TIMIT-61 label."""
    return np.array([BROAD_CLASSES.index(phones.broad_class(label)) for label in labels],
                    np.int64)


def unit_rows(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit L2 norm; all-zero rows stay zero (cosine 0 to everything)."""
    x = np.asarray(x, np.float64)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, eps)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`[len(a), len(b)]` cosine similarities between the rows of `a` and of `b`."""
    return unit_rows(a) @ unit_rows(b).T
