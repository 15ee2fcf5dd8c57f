"""TIMIT-61 phone and word alignments from espeak-ng phoneme events.

espeak-ng reports where each phone starts (sample index at 22,050 Hz). This module turns those
events into a TIMIT-style segmentation that partitions the whole utterance:

* mnemonics (en-us table and the other English accents' tables) map to TIMIT-61 labels;
  fused vowel+r phones (`A@`, `o@`, `i@3`, ...) become two labels (vowel then `r` in rhotic
  accents, vowel then `ax` or nothing in non-rhotic ones), the first taking 60% of the time;
* silence before the first phone and trailing pauses become `h#`, internal pauses `pau`;
* stops and affricates get a closure (`pcl tcl kcl bcl dcl gcl`): espeak-ng puts the silent
  stretch before a burst at the end of the *previous* phone, so that near-silent tail is
  carved off as the closure; a voiced stop's own segment starts with a low-frequency voice
  bar, which is found from the rise of high-frequency energy (first difference) at the burst;
* zero-length events (some post-vocalic `l`, the word marker `_`) are dropped.

Positions convert to another rate by exact rational rounding (`to_rate`).
"""
import collections

import numpy as np

from tfspk.synth.espeak import ESPEAK_SAMPLE_RATE

Segment = collections.namedtuple("Segment", ["start", "end", "label"])
WordSegment = collections.namedtuple("WordSegment", ["start", "end", "word"])

SILENCE_LABELS = ("h#", "pau")
_PAUSE_MNEMONICS = ("_", "_:", "_!", "_^_", "||", "|")
_STRESS_MARKS = "',%=!"

# espeak-ng English mnemonics (all accents shipped with espeak-ng 1.52) -> TIMIT-61 labels.
_SIMPLE = {
    "0": "aa", "A:": "aa", "a:": "aa", "aa": "ae", "a": "ae", "a#": "ax", "@": "ax", "@-": "ax",
    "@2": "ax", "@5": "ax", "@L": "el", "3:": "er", "3": "axr", "E": "eh", "e": "eh",
    "eI": "ey", "I": "ih", "I#": "ix", "I2": "ix", "i": "iy", "i:": "iy", "O": "ao",
    "O:": "ao", "O2": "ao", "o:": "ow", "oU": "ow", "OI": "oy", "aI": "ay", "aI2": "ay",
    "aU": "aw", "V": "ah", "U": "uh", "u:": "uw", "u": "uw",
    "p": "p", "t": "t", "t2": "t", "t[": "t", "k": "k", "b": "b", "d": "d", "d[": "d",
    "g": "g", "t#": "dx", "*": "dx", "?": "q", "tS": "ch", "dZ": "jh",
    "f": "f", "v": "v", "T": "th", "D": "dh", "s": "s", "z": "z", "S": "sh", "Z": "zh",
    "h": "hh", "x": "hh", "m": "m", "n": "n", "N": "ng", "m-": "em", "n-": "en", "N-": "eng",
    "l": "l", "l/": "l", "l-": "el", "r": "r", "r-": "r", "r/": "r", "w": "w", "w#": "w",
    "W": "w", "j": "y", ";": "y",
}
# Fused vowel + r (rhotic accents) or centring diphthongs (non-rhotic ones).
_FUSED = {
    "A@": ("aa", "r", None), "o@": ("ao", "r", None), "O@": ("ao", "r", None),
    "e@": ("eh", "r", "ax"), "U@": ("uh", "r", "ax"), "i@3": ("iy", "r", "ax"),
    "i@": ("iy", "ax", "ax"), "aI@": ("ay", "ax", "ax"), "aI3": ("ay", "er", "ax"),
    "aU@": ("aw", "ax", "ax"), "IR": ("ih", "r", None), "VR": ("ah", "r", None),
    "3R": ("er", "r", None),
}
_FUSED_FIRST_SHARE = 0.6

_CLOSURE_OF = {"p": "pcl", "t": "tcl", "k": "kcl", "b": "bcl", "d": "dcl", "g": "gcl",
               "ch": "tcl", "jh": "dcl"}
_VOICED_RELEASES = ("b", "d", "g", "jh")
_CLOSURE_LABELS = frozenset(_CLOSURE_OF.values())

# Samples at or below this magnitude count as silence (espeak-ng's silence is exact zero).
SILENCE_LEVEL = 16
_FRAME = 55  # 2.5 ms at 22,050 Hz: resolution of the voice-bar search
_MIN_CLOSURE = 44  # 2 ms


