"""`AugmentationSources`: streams of noise, music, babble speech and RIRs for tf.data.

Sources stream from disk rather than sit in memory (MUSAN alone is about 100 hours):
recordings are read lazily in a shuffled order, each read recording yields a few
fixed-length random crops (`crops_per_recording`, which amortises decoding long music
files), and a small shuffle buffer mixes crops of different recordings. The crop streams
are infinite and are zipped example by example with the speech stream in
`tfspk.data.train_dataset`.

Recordings come from TFRecord shards in the `tfspk.schema` format (what
`tfrecords_tools` and the synthetic corpus writer produce) or straight from MUSAN /
RIRS_NOISES directory trees through the corpus readers and `tfspk.audio.load_audio`.
"""
from __future__ import annotations

import abc
import dataclasses
import functools
import os
import struct
from typing import Sequence

import numpy as np
import soundfile
import tensorflow as tf

from tfspk import audio, paths, schema
from tfspk.augment.config import AugmentationConfig
from tfspk.augment.cropping import crops_at, random_crops
from tfspk.augment.mixing import fit_to_length

# Sub-directories of an augmentation TFRecord root, by source kind (first match wins).
KIND_DIRECTORIES = {
    "noise": ("noise",),
    "music": ("music",),
    "babble": ("babble", "speech"),
    "rir": ("rirs", "rir", "reverb"),
}
# Distinct streams of the stateless random ops, one per source kind.
#: Room-size folders of RIRS_NOISES/simulated_rirs that Kaldi's VoxCeleb v2 recipe uses.
KALDI_V2_RIR_ROOMS = ("smallroom", "mediumroom")
_KIND_STREAM = {"noise": 101, "music": 102, "babble": 103, "rir": 104}
# Noise/music windows and RIRs read per numpy_function call (see recording_batches).
_READ_BATCH = 8


class AugmentationSourceError(ValueError):
    """A source pattern or corpus that cannot be used (names the path and the reason)."""


def list_files(pattern: str | Sequence[str], what: str = "files") -> list[str]:
    """`tfspk.paths.list_files` for source patterns: no match is an AugmentationSourceError."""
    return paths.list_files(pattern, what, error=AugmentationSourceError)


@functools.lru_cache(maxsize=1 << 16)
def _frames_and_rate(path: str) -> tuple[int, int] | None:
    """(frames, sample rate) of a libsndfile-readable file, None otherwise; cached, as
    every window drawn from a file needs its length (MUSAN: 2,016 files)."""
    try:
        info = soundfile.info(path)
    except (RuntimeError, soundfile.LibsndfileError):
        return None
    return int(info.frames), int(info.samplerate)


