"""Audio file input/output, resampling and sanity checks.

soundfile (libsndfile) reads WAV, FLAC, OGG/Vorbis, MP3 and NIST SPHERE (TIMIT); m4a/aac
(VoxCeleb2) is decoded with the optional PyAV package (``pip install 'tfspk[m4a]'``).
Waveforms come back as float32 in [-1, 1] (int16 PCM ``k`` reads as ``k / 32768``), mono.

libsndfile trusts the bytes that are present: on a WAV or SPHERE file whose header
declares more samples than the file holds it silently reports the shorter length, and an
MP3 decodes fewer frames than it reports. ``load_audio`` therefore compares the header's
own count with what is present and decoded, and raises ``AudioError`` on any shortfall.
"""
from __future__ import annotations

import math
import os
import struct
from typing import Optional

import numpy as np
import soundfile
import soxr

#: Extensions decoded with PyAV instead of libsndfile.
PYAV_EXTENSIONS = (".m4a", ".aac", ".mp4")

#: ``check_audio`` calls a signal silent when its RMS level *after removing its mean* (the
#: DC offset) stays below -60 dBFS (RMS 0.001, about 33 LSB of 16-bit PCM; full scale is
#: 1.0): no recording with audible speech is that quiet, while dither or quantisation
#: noise of an empty channel is far below it. Removing the mean first makes a channel
#: that only carries a DC offset (a constant, e.g. a biased ADC with nothing plugged in)
#: silent too, however large the offset: it holds no speech to embed.
SILENCE_RMS = 10.0 ** (-60.0 / 20.0)
#: Former name of the threshold (it was compared with the peak before DC removal).
SILENCE_PEAK = SILENCE_RMS

#: Sample formats that can store values beyond full scale (±1.0). ``load_audio`` raises
#: AudioError (reason ``out_of_range``) when such a file holds any: converting them to
#: PCM would clip them without a word, and their level is unknown anyway.
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")

#: A sample counts as clipped at the 16-bit rails, |x| >= 32767 / 32768.
CLIP_LEVEL = 32767.0 / 32768.0

# AAC decoders add priming and padding frames (1024 samples each at most, a few frames per
# file), so an m4a may decode a little more or less than its container declares.
_AAC_LENGTH_SLACK = 4096

# Samples of context read around a span before resampling it, so that the resampling filter
# sees real signal instead of the span's edges (soxr's HQ filter is far shorter than this).
_RESAMPLE_MARGIN_SECONDS = 0.05


class AudioError(ValueError):
    """An audio file or waveform is unusable.

    ``reason`` is a short machine-readable code (``missing``, ``unreadable``, ``truncated``,
    ``multichannel``, ``sample_rate``, ``span``, ``missing_dependency``, ``empty``,
    ``non_finite``, ``out_of_range``, ``too_short``, ``silent``, ``clipped``) for reject
    lists; the message
    names the file and explains the problem.
    """

    def __init__(self, detail: str, path: Optional[os.PathLike | str] = None,
                 reason: str = "unreadable"):
        self.detail = detail
        self.path = None if path is None else os.fspath(path)
        self.reason = reason
        super().__init__(detail if self.path is None else f"{self.path}: {detail}")