class AlignmentError(ValueError):
    """espeak-ng events that cannot be turned into TIMIT labels."""


def strip_stress(mnemonic):
    return mnemonic.lstrip(_STRESS_MARKS)


def timit_labels(mnemonic, rhotic=True):
    """The TIMIT-61 label(s) of one espeak-ng mnemonic, e.g. "'A@" -> ("aa", "r")."""
    name = strip_stress(mnemonic)
    if name in _PAUSE_MNEMONICS:
        return ("pau",)
    if name in _SIMPLE:
        return (_SIMPLE[name],)
    if name in _FUSED:
        vowel, rhotic_tail, plain_tail = _FUSED[name]
        tail = rhotic_tail if rhotic else plain_tail
        return (vowel,) if tail is None else (vowel, tail)
    raise AlignmentError(f"espeak-ng phoneme {mnemonic!r} has no TIMIT-61 mapping")


def _silent_tail(samples, start, end):
    """Length of the run of near-silent samples that ends at `end`."""
    loud = np.flatnonzero(np.abs(samples[start:end].astype(np.int32)) > SILENCE_LEVEL)
    return (end - start) if loud.size == 0 else (end - start - 1 - int(loud[-1]))


def _voice_bar_length(samples, start, end):
    """Length of a low-frequency voice bar at the start of [start, end), 0 if none.

    The burst of a voiced stop brings broadband energy; the voice bar before it has almost
    none above a few hundred Hz. High-frequency energy is the RMS of the first difference
    in 2.5 ms frames.
    """
    num_frames = (end - start) // _FRAME
    if num_frames < 4:
        return 0
    x = samples[start:start + num_frames * _FRAME].astype(np.float64)
    high = np.sqrt(np.mean(np.diff(x, prepend=x[0]).reshape(num_frames, _FRAME) ** 2, axis=1))
    # Frame 0 holds the transition out of the previous phone.
    baseline = np.median(high[1:min(9, num_frames)])
    if baseline >= 0.25 * high.max():
        return 0  # no quiet bar: the segment starts with the burst
    rising = np.flatnonzero(high[1:] > 4.0 * max(baseline, 1.0))
    return (int(rising[0]) + 1) * _FRAME if rising.size else end - start


def align(synthesis, rhotic=True):
    """TIMIT-61 phone segments and word segments of a `Synthesis`, in 22,050 Hz samples.

    Returns (phones, words): lists of `Segment` partitioning [0, len(samples)) and of
    `WordSegment` (words in lower case, pauses excluded).
    """
    samples = synthesis.samples
    length = len(samples)
    events = synthesis.phonemes
    if not events:
        raise AlignmentError(f"no phoneme events for {synthesis.text!r}")
    if events[-1].sample != length:
        raise AlignmentError(f"last phoneme event at {events[-1].sample} but "
                             f"{length} samples for {synthesis.text!r}")
    # (start, end, label, source event index); closures carry their release's event index.
    pieces = []
    if events[0].sample > 0:
        pieces.append([0, events[0].sample, "h#", -1])
    for index, (event, following) in enumerate(zip(events[:-1], events[1:])):
        start, end = event.sample, following.sample
        if end < start:
            raise AlignmentError(f"phoneme events out of order at {event} in "
                                 f"{synthesis.text!r}")
        labels = timit_labels(event.mnemonic, rhotic)
        if end == start:
            continue
        if len(labels) == 2 and _first_label(events[index + 1:], rhotic) == labels[1]:
            labels = labels[:1]  # "e@ r" + "r": the linking r carries the r-colouring
        if len(labels) == 2:
            split = start + int(round(_FUSED_FIRST_SHARE * (end - start)))
            pieces.append([start, split, labels[0], index])
            pieces.append([split, end, labels[1], index])
        else:
            _append_with_closure(pieces, samples, start, end, labels[0], index)
    pieces = [piece for piece in pieces if piece[1] > piece[0]]
    _mark_edges(pieces)
    phones = _merge_repeats(pieces)
    words = _word_segments(synthesis, pieces)
    return phones, words


def _first_label(events, rhotic):
    """TIMIT label of the first non-empty event in `events`, None if there is none."""
    for event, following in zip(events[:-1], events[1:]):
        if following.sample > event.sample:
            return timit_labels(event.mnemonic, rhotic)[0]
    return None