@functools.lru_cache(maxsize=1 << 16)
def _wav_pcm16_layout(path: str) -> tuple[int, int, int] | None:
    """(byte offset of the samples, frames, rate) of a mono 16-bit PCM RIFF/WAVE file
    whose data chunk is complete, None for anything else (other formats, channels or
    sample widths, WAVE_FORMAT_EXTENSIBLE, truncated or streamed headers), which
    `tfspk.audio.load_audio` then reads and checks. Cached like `_frames_and_rate`."""
    try:
        with open(path, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            head = stream.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            position, fmt = 12, None
            while position + 8 <= size:
                stream.seek(position)
                chunk_id, chunk_size = struct.unpack("<4sI", stream.read(8))
                if chunk_id == b"fmt ":
                    if chunk_size < 16:
                        return None
                    fmt = struct.unpack("<HHIIHH", stream.read(16))
                elif chunk_id == b"data":
                    if fmt is None or chunk_size > size - position - 8:
                        return None
                    tag, channels, rate, _, block_align, bits = fmt
                    if tag != 1 or channels != 1 or bits != 16 or block_align != 2:
                        return None
                    return position + 8, chunk_size // 2, rate
                position += 8 + chunk_size + (chunk_size & 1)
    except (OSError, struct.error):
        return None
    return None


def _read_wav_pcm16(path: str, start: int, end: int | None,
                    sample_rate: int) -> np.ndarray | None:
    """Samples [start, end) of a mono 16-bit WAV at `sample_rate` as float32 k / 32768
    (bit-identical to soundfile's float reading), by one `pread` of just those bytes;
    None when the file or span needs `load_audio` (which also raises its errors).

    libsndfile's own int16 -> float conversion costs about 3x the read itself, and this
    is the read every noise, music and babble window makes."""
    layout = _wav_pcm16_layout(path)
    if layout is None or layout[2] != sample_rate:
        return None
    offset, frames, _ = layout
    end = frames if end is None else end
    if not 0 <= start < end <= frames:
        return None
    with open(path, "rb") as stream:
        data = os.pread(stream.fileno(), 2 * (end - start), offset + 2 * start)
    if len(data) != 2 * (end - start):
        return None
    return audio.int16_to_float(np.frombuffer(data, "<i2"))


class RecordingSet(abc.ABC):
    """A collection of recordings that can be streamed as float32 [samples] tensors."""

    @abc.abstractmethod
    def recordings(self, seed: int, window_samples: int = 0,
                   head: bool = False) -> tf.data.Dataset:
        """An infinite, shuffled (under `seed`) dataset of 1-D float32 waveforms.

        With `window_samples > 0` a recording longer than that yields only a window of it:
        at a seeded random offset, or its start when `head` is true (an RIR's direct path).
        Sets that can seek read nothing else; a MUSAN music file then costs a few seconds
        of decoding, not minutes.
        """


    def recording_batches(self, seed: int, window_samples: int, count: int,
                          min_samples: int = 0, head: bool = False) -> tf.data.Dataset:
        """The recordings of `recordings(seed, window_samples, head)`, `count` at a time:
        (waveforms [count, longest] zero-padded, lengths [count]), each recording
        shorter than `min_samples` tiled (repeated end to start) to `min_samples`."""
        def at_least(waveform):
            waveform = tf.convert_to_tensor(waveform, tf.float32)
            if min_samples > 0:
                waveform = fit_to_length(waveform, tf.maximum(tf.shape(waveform)[0],
                                                              min_samples))
            return waveform, tf.shape(waveform)[0]

        return self.recordings(seed, window_samples, head).map(
            at_least, num_parallel_calls=tf.data.AUTOTUNE).padded_batch(
                count, drop_remainder=True)


@dataclasses.dataclass(frozen=True)
class TFRecordSet(RecordingSet):
    """Recordings stored as `tfspk.schema` TFRecord shards."""

    files: tuple[str, ...]
    sample_rate: int = 16000
    cycle_length: int = 4

    @classmethod
    def from_pattern(cls, pattern, sample_rate: int = 16000) -> "TFRecordSet":
        return cls(tuple(list_files(pattern, "TFRecord shards")), sample_rate)

    def recordings(self, seed: int, window_samples: int = 0,
                   head: bool = False) -> tf.data.Dataset:
        # A TFRecord holds the whole recording, so it is parsed whole and cut afterwards.
        del window_samples, head
        files = tf.data.Dataset.from_tensor_slices(list(self.files))
        files = files.shuffle(len(self.files), seed=seed, reshuffle_each_iteration=True)
        records = files.repeat().interleave(
            tf.data.TFRecordDataset, cycle_length=min(self.cycle_length, len(self.files)),
            num_parallel_calls=tf.data.AUTOTUNE)
        return records.map(self._decode,
                           num_parallel_calls=tf.data.AUTOTUNE)

    def _decode(self, serialized):
        example = schema.parse_example(serialized)
        rate_ok = tf.debugging.Assert(
            tf.equal(example["sample_rate"], self.sample_rate),
            [f"augmentation source has the wrong sample rate (expected {self.sample_rate} "
             "Hz); utt_id, rate:", example["utt_id"], example["sample_rate"]])
        with tf.control_dependencies([rate_ok]):
            return tf.identity(example["waveform"])


@dataclasses.dataclass(frozen=True)
class AudioFileSet(RecordingSet):
    """Recordings read from audio files: a [start, end) span of each (end -1: to the end
    of the file) and a channel (-1: mono, or the average of all channels)."""

    paths: tuple[str, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    channels: tuple[int, ...]
    sample_rate: int = 16000

    @classmethod
    def from_utterances(cls, utterances, sample_rate: int = 16000) -> "AudioFileSet":
        """From `tfspk.corpora.records.Utterance`s (path, start, end in samples and
        `meta["channel"]`, which RIRS_NOISES uses to pick one channel of a real RIR)."""
        utterances = list(utterances)
        if not utterances:
            raise AugmentationSourceError("no recordings given")
        return cls(tuple(str(u.path) for u in utterances),
                   tuple(int(u.start or 0) for u in utterances),
                   tuple(-1 if u.end is None else int(u.end) for u in utterances),
                   tuple(int((u.meta or {}).get("channel", -1)) for u in utterances),
                   sample_rate)

    def _window(self, path: str, start: int, end: int | None, window: int, head: bool,
                draw: int) -> tuple[int, int | None]:
        """The span to read: all of [start, end) or a `window`-sample part of it."""
        if window <= 0:
            return start, end
        if end is None:
            header = _frames_and_rate(path)
            if header is None:
                return start, end  # not seekable by libsndfile (m4a): read it whole
            end = header[0] * self.sample_rate // header[1]
        if end - start <= window:
            return start, end
        offset = 0 if head else int(np.random.default_rng(draw).integers(0, end - start - window + 1))
        return start + offset, start + offset + window

    def _load(self, path, start, end, channel, window=0, head=False, draw=0):
        from tfspk import audio

        path, start, end = path.decode("utf-8"), int(start), None if end < 0 else int(end)
        start, end = self._window(path, start, end, int(window), bool(head), int(draw))
        if channel < 0:
            samples = _read_wav_pcm16(path, start, end, self.sample_rate)
            if samples is None:
                samples, _ = audio.load_audio(path, self.sample_rate, downmix=True,
                                              start=start, end=end)
        else:
            try:
                samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
            except (RuntimeError, soundfile.LibsndfileError) as error:
                raise audio.AudioError(f"cannot read: {error}", path, "unreadable") from None
            if channel >= samples.shape[1]:
                raise audio.AudioError(f"channel {channel} requested, file has "
                                       f"{samples.shape[1]}", path, "multichannel")
            samples = samples[:, channel]
            if rate != self.sample_rate:
                samples = audio.resample(samples, rate, self.sample_rate)
            samples = samples[start:end]
        return np.asarray(samples, np.float32)

    def recordings(self, seed: int, window_samples: int = 0,
                   head: bool = False) -> tf.data.Dataset:
        spans = tf.data.Dataset.from_tensor_slices(
            (list(self.paths), np.array(self.starts, np.int64), np.array(self.ends, np.int64),
             np.array(self.channels, np.int64)))
        spans = spans.shuffle(len(self.paths), seed=seed, reshuffle_each_iteration=True)

        def load(draw, span):
            # Each draw's window offset is a function of (seed, draw number) alone.
            samples = tf.numpy_function(
                self._load, [*span, tf.constant(window_samples, tf.int64),
                             tf.constant(head), draw + tf.constant(int(seed) << 32, tf.int64)],
                tf.float32)
            return tf.ensure_shape(samples, [None])

        return spans.repeat().enumerate().map(load, num_parallel_calls=tf.data.AUTOTUNE)

    def recording_batches(self, seed: int, window_samples: int, count: int,
                          min_samples: int = 0, head: bool = False) -> tf.data.Dataset:
        # The same draws and windows as the per-recording stream, read by one
        # numpy_function call per batch: the per-call cost (GIL, tensor conversion, a
        # tf.data element) was about three times that of reading an 8-s WAV window.
        spans = tf.data.Dataset.from_tensor_slices(
            (list(self.paths), np.array(self.starts, np.int64), np.array(self.ends, np.int64),
             np.array(self.channels, np.int64)))
        spans = spans.shuffle(len(self.paths), seed=seed, reshuffle_each_iteration=True)

        def load_many(paths_, starts, ends, channels, draws):
            waveforms = []
            for path, start, end, channel, draw in zip(paths_, starts, ends, channels, draws):
                samples = self._load(path, start, end, channel, window_samples, head, draw)
                if samples.size == 0:
                    raise AugmentationSourceError(f"{path.decode('utf-8')}: empty recording")
                if samples.size < min_samples:
                    samples = np.resize(samples, min_samples)  # tiled, as fit_to_length
                waveforms.append(samples)
            longest = max(w.size for w in waveforms)
            batch = np.zeros([len(waveforms), longest], np.float32)
            for row, waveform in zip(batch, waveforms):
                row[:waveform.size] = waveform
            return batch, np.array([w.size for w in waveforms], np.int32)

        def load(draws, span):
            windows, lengths = tf.numpy_function(
                load_many, [*span, draws + tf.constant(int(seed) << 32, tf.int64)],
                (tf.float32, tf.int32))
            return tf.ensure_shape(windows, [count, None]), tf.ensure_shape(lengths, [count])

        return spans.repeat().enumerate().batch(count, drop_remainder=True).map(
            lambda draws, span: load(draws, span), num_parallel_calls=tf.data.AUTOTUNE)


@dataclasses.dataclass(frozen=True)
class AugmentationSources:
    """Recording sets per source kind (any may be None when unused).

    `crop_datasets` turns them into per-example streams of fixed-length crops:
    noise/music [crop_samples], babble [max_speakers, crop_samples] (crops of
    different recordings) and rir [rir_samples] (the first `rir_seconds` of an RIR,
    zero-padded; the direct path of measured and simulated RIRs is near the start).
    """

    noise: RecordingSet | None = None
    music: RecordingSet | None = None
    babble: RecordingSet | None = None
    rir: RecordingSet | None = None
    sample_rate: int = 16000
    rir_seconds: float = 1.0
    crops_per_recording: int = 4
    shuffle_buffer: int = 256
    #: Seconds read from a noise, music or babble recording per draw (0: all of it); its
    #: `crops_per_recording` crops come from that window.
    window_seconds: float = 8.0
    #: Examples each read RIR reverberates (reading one costs about as much as
    #: reverberating with it on the host).
    rir_uses_per_read: int = 4
    #: Babble windows held at once: each example's talkers are distinct windows of the
    #: pool, and each window serves about `crops_per_recording` crops.
    babble_pool: int = 32

    @classmethod
    def from_tfrecords(cls, root: str | None = None, *, noise=None, music=None, babble=None,
                       rirs=None, sample_rate: int = 16000, **options) -> "AugmentationSources":
        """From `tfspk.schema` shards: per-kind glob patterns, or a `root` directory with
        sub-directories per kind (`noise/`, `music/`, `babble/` or `speech/`, `rirs/`)
        holding `*.tfrecord*` shards; explicit patterns override the root's."""
        patterns = {"noise": noise, "music": music, "babble": babble, "rir": rirs}
        if root is not None:
            if not tf.io.gfile.isdir(root):
                raise AugmentationSourceError(f"{root}: not a directory")
            for kind, names in KIND_DIRECTORIES.items():
                for name in names:
                    if patterns[kind] is None and tf.io.gfile.glob(
                            os.path.join(root, name, "*.tfrecord*")):
                        patterns[kind] = os.path.join(root, name, "*.tfrecord*")
            if not any(patterns.values()):
                raise AugmentationSourceError(
                    f"{root}: no */*.tfrecord* shards in any of the sub-directories "
                    f"{sorted({n for names in KIND_DIRECTORIES.values() for n in names})}")
        sets = {kind: None if pattern is None else TFRecordSet.from_pattern(pattern, sample_rate)
                for kind, pattern in patterns.items()}
        return cls(**sets, sample_rate=sample_rate, **options)

    @classmethod
    def from_path(cls, path: str, *, sample_rate: int = 16000,
                  **options) -> "AugmentationSources":
        """From a folder that holds either per-kind shard sub-directories (see
        `from_tfrecords`) or `musan/` and/or `RIRS_NOISES/` trees (see `from_corpora`;
        `tfrecords_tools/synth.py` writes the latter)."""
        path = os.fspath(path)
        musan, rirs = os.path.join(path, "musan"), os.path.join(path, "RIRS_NOISES")
        has_musan, has_rirs = tf.io.gfile.isdir(musan), tf.io.gfile.isdir(rirs)
        if has_musan or has_rirs:
            return cls.from_corpora(musan if has_musan else None, rirs if has_rirs else None,
                                    sample_rate=sample_rate, **options)
        return cls.from_tfrecords(path, sample_rate=sample_rate, **options)

    @classmethod
    def from_corpora(cls, musan_root: str | None = None, rirs_root: str | None = None, *,
                     sample_rate: int = 16000, music_with_vocals: bool = True,
                     rir_rooms: tuple[str, ...] | None = KALDI_V2_RIR_ROOMS,
                     **options) -> "AugmentationSources":
        """From a MUSAN tree (noise, music, and its speech as babble) and/or a
        RIRS_NOISES tree, read with `tfspk.corpora.musan` / `tfspk.corpora.rirs`.
        `music_with_vocals=False` drops music annotated as having vocals (Kaldi's
        make_musan.sh keeps it by default). `rir_rooms` keeps the simulated RIRs of those
        room-size folders only; the default is Kaldi's VoxCeleb v2 recipe (small and medium
        rooms, no real RIRs; RIRS_NOISES holds as many of each, so drawing uniformly gives
        Kaldi's 0.5/0.5). `None` keeps every RIR, real ones included."""
        sets = {}
        if musan_root is not None:
            from tfspk.corpora.musan import read_musan

            categories = read_musan(musan_root)
            if not music_with_vocals:
                categories["music"] = [u for u in categories.get("music", [])
                                       if not u.meta.get("vocals", False)]
            for kind, category in (("noise", "noise"), ("music", "music"),
                                   ("babble", "speech")):
                if categories.get(category):
                    sets[kind] = AudioFileSet.from_utterances(categories[category],
                                                              sample_rate)
        if rirs_root is not None:
            from tfspk.corpora.rirs import read_rirs

            rirs = read_rirs(rirs_root)
            if rir_rooms is not None:
                rirs = [rir for rir in rirs if rir.meta["kind"] == "simulated" and any(
                    f"{os.sep}{room}{os.sep}" in rir.path for room in rir_rooms)]
                if not rirs:
                    raise AugmentationSourceError(
                        f"{rirs_root}: no simulated RIRs in the room folders {rir_rooms}")
            sets["rir"] = AudioFileSet.from_utterances(rirs, sample_rate)
        return cls(**sets, sample_rate=sample_rate, **options)

    @property
    def rir_samples(self) -> int:
        return int(round(self.rir_seconds * self.sample_rate))

    def check(self, config: AugmentationConfig) -> None:
        """Raises when `config` enables a kind these sources cannot supply."""
        missing = [kind for kind in config.source_kinds if getattr(self, kind) is None]
        if missing:
            raise AugmentationSourceError(
                f"augmentation enables {missing} but no recordings were given for them")

    def crop_datasets(self, config: AugmentationConfig, crop_samples: int, seed: int,
                      selectors: dict[str, tf.data.Dataset] | None = None
                      ) -> dict[str, tf.data.Dataset]:
        """Infinite per-example crop streams for the kinds `config` enables.

        `selectors` (kind -> infinite dataset of bool, one per example) gates each stream:
        an example whose plan does not apply a kind gets an empty crop (first dimension 0)
        and no recording is read for it, so a kind applied to one example in eight costs
        one draw in eight. `expand_source` turns an empty crop back into zeros.
        """
        self.check(config)
        streams = {}
        for kind in config.source_kinds:
            kind_seed = [int(seed), _KIND_STREAM[kind]]
            recording_seed = (int(seed) * 7 + _KIND_STREAM[kind]) % (2**31 - 1)
            recording_set = getattr(self, kind)
            if kind == "rir":
                # A read RIR serves rir_uses_per_read examples, which the shuffle then
                # spreads apart; RIRS_NOISES has 40,000 simulated small/medium-room RIRs.
                # Read _READ_BATCH at a time; each is its first rir_samples, zero-padded.
                batches = recording_set.recording_batches(
                    recording_seed, self.rir_samples, _READ_BATCH, head=True)
                uses = max(int(self.rir_uses_per_read), 1)

                def heads(rirs, lengths):
                    rirs = tf.pad(rirs[:, :self.rir_samples],
                                  [[0, 0], [0, self.rir_samples
                                            - tf.minimum(tf.shape(rirs)[1], self.rir_samples)]])
                    return tf.repeat(tf.ensure_shape(rirs, [_READ_BATCH, self.rir_samples]),
                                     uses, axis=0)

                crops = batches.map(heads, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
                crops = crops.shuffle(self.shuffle_buffer, seed=kind_seed[0] + kind_seed[1])
            elif kind == "babble":
                crops = self._babble_crops(recording_set, config.max_babble_speakers,
                                           crop_samples, seed)
            else:
                crops = self._window_crops(recording_set, crop_samples, recording_seed,
                                           kind_seed, self.shuffle_buffer)
            if selectors is not None:
                empty = tf.data.Dataset.from_tensors(
                    tf.zeros([0] + crops.element_spec.shape.as_list()[1:], tf.float32))
                choice = selectors[kind].map(lambda applies: tf.cast(applies, tf.int64))
                crops = tf.data.Dataset.choose_from_datasets([empty.repeat(), crops], choice)
            streams[kind] = crops
        return streams

    def example_streams(self, config: AugmentationConfig, crop_samples: int, seed: int,
                        kinds: tf.data.Dataset) -> tf.data.Dataset:
        """Per example, what `tfspk.augment.premix_additive` and `augment_waveforms` need.

        `kinds` yields each example's (reverb bool, additive int32) as `draw_kinds` draws
        them. Elements are dicts: `rir` [rir_samples] (zeros when not reverberated;
        only with reverb enabled) and, with an additive kind enabled, `additive` (crops
        [n, crop_samples], lengths [n]): n = 0 for no additive source, 1 for music and
        background noise, the `max_fg_noises` candidates of foreground noise (each a
        crop of a noise recording, or the whole recording zero-padded when shorter,
        with its length), `max_babble_speakers` babble crops. Each kind's stream is
        read only for the examples that use it, in the order of `crop_datasets`'s
        gated streams, so the same seed gives the same crops.
        """
        self.check(config)
        kinds = kinds.map(lambda reverb, additive: (tf.cast(reverb, tf.int64),
                                                    tf.cast(additive, tf.int64)))
        crops = self.crop_datasets(config, crop_samples, seed)
        parts = {}
        if "rir" in crops:
            zeros = tf.data.Dataset.from_tensors(tf.zeros([self.rir_samples])).repeat()
            parts["rir"] = tf.data.Dataset.choose_from_datasets(
                [zeros, crops["rir"]], kinds.map(lambda reverb, _: reverb))
        additive = [kind for kind in ("noise", "music", "babble") if kind in crops]
        if additive:
            empty = tf.data.Dataset.from_tensors(
                (tf.zeros([0, crop_samples]), tf.zeros([0], tf.int32))).repeat()
            full = tf.fill([1], tf.constant(crop_samples, tf.int32))
            by_code = [empty]
            for kind in ("noise", "music", "babble"):
                if kind not in crops:
                    by_code.append(empty)  # never chosen: the kind's probability is 0
                elif kind == "noise" and config.noise_placement == "foreground":
                    by_code.append(self._foreground_candidates(
                        self.noise, config.max_fg_noises(crop_samples, self.sample_rate),
                        crop_samples, seed))
                elif kind == "babble":
                    speakers = config.max_babble_speakers
                    by_code.append(crops[kind].map(lambda crop: (
                        crop, tf.fill([speakers], tf.constant(crop_samples, tf.int32)))))
                else:
                    by_code.append(crops[kind].map(lambda crop: (crop[tf.newaxis], full)))
            parts["additive"] = tf.data.Dataset.choose_from_datasets(
                by_code, kinds.map(lambda _, code: code))
        return tf.data.Dataset.zip(parts)

    def _foreground_candidates(self, recording_set, count, crop_samples, seed):
        """(crops [count, crop_samples], lengths [count]) per example: candidate
        foreground noises. A recording (window) at least a crop long gives
        `crops_per_recording` random crop-length parts of it, a shorter one is a whole
        noise (zero-padded, with its length) used as many times; the shuffle spreads the
        copies apart. Kaldi places whole MUSAN noise files: a noise longer than the crop
        covers it from its start either way, and its power is measured here over the
        part that is placed."""
        window = int(round(self.window_seconds * self.sample_rate))
        recording_seed = (int(seed) * 7 + _KIND_STREAM["noise"]) % (2**31 - 1)
        kind_seed = tf.constant([int(seed), _KIND_STREAM["noise"] + 1000], tf.int64)
        batches = recording_set.recording_batches(
            recording_seed, max(window, crop_samples) if window else 0, _READ_BATCH)
        uses = self.crops_per_recording

        def candidates(waveform, length, seed):
            parts = tf.cond(
                length >= crop_samples,
                lambda: random_crops(waveform, crop_samples, uses, seed),
                lambda: tf.tile(tf.pad(waveform[:length], [[0, crop_samples - length]])[
                    tf.newaxis], [uses, 1]))
            return (tf.ensure_shape(parts, [uses, crop_samples]),
                    tf.fill([uses], tf.minimum(length, crop_samples)))

        def of_batch(index, batch):
            windows, lengths = batch
            parts = [candidates(windows[j, :lengths[j]], lengths[j],
                                tf.random.experimental.stateless_fold_in(
                                    kind_seed, index * _READ_BATCH + j))
                     for j in range(_READ_BATCH)]
            return (tf.concat([p[0] for p in parts], 0), tf.concat([p[1] for p in parts], 0))

        parts = batches.enumerate().map(of_batch, num_parallel_calls=tf.data.AUTOTUNE)
        parts = parts.unbatch().shuffle(self.shuffle_buffer,
                                        seed=int(seed) + _KIND_STREAM["noise"] + 1000)
        return parts.batch(count, drop_remainder=True)

    def source_shape(self, kind: str, config: AugmentationConfig,
                     crop_samples: int) -> list[int]:
        """The per-example shape of a kind's crops (see `crop_datasets`)."""
        if kind == "rir":
            return [self.rir_samples]
        if kind == "babble":
            return [config.max_babble_speakers, crop_samples]
        return [crop_samples]

    def expand_source(self, crop: tf.Tensor, kind: str, config: AugmentationConfig,
                      crop_samples: int) -> tf.Tensor:
        """A gated crop at its full shape: the crop itself, or zeros for an empty one."""
        shape = self.source_shape(kind, config, crop_samples)
        full = tf.cond(tf.equal(tf.shape(crop)[0], 0),
                       lambda: tf.zeros(shape, tf.float32),
                       lambda: tf.reshape(crop, shape))
        return tf.ensure_shape(full, shape)

    def _window_crops(self, recording_set, crop_samples, recording_seed, crop_seed,
                      shuffle_buffer):
        """Shuffled crops, `crops_per_recording` from each window read."""
        window = int(round(self.window_seconds * self.sample_rate))
        batches = recording_set.recording_batches(
            recording_seed, max(window, crop_samples) if window else 0, _READ_BATCH,
            crop_samples)
        count = self.crops_per_recording
        base = tf.constant(crop_seed, tf.int64)

        def crops_of_batch(index, batch):
            # Recording j of read batch i is recording i * _READ_BATCH + j of the stream,
            # and its crops are drawn from that number, as one recording at a time.
            windows, lengths = batch
            crops = [random_crops(windows[j, :lengths[j]], crop_samples, count,
                                  tf.random.experimental.stateless_fold_in(
                                      base, index * _READ_BATCH + j))
                     for j in range(_READ_BATCH)]
            return tf.ensure_shape(tf.concat(crops, 0), [_READ_BATCH * count, crop_samples])

        crops = batches.enumerate().map(crops_of_batch,
                                        num_parallel_calls=tf.data.AUTOTUNE).unbatch()
        return crops.shuffle(shuffle_buffer, seed=crop_seed[0] + crop_seed[1])

    def _babble_crops(self, recording_set, speakers, crop_samples, seed):
        """[speakers, crop_samples] per example: crops of `speakers` distinct windows.

        Windows are read into a pool of `babble_pool` (P); the pool then yields
        M = ceil(P * crops_per_recording / speakers) examples at once, each taking
        `speakers` distinct windows of the pool (a seeded random subset) at random
        offsets. So a window read serves `crops_per_recording` crops on
        average as before, the talkers of one example never share a window (batching
        one shuffled crop stream would put two crops of one window into an example
        whenever the buffer held few windows), and the per-crop tf.data work of
        a 7-talker babble is done once per example.
        """
        pool = max(int(self.babble_pool), speakers)
        per_pool = -(-pool * self.crops_per_recording // speakers)
        window = int(round(self.window_seconds * self.sample_rate))
        recording_seed = (int(seed) * 7 + _KIND_STREAM["babble"]) % (2**31 - 1)
        pools = recording_set.recording_batches(
            recording_seed, max(window, crop_samples) if window else 0, pool, crop_samples)
        base = tf.constant([int(seed), _KIND_STREAM["babble"]], tf.int64)

        def crops_of_pool(index, pool_data):
            windows, lengths = pool_data
            choice_seed, offset_seed = tf.unstack(tf.random.experimental.stateless_split(
                tf.random.experimental.stateless_fold_in(base, index), 2))
            # `speakers` distinct windows per example: the first of a random permutation.
            order = tf.argsort(tf.random.stateless_uniform([per_pool, pool], choice_seed),
                               axis=-1)
            chosen = order[:, :speakers]
            room = tf.gather(lengths, chosen) - crop_samples + 1
            offsets = tf.minimum(tf.cast(tf.random.stateless_uniform(
                [per_pool, speakers], offset_seed) * tf.cast(room, tf.float32), tf.int32),
                room - 1)
            width = tf.shape(windows)[1]
            crops = crops_at(tf.reshape(windows, [-1]),
                             tf.reshape(chosen * width + offsets, [-1]), crop_samples)
            return tf.reshape(crops, [per_pool, speakers, crop_samples])

        crops = pools.enumerate().map(crops_of_pool, num_parallel_calls=tf.data.AUTOTUNE)
        crops = crops.unbatch().map(
            lambda crop: tf.ensure_shape(crop, [speakers, crop_samples]))
        # Neighbouring examples of one pool share windows; mixing two pools' worth apart.
        return crops.shuffle(2 * per_pool, seed=int(seed) + _KIND_STREAM["babble"])