def load_audio(path: os.PathLike | str, sample_rate: Optional[int] = None, *,
               resample: bool = True, downmix: bool = False, start: int = 0,
               end: Optional[int] = None) -> tuple[np.ndarray, int]:
    """Reads an audio file as a mono float32 waveform.

    Args:
      path: WAV, FLAC, OGG, MP3 or NIST SPHERE file (any extension; libsndfile sniffs the
        format), or m4a/aac/mp4 (needs PyAV).
      sample_rate: rate wanted in Hz, or None for the file's own rate.
      resample: when the file's rate differs from ``sample_rate``, resample with soxr (True)
        or raise AudioError (False).
      downmix: average the channels of a multi-channel file instead of raising AudioError.
      start, end: half-open span ``[start, end)`` to return, in samples at the returned rate
        (``end=None``: to the end of the file), e.g. the positions of a Kaldi segment.

    Returns:
      ``(samples, rate)``: float32 array of shape ``[num_samples]`` and its rate in Hz.

    Raises:
      AudioError: missing, unreadable, truncated or multi-channel file, a rate mismatch with
        ``resample=False``, a span outside the file, a float file with samples beyond ±1
        (``out_of_range``, naming the peak), or m4a without PyAV.
    """
    path = os.fspath(path)
    if os.path.isdir(path):  # e.g. a folder named like a file: "not found" would mislead
        raise AudioError("is a directory, not an audio file", path, "unreadable")
    if not os.path.isfile(path):
        raise AudioError("file not found", path, "missing")
    if start < 0 or (end is not None and end <= start):
        raise AudioError(f"invalid span [{start}, {end}): need 0 <= start < end", path, "span")

    if os.path.splitext(path)[1].lower() in PYAV_EXTENSIONS:
        samples, file_rate = _decode_with_pyav(path)
        _check_rate(path, file_rate, sample_rate, resample)
        native_span = None
    else:
        with _open_soundfile(path) as sound:
            file_rate = sound.samplerate
            _check_rate(path, file_rate, sample_rate, resample)
            native_span = _native_span(start, end, file_rate, sample_rate, sound.frames)
            samples = _read_soundfile(path, sound, *native_span)
            if sound.subtype in FLOAT_SUBTYPES:
                _check_full_scale(samples, path)

    samples = _to_mono(samples, path, downmix)
    rate = file_rate if sample_rate is None else sample_rate
    if rate != file_rate:
        samples = _resample(samples, file_rate, rate)
    offset = 0 if native_span is None else native_span[0] * rate // file_rate
    return _cut_span(samples, start - offset, None if end is None else end - offset,
                     path, start, end), rate


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resamples ``samples`` (``[time]`` or ``[time, channels]``) with soxr at high quality.

    The output has ``round(len * to_rate / from_rate)`` samples, aligned in time with the
    input (soxr compensates its filter delay), and float32 dtype.
    """
    for name, rate in (("from_rate", from_rate), ("to_rate", to_rate)):
        if int(rate) != rate or rate <= 0:
            raise ValueError(f"{name} must be a positive integer number of Hz, got {rate!r}")
    samples = np.asarray(samples, dtype=np.float32)
    if from_rate == to_rate:
        return samples.copy()
    if samples.shape[0] == 0:
        return np.zeros((0,) + samples.shape[1:], np.float32)
    return soxr.resample(samples, int(from_rate), int(to_rate), quality="HQ").astype(
        np.float32, copy=False)


# load_audio's keyword argument `resample` shadows the function inside it.
_resample = resample


#: int16 PCM `k` is the float sample `k / INT16_SCALE` (soundfile's and Kaldi's scaling).
INT16_SCALE = 32768.0


def int16_to_float(pcm) -> np.ndarray:
    """int16 PCM -> float32 in [-1, 1): `k / 32768`, exactly as soundfile reads 16-bit files."""
    return np.asarray(pcm).astype(np.float32) / np.float32(INT16_SCALE)


def float_to_int16(samples) -> np.ndarray:
    """float in [-1, 1] -> int16: `round(x * 32768)` clipped to the int16 range, the exact
    inverse of `int16_to_float`, so 16-bit audio round-trips bit for bit."""
    scaled = np.round(np.asarray(samples, np.float64) * INT16_SCALE)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def reject_reason(error: Exception) -> str:
    """`<code>: <detail>` on one line, for reject lists (`rejects.tsv`, which have their
    own path column): AudioError's machine-readable reason, or the exception type."""
    if hasattr(error, "reason") and hasattr(error, "detail"):
        text = f"{error.reason}: {error.detail}"
    else:
        text = f"{type(error).__name__}: {error}"
    return " ".join(text.split())


def write_wav(path: os.PathLike | str, samples: np.ndarray, rate: int) -> None:
    """Writes a 16-bit PCM WAV file.

    ``samples`` is float in [-1, 1] (values beyond are clipped to the int16 range) or int16,
    shaped ``[time]`` or ``[time, channels]``. Float ``x`` is stored as
    ``round(x * 32768)``, the inverse of how ``load_audio`` scales, so a waveform read from a
    16-bit file is written back bit-exactly.
    """
    path = os.fspath(path)
    samples = np.asarray(samples)
    if samples.dtype != np.int16:
        samples = samples.astype(np.float64)
        if not np.all(np.isfinite(samples)):
            raise AudioError("cannot write NaN or Inf samples", path, "non_finite")
        samples = float_to_int16(samples)
    try:
        soundfile.write(path, samples, int(rate), subtype="PCM_16", format="WAV")
    except (soundfile.SoundFileError, RuntimeError, OSError) as error:
        raise AudioError(f"cannot write WAV file: {error}", path, "write_failed") from error


def _check_full_scale(samples: np.ndarray, path: str) -> None:
    finite = samples[np.isfinite(samples)]
    peak = float(np.max(np.abs(finite))) if finite.size else 0.0
    if peak > 1.0:
        count = int(np.count_nonzero(np.abs(finite) > 1.0))
        raise AudioError(f"float samples reach {peak:.4g}, beyond ±1.0 full scale "
                         f"({count} of {samples.size} samples); they would be clipped. "
                         "Rescale the file (e.g. divide by its peak) or write it as PCM",
                         path, "out_of_range")