def _append_with_closure(pieces, samples, start, end, label, index):
    closure = _CLOSURE_OF.get(label)
    if closure is None:
        pieces.append([start, end, label, index])
        return
    closure_start = start
    previous = pieces[-1] if pieces else None
    if previous is not None and previous[2] not in SILENCE_LABELS:
        tail = _silent_tail(samples, previous[0], previous[1])
        if previous[2] in _CLOSURE_LABELS and tail == previous[1] - previous[0]:
            previous[2], previous[3] = closure, index  # a silent closure: hand it over
        elif tail >= _MIN_CLOSURE and previous[1] - tail - previous[0] >= _FRAME:
            closure_start = previous[1] - tail
            previous[1] = closure_start
    release_start = start
    if label in _VOICED_RELEASES:
        release_start = start + _voice_bar_length(samples, start, end)
    if release_start - closure_start >= _MIN_CLOSURE or (
            release_start > closure_start and release_start == end):
        pieces.append([closure_start, release_start, closure, index])
    elif release_start > closure_start and pieces:
        release_start = closure_start  # too short to be a closure: part of the release
    if end > release_start:
        pieces.append([release_start, end, label, index])


def _mark_edges(pieces):
    """Leading and trailing pauses are `h#`."""
    for piece in pieces:
        if piece[2] not in SILENCE_LABELS:
            break
        piece[2] = "h#"
    for piece in reversed(pieces):
        if piece[2] not in SILENCE_LABELS:
            break
        piece[2] = "h#"


def _merge_repeats(pieces):
    phones = []
    for start, end, label, _ in pieces:
        if phones and phones[-1].label == label and label in SILENCE_LABELS + tuple(
                _CLOSURE_LABELS):
            phones[-1] = Segment(phones[-1].start, end, label)
        else:
            phones.append(Segment(start, end, label))
    return phones


def _word_segments(synthesis, pieces):
    """Word spans from the phone pieces.

    Each phone event belongs to the last word event at or before it. A word event that
    covers several written words (espeak-ng's phonological words, e.g. "there were") hands
    its phone events out in order by each word's phoneme count said alone; the last word
    takes what is left.
    """
    word_events = sorted(synthesis.words, key=lambda word: word.sample)
    owners = collections.defaultdict(list)  # word event number -> its phone event indices
    for index, event in enumerate(synthesis.phonemes[:-1]):
        if strip_stress(event.mnemonic) in _PAUSE_MNEMONICS:
            continue
        owner = None
        for number, word in enumerate(word_events):
            if word.sample <= event.sample:
                owner = number
        if owner is not None:
            owners[owner].append(index)
    event_word = {}  # phone event index -> written word
    for number, word in enumerate(word_events):
        indices = owners.get(number, [])
        text = synthesis.text[word.text_start:word.text_start + word.length]
        parts = word.parts or ((text, len(indices)),)
        offset = 0
        for part_number, (part, count) in enumerate(parts):
            last = part_number == len(parts) - 1
            share = indices[offset:] if last else indices[offset:offset + count]
            offset += len(share)
            name = "".join(char for char in part.lower() if char.isalpha() or char == "'")
            for index in share:
                event_word[index] = (number, part_number, name)
    spans = {}
    for start, end, label, index in pieces:
        if label in SILENCE_LABELS or index not in event_word:
            continue
        key = event_word[index]
        first, last = spans.get(key, (start, end))
        spans[key] = (min(first, start), max(last, end))
    return [WordSegment(spans[key][0], spans[key][1], key[2]) for key in sorted(spans)
            if key[2]]


def to_rate(segments, from_length, to_length, from_rate=ESPEAK_SAMPLE_RATE, to_rate_hz=16000):
    """Segments at `from_rate` -> `to_rate_hz`, boundaries rounded exactly (b * to / from).

    `from_length` and `to_length` are the audio lengths at both rates (the latter e.g. of the
    soxr-resampled audio): a boundary at the end of the audio stays at the end. Segments
    that become empty are dropped. Works for `Segment` and `WordSegment` lists alike.
    """
    def convert(position):
        if position >= from_length:
            return to_length
        return min((2 * position * to_rate_hz + from_rate) // (2 * from_rate), to_length)

    result = []
    for segment in segments:
        start, end = convert(segment.start), convert(segment.end)
        if end > start:
            result.append(segment._replace(start=start, end=end))
    return result