def check_audio(samples: np.ndarray, rate: int, path: os.PathLike | str,
                min_seconds: float = 0.5, *, silence_rms: float = SILENCE_RMS,
                max_clipped_fraction: Optional[float] = None,
                silence_peak: Optional[float] = None) -> None:
    """Raises AudioError when a waveform is unusable for training or scoring.

    The one check the shard build, ``eval.extract`` and ``tfspk.inference`` share.
    Checks, in order, each with its own ``reason``: ``empty`` (no samples), ``non_finite``
    (NaN or Inf), ``too_short`` (under ``min_seconds``), ``silent`` (RMS after removing
    the mean below ``silence_rms``, -60 dBFS by default, see ``SILENCE_RMS``; all-zero and
    DC-only audio say so), and, only when
    ``max_clipped_fraction`` is given, ``clipped`` (more than that fraction of samples at the
    16-bit rails). Clipping is off by default because clipped but intelligible speech is
    still useful speaker data (VoxCeleb has plenty).

    Args:
      samples: waveform, float in [-1, 1].
      rate: its sample rate in Hz.
      path: file the waveform came from, named in the error.
      min_seconds: shortest acceptable duration.
    """
    samples = np.asarray(samples)
    if samples.size == 0:
        raise AudioError("no samples", path, "empty")
    finite = np.isfinite(samples)
    if not np.all(finite):
        raise AudioError(f"{samples.size - int(np.count_nonzero(finite))} of {samples.size} "
                         "samples are NaN or Inf", path, "non_finite")
    seconds = samples.shape[0] / rate
    if seconds < min_seconds:
        raise AudioError(f"too short: {seconds:.3f} s < {min_seconds} s", path, "too_short")
    if silence_peak is not None:  # former keyword
        silence_rms = silence_peak
    values = samples.astype(np.float64)
    if not np.any(values):
        raise AudioError("silent: all samples are zero", path, "silent")
    offset = float(np.mean(values))
    rms = float(np.sqrt(np.mean((values - offset) ** 2)))
    if rms < silence_rms:
        limit = 20 * math.log10(silence_rms)
        if rms <= 1e-12 * max(1.0, abs(offset)):
            raise AudioError(f"silent: constant signal (DC offset {offset:.4g} only, no "
                             f"variation; threshold {limit:.1f} dBFS RMS)", path, "silent")
        raise AudioError(f"silent: RMS {20 * math.log10(rms):.1f} dBFS after removing the "
                         f"DC offset ({offset:.3g}) is below {limit:.1f} dBFS", path,
                         "silent")
    if max_clipped_fraction is not None:
        clipped = float(np.mean(np.abs(samples) >= CLIP_LEVEL))
        if clipped > max_clipped_fraction:
            raise AudioError(f"clipped: {100 * clipped:.2f}% of samples at full scale "
                             f"(limit {100 * max_clipped_fraction:.2f}%)", path, "clipped")


def _check_rate(path: str, file_rate: int, sample_rate: Optional[int],
                allow_resampling: bool) -> None:
    if sample_rate is not None and sample_rate != file_rate and not allow_resampling:
        raise AudioError(f"sample rate is {file_rate} Hz, expected {sample_rate} Hz",
                         path, "sample_rate")


def _open_soundfile(path: str) -> soundfile.SoundFile:
    try:
        return soundfile.SoundFile(path)
    except (soundfile.SoundFileError, RuntimeError, TypeError) as error:
        raise AudioError(f"cannot read audio: {_libsndfile_message(error)}", path) from error


def _libsndfile_message(error: Exception) -> str:
    # LibsndfileError's text repeats the path; its error_string is the reason alone.
    return getattr(error, "error_string", None) or str(error)


def _native_span(start: int, end: Optional[int], file_rate: int,
                 sample_rate: Optional[int], num_frames: int) -> tuple[int, int]:
    """Frames of the file to read so that ``[start, end)`` at the output rate is covered."""
    if sample_rate is None or sample_rate == file_rate:
        return start, num_frames if end is None else min(end, num_frames)
    # Start on a frame whose time is a whole number of output samples, so the resampled
    # block lines up exactly with the output grid, and keep a margin of real context.
    step = file_rate // math.gcd(file_rate, sample_rate)
    margin = int(_RESAMPLE_MARGIN_SECONDS * file_rate)
    first = max(0, (start * file_rate // sample_rate - margin) // step * step)
    if end is None:
        return first, num_frames
    last = -(-end * file_rate // sample_rate) + margin
    return first, min(last, num_frames)


def _read_soundfile(path: str, sound: soundfile.SoundFile, first: int,
                    last: int) -> np.ndarray:
    if first >= sound.frames:
        raise AudioError(f"span starts at frame {first}, after the {sound.frames} frames of "
                         "the file", path, "span")
    declared = _declared_frames(path)
    if declared is not None and declared > sound.frames:
        raise AudioError(f"truncated: the header declares {declared} frames but the file "
                         f"holds {sound.frames}", path, "truncated")
    try:
        if first:
            sound.seek(first)
        wanted = max(0, last - first)
        samples = sound.read(frames=wanted, dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, RuntimeError) as error:
        raise AudioError(f"cannot decode audio: {_libsndfile_message(error)}",
                         path) from error
    if len(samples) < wanted:
        raise AudioError(f"truncated: decoded {first + len(samples)} of the {sound.frames} "
                         "frames the header declares", path, "truncated")
    return samples


def _declared_frames(path: str) -> Optional[int]:
    """Frame count a RIFF/WAVE or NIST SPHERE header declares, if the file is one."""
    with open(path, "rb") as stream:
        head = stream.read(1024)
        size = os.fstat(stream.fileno()).st_size
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            return _riff_declared_frames(stream, size)
    if head.startswith(b"NIST_1A"):
        return _sphere_declared_frames(head)
    return None


def _riff_declared_frames(stream, file_size: int) -> Optional[int]:
    block_align = None
    position = 12
    while position + 8 <= file_size:
        stream.seek(position)
        chunk_id, chunk_size = struct.unpack("<4sI", stream.read(8))
        if chunk_id == b"fmt ":
            block_align = struct.unpack("<12xH", stream.read(14))[0]
        elif chunk_id == b"data":
            # 0 and 0xFFFFFFFF are what streaming writers leave when they cannot seek back.
            if not block_align or chunk_size in (0, 0xFFFFFFFF):
                return None
            return chunk_size // block_align
        position += 8 + chunk_size + (chunk_size & 1)
    return None


def _sphere_declared_frames(head: bytes) -> Optional[int]:
    fields = {}
    for line in head.split(b"end_head")[0].decode("ascii", "replace").splitlines()[2:]:
        parts = line.split(None, 2)
        if len(parts) == 3:
            fields[parts[0]] = parts[2].strip()
    if fields.get("sample_coding", "pcm") != "pcm" or "sample_count" not in fields:
        return None  # compressed (shorten) SPHERE: libsndfile rejects it anyway.
    try:
        return int(fields["sample_count"])
    except ValueError:
        return None


def _decode_with_pyav(path: str) -> tuple[np.ndarray, int]:
    try:
        import av  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise AudioError(
            f"reading {os.path.splitext(path)[1]} files needs PyAV, which is not installed: "
            "pip install 'tfspk[m4a]'", path, "missing_dependency") from None
    try:
        with av.open(path) as container:
            if not container.streams.audio:
                raise AudioError("no audio stream", path)
            stream = container.streams.audio[0]
            to_float = av.AudioResampler(format="flt")
            blocks = []
            for frame in container.decode(stream):
                blocks.extend(to_float.resample(frame))
            blocks.extend(to_float.resample(None))
            declared = (None if stream.duration is None
                        else int(stream.duration * stream.time_base * stream.rate))
            rate = stream.rate
    except av.FFmpegError as error:
        raise AudioError(f"cannot decode audio: {error}", path) from error
    if not blocks:
        raise AudioError("no audio frames could be decoded", path, "empty")
    samples = np.concatenate([block.to_ndarray().reshape(-1, len(block.layout.channels))
                              for block in blocks])
    if declared is not None and len(samples) < declared - _AAC_LENGTH_SLACK:
        raise AudioError(f"truncated: decoded {len(samples)} of the {declared} frames the "
                         "container declares", path, "truncated")
    return samples, rate


def _to_mono(samples: np.ndarray, path: str, downmix: bool) -> np.ndarray:
    if samples.shape[1] == 1:
        return np.ascontiguousarray(samples[:, 0])
    if not downmix:
        # Named for every caller: the library's argument and the build CLI's flag.
        raise AudioError(f"has {samples.shape[1]} channels, expected mono (average them "
                         "first: load_audio(downmix=True), tfrecords_tools.build --downmix)",
                         path, "multichannel")
    return samples.mean(axis=1, dtype=np.float32)


def _cut_span(samples: np.ndarray, first: int, last: Optional[int], path: str, start: int,
              end: Optional[int]) -> np.ndarray:
    """``samples[first:last]``, raising AudioError when the span leaves the audio."""
    available = len(samples)
    if first >= available or (last is not None and last > available):
        raise AudioError(f"span [{start}, {end}) lies outside the audio", path, "span")
    return np.ascontiguousarray(samples[first:last])
