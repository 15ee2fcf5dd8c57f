"""Kaldi-compatible filterbank and MFCC features in TensorFlow ops.

`kaldi_fbank` and `kaldi_mfcc` reproduce Kaldi's `compute-fbank-feats` /
`compute-mfcc-feats` (and kaldi-native-fbank, whose option names they take) with
TensorFlow ops only, so the same code runs eagerly, in `tf.data`, inside a Keras
model and inside an exported SavedModel with unknown batch size and length.

Kaldi's pipeline, per frame:
  1. extract `frame_length` samples every `frame_shift` samples; with
     `snip_edges=False` frames are centred on `t * shift + shift / 2` and samples
     outside the signal are reflected (`-1 -> 0`, `n -> n - 1`);
  2. optional dither (Gaussian, `dither` standard deviation in 16-bit units);
  3. remove the frame's DC offset;
  4. log-energy of the raw frame (`raw_energy=True`);
  5. pre-emphasis `y[i] = x[i] - c x[i-1]`, with `y[0] = x[0] - c x[0]`;
  6. window (`povey` = Hann ** 0.85 by default);
  7. FFT, zero-padded to a power of two, power (or magnitude) spectrum;
  8. triangular mel filters, triangular in the mel domain with
     `mel(f) = 1127 ln(1 + f / 700)`, over the bins below Nyquist;
  9. log with a floor of float32 epsilon; MFCC: DCT-II with Kaldi's orthonormal
     scaling (`sqrt(1/N)` for C0, `sqrt(2/N)` otherwise), the cepstral lifter
     `1 + Q/2 sin(pi i / Q)`, and the log-energy in place of C0 (`use_energy`).

Input waveforms are float32 in [-1, 1] (the tfspk convention) and are scaled by
32768 internally, because Kaldi reads 16-bit PCM as integers and its energies,
`energy_floor` and the VAD threshold are in that scale.

Defaults are Kaldi's except:
  * `dither=0`: Kaldi dithers by default (1.0, kaldi-native-fbank 3e-5) to avoid
    log(0) on digital silence. Here the log is floored instead, and deterministic
    features are what training, export and the reference tests need; pass
    `dither>0` with a `seed` to reproduce Kaldi's dithered features.
  * `kaldi_mfcc` defaults to the paper's front end (Shon et al. 2018): 40 mel bins
    and 40 cepstra, 25 ms windows every 10 ms (`PAPER_MFCC_OPTIONS`); Kaldi's own
    default is 23 bins and 13 cepstra. `VOXCELEB_V2_MFCC_OPTIONS` is Kaldi's
    egs/voxceleb/v2 `mfcc.conf`.

Precision: the time-domain steps (DC removal, log-energy, pre-emphasis, window) are
float32 and round exactly as Kaldi's and kaldi-native-fbank's float32 code does; the
FFT alone is float64 whatever `compute_dtype` is, because a float32 FFT's error is
relative to the frame's peak and swamps bands 100+ dB below it (LibriSpeech above
its MP3 low-pass, under the pre-emphasis); each bin's real and imaginary parts go back
to `compute_dtype` for the power spectrum, mel, log and DCT, where no sum cancels.
Over all 251 files of librispeech-251, full length, this matches kaldi-native-fbank
1.20 (whose FFT is double) to 3.3e-4 (MFCC) and 1.2e-4 (log fbank) for the paper's
and Kaldi VoxCeleb v2's options, snip_edges true and false, and for Kaldi's 8 kHz
telephone options (tests/test_kaldi_parity.py). kaldi-native-fbank 1.21+ computes its
FFT in float32, so its own low-energy bands are off by up to 6.6e-3 (MFCC) and 3.9e-3
(log fbank) on those files; `compute_dtype="float64"` rounds the time domain exactly
too and so differs from Kaldi by as much. float64 FFTs need a backend that has them
(CPU, GPU; not TPU).

Batches: `[batch, samples]` input with `lengths` (valid samples per row) gives
each row exactly the features of the unpadded row. With `snip_edges=True` no frame
of a row reaches into its padding; with `snip_edges=False` the reflection at the
end of each row uses that row's own length, so padding is never read either.
Frames past a row's `num_frames(length)` are zero.

Also in `tfspk.frontend`: frame bookkeeping (`framing`: `num_frames`, samples for N
frames, where each frame sits), utterance and sliding CMN (`normalization`), Kaldi's
energy VAD (`vad`), and the Keras layers (`layers`: `MfccFeatures`, `FbankFeatures`).
"""
from __future__ import annotations

import functools
import math
from typing import Any, Mapping

import numpy as np
import tensorflow as tf

from tfspk.audio import INT16_SCALE
from tfspk.frontend.framing import milliseconds_to_samples as _samples
from tfspk.frontend.framing import first_frame_start, num_frames

WINDOW_TYPES = ("povey", "hamming", "hanning", "rectangular", "sine", "blackman")

# numeric_limits<float>::epsilon(), the floor Kaldi uses before every log.
LOG_FLOOR = float(np.finfo(np.float32).eps)

# Kaldi reads 16-bit PCM without normalising it: waveforms are scaled back to the int16
# range by INT16_SCALE (imported above from tfspk.audio, the one int16 <-> float owner).

_FRAME_OPTIONS = {
    "frame_length_ms": 25.0,
    "frame_shift_ms": 10.0,
    "dither": 0.0,
    "preemph_coeff": 0.97,
    "remove_dc_offset": True,
    "window_type": "povey",
    "round_to_power_of_two": True,
    "blackman_coeff": 0.42,
    "snip_edges": True,
    "num_mel_bins": 23,
    "low_freq": 20.0,
    "high_freq": 0.0,
    "energy_floor": 0.0,
    "raw_energy": True,
}

FBANK_DEFAULTS: Mapping[str, Any] = {
    **_FRAME_OPTIONS,
    "use_energy": False,
    "use_log_fbank": True,
    "use_power": True,
}

KALDI_MFCC_DEFAULTS: Mapping[str, Any] = {
    **_FRAME_OPTIONS,
    "num_ceps": 13,
    "use_energy": True,
    "cepstral_lifter": 22.0,
}

# Shon, Tang & Glass (SLT 2018): 40-dimensional MFCC, 25 ms / 10 ms.
PAPER_MFCC_OPTIONS: Mapping[str, Any] = {
    "frame_length_ms": 25.0,
    "frame_shift_ms": 10.0,
    "num_mel_bins": 40,
    "num_ceps": 40,
}

# Kaldi egs/voxceleb/v2/conf/mfcc.conf.
VOXCELEB_V2_MFCC_OPTIONS: Mapping[str, Any] = {
    "frame_length_ms": 25.0,
    "frame_shift_ms": 10.0,
    "num_mel_bins": 30,
    "num_ceps": 30,
    "low_freq": 20.0,
    "high_freq": 7600.0,
    "snip_edges": False,
}

MFCC_DEFAULTS: Mapping[str, Any] = {**KALDI_MFCC_DEFAULTS, **PAPER_MFCC_OPTIONS}

_COMPUTE_DTYPES = {"float32": tf.float32, "float64": tf.float64}
# The FFT runs in float64 whatever compute_dtype is (see _compute).
_SPECTRUM_DTYPE = tf.float64
_DEFAULTS_BY_KIND = {"fbank": FBANK_DEFAULTS, "mfcc": MFCC_DEFAULTS}


# --------------------------------------------------------------------------- #
# Options
# --------------------------------------------------------------------------- #
def _check_number(name: str, value: Any, kind: type) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"feature option {name} must be a number, got {value!r}")
    if kind is int and float(value) != int(value):
        raise ValueError(f"feature option {name} must be an integer, got {value!r}")


def resolve_options(kind: str, sample_rate: float = 16000, **options) -> dict:
    """Returns the full, validated option dict for `kind` ("fbank" or "mfcc").

    Unknown names, wrong types and out-of-range values raise ValueError naming
    the option. `high_freq <= 0` is kept as given (it means Nyquist + high_freq).
    """
    if kind not in _DEFAULTS_BY_KIND:
        raise ValueError(f"feature kind must be 'fbank' or 'mfcc', got {kind!r}")
    defaults = _DEFAULTS_BY_KIND[kind]
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(
            f"unknown {kind} option(s) {unknown}; valid options: {sorted(defaults)}")
    opts = {**defaults, **options}
    _check_number("sample_rate", sample_rate, float)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    for name, default in defaults.items():
        value = opts[name]
        if isinstance(default, bool):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"feature option {name} must be a bool, got {value!r}")
            opts[name] = bool(value)
        elif isinstance(default, str):
            if not isinstance(value, str):
                raise ValueError(f"feature option {name} must be a string, got {value!r}")
        else:
            _check_number(name, value, type(default))
            opts[name] = type(default)(value)
    if opts["window_type"] not in WINDOW_TYPES:
        raise ValueError(
            f"window_type must be one of {WINDOW_TYPES}, got {opts['window_type']!r}")
    for name in ("frame_length_ms", "frame_shift_ms"):
        if opts[name] <= 0:
            raise ValueError(f"{name} must be positive, got {opts[name]}")
    if _samples(sample_rate, opts["frame_length_ms"]) < 2:
        raise ValueError(
            f"frame_length_ms={opts['frame_length_ms']} at {sample_rate} Hz is "
            "shorter than 2 samples")
    if _samples(sample_rate, opts["frame_shift_ms"]) < 1:
        raise ValueError(
            f"frame_shift_ms={opts['frame_shift_ms']} at {sample_rate} Hz is "
            "shorter than 1 sample")
    if opts["dither"] < 0:
        raise ValueError(f"dither must be >= 0, got {opts['dither']}")
    if not 0.0 <= opts["preemph_coeff"] <= 1.0:
        raise ValueError(f"preemph_coeff must be in [0, 1], got {opts['preemph_coeff']}")
    if opts["energy_floor"] < 0:
        raise ValueError(f"energy_floor must be >= 0, got {opts['energy_floor']}")
    if opts["num_mel_bins"] < 3:
        raise ValueError(f"num_mel_bins must be >= 3, got {opts['num_mel_bins']}")
    nyquist = 0.5 * sample_rate
    high = opts["high_freq"] if opts["high_freq"] > 0 else nyquist + opts["high_freq"]
    if not (0.0 <= opts["low_freq"] < nyquist and 0.0 < high <= nyquist
            and opts["low_freq"] < high):
        raise ValueError(
            f"need 0 <= low_freq < high_freq <= Nyquist ({nyquist} Hz); got "
            f"low_freq={opts['low_freq']}, high_freq={opts['high_freq']} "
            f"(resolved to {high})")
    if kind == "mfcc":
        if not 1 <= opts["num_ceps"] <= opts["num_mel_bins"]:
            raise ValueError(
                f"num_ceps must be in [1, num_mel_bins={opts['num_mel_bins']}], "
                f"got {opts['num_ceps']}")
        if opts["cepstral_lifter"] < 0:
            raise ValueError(
                f"cepstral_lifter must be >= 0, got {opts['cepstral_lifter']}")
    # Fails early, with the reason, when a mel bin would be empty.
    _mel_banks(float(sample_rate), _padded_length(sample_rate, opts),
               opts["num_mel_bins"], opts["low_freq"], opts["high_freq"])
    return opts


def _padded_length(sample_rate: float, opts: Mapping[str, Any]) -> int:
    length = _samples(sample_rate, opts["frame_length_ms"])
    if opts["round_to_power_of_two"]:
        return 1 << (length - 1).bit_length()
    return length


# --------------------------------------------------------------------------- #
# Constant matrices (built once per option set, at trace time)
# --------------------------------------------------------------------------- #
def mel_scale(freq):
    """Kaldi's mel scale, 1127 ln(1 + f / 700)."""
    return 1127.0 * np.log1p(np.asarray(freq, dtype=np.float64) / 700.0)


@functools.lru_cache(maxsize=64)
def _window(length: int, window_type: str, blackman_coeff: float) -> np.ndarray:
    i = np.arange(length, dtype=np.float64)
    a = 2.0 * math.pi / (length - 1)
    if window_type == "hanning":
        return 0.5 - 0.5 * np.cos(a * i)
    if window_type == "sine":
        return np.sin(0.5 * a * i)
    if window_type == "hamming":
        return 0.54 - 0.46 * np.cos(a * i)
    if window_type == "povey":
        # Hann to the power 0.85: like Hamming but reaching zero at the edges.
        return (0.5 - 0.5 * np.cos(a * i)) ** 0.85
    if window_type == "rectangular":
        return np.ones(length)
    if window_type == "blackman":
        return (blackman_coeff - 0.5 * np.cos(a * i)
                + (0.5 - blackman_coeff) * np.cos(2.0 * a * i))
    raise ValueError(f"window_type must be one of {WINDOW_TYPES}, got {window_type!r}")


@functools.lru_cache(maxsize=64)
def _mel_banks(sample_rate: float, padded_length: int, num_bins: int,
               low_freq: float, high_freq: float) -> np.ndarray:
    """Kaldi's mel filterbank as a [padded_length // 2 + 1, num_bins] matrix.

    Filters are triangles in the mel domain between neighbouring centres spaced
    evenly from mel(low_freq) to mel(high_freq); only FFT bins below Nyquist get
    weight (Kaldi's loop stops at padded_length / 2), so the last row is zero.
    """
    nyquist = 0.5 * sample_rate
    if high_freq <= 0.0:
        high_freq = nyquist + high_freq
    num_fft_bins = padded_length // 2
    mel_low, mel_high = mel_scale(low_freq), mel_scale(high_freq)
    delta = (mel_high - mel_low) / (num_bins + 1)
    mel = mel_scale(np.arange(num_fft_bins) * (sample_rate / padded_length))
    banks = np.zeros((num_fft_bins + 1, num_bins))
    for b in range(num_bins):
        left, center, right = mel_low + delta * np.array([b, b + 1, b + 2])
        inside = (mel > left) & (mel < right)
        rising = (mel - left) / (center - left)
        falling = (right - mel) / (right - center)
        banks[:num_fft_bins, b] = np.where(
            inside, np.where(mel <= center, rising, falling), 0.0)
        if not inside.any():
            raise ValueError(
                f"mel bin {b} of {num_bins} covers no FFT bin between {low_freq} "
                f"and {high_freq} Hz with a {padded_length}-point FFT; "
                "num_mel_bins is too large")
    return banks


@functools.lru_cache(maxsize=64)
def _dct_matrix(num_bins: int, num_ceps: int) -> np.ndarray:
    """[num_bins, num_ceps] DCT-II with Kaldi's orthonormal scaling."""
    n = np.arange(num_bins)
    k = np.arange(num_ceps)[:, None]
    dct = np.sqrt(2.0 / num_bins) * np.cos(math.pi / num_bins * (n + 0.5) * k)
    dct[0] = np.sqrt(1.0 / num_bins)
    return dct.T


def _lifter(num_ceps: int, q: float) -> np.ndarray:
    if q == 0.0:
        return np.ones(num_ceps)
    return 1.0 + 0.5 * q * np.sin(math.pi * np.arange(num_ceps) / q)


# --------------------------------------------------------------------------- #
# Frame extraction (the arithmetic of where frames sit is in tfspk.frontend.framing)
# --------------------------------------------------------------------------- #
def _extract_frames(waveform: tf.Tensor, lengths: tf.Tensor, num_out: tf.Tensor,
                    length: int, shift: int, snip_edges: bool) -> tf.Tensor:
    """[batch, num_out, length] frames of `waveform` [batch, width].

    Frames are cut by a reshape, not a per-sample gather: the (extended) signal is
    laid out as rows of `shift` samples, and frame t is rows t .. t + k - 1
    concatenated (k = ceil(length / shift)) and cut to `length`. With
    snip_edges=False the signal is first extended by reflection about each row's
    own ends (-1 -> 0, n -> n - 1, with period 2n, which is what Kaldi's repeated
    reflection gives for signals shorter than a frame): one gather of about the
    signal's size, instead of one of `length / shift` times its size.
    """
    k = -(-length // shift)
    total = (num_out + k - 1) * shift  # samples spanned by rows 0 .. num_out + k - 2
    if snip_edges:
        # Every frame below num_frames(length) lies inside the row already.
        extended = tf.pad(waveform, [[0, 0], [0, k * shift]])[:, :total]
    else:
        index = first_frame_start(length, shift, snip_edges) + tf.range(total)
        n = tf.maximum(lengths, 1)[:, None]
        folded = tf.math.floormod(index[None], 2 * n)
        index = tf.where(folded >= n, 2 * n - 1 - folded, folded)
        extended = tf.gather(waveform, index, batch_dims=1)
    rows = tf.reshape(extended, [tf.shape(waveform)[0], num_out + k - 1, shift])
    # The last row block is cut to what the frame needs, so no copy is made twice.
    tail = length - (k - 1) * shift
    pieces = [rows[:, i:i + num_out] for i in range(k - 1)]
    pieces.append(rows[:, k - 1:k - 1 + num_out, :tail])
    return tf.concat(pieces, axis=-1) if len(pieces) > 1 else pieces[0]


# --------------------------------------------------------------------------- #
# Feature computation
# --------------------------------------------------------------------------- #
def _as_batch(waveform, lengths):
    waveform = tf.convert_to_tensor(waveform)
    if not waveform.dtype.is_floating:
        raise ValueError(
            f"waveform must be floating point in [-1, 1], got {waveform.dtype}")
    rank = waveform.shape.rank
    if rank not in (1, 2):
        raise ValueError(
            f"waveform must have shape [samples] or [batch, samples], got {waveform.shape}")
    batched = rank == 2
    if not batched:
        waveform = waveform[None]
    width = tf.shape(waveform)[1]
    if lengths is None:
        lengths = tf.fill([tf.shape(waveform)[0]], width)
    else:
        lengths = tf.cast(tf.convert_to_tensor(lengths), tf.int32)
        if not batched:
            lengths = tf.reshape(lengths, [1])
        lengths = tf.clip_by_value(lengths, 0, width)
    return waveform, lengths, batched


def _seeded_normal(shape, seed, dtype):
    if seed is None:
        return tf.random.normal(shape, dtype=dtype)
    if isinstance(seed, (int, np.integer)):
        seed = [int(seed), 0]
    return tf.random.stateless_normal(shape, seed=seed, dtype=dtype)


def _compute(kind: str, waveform, lengths, sample_rate, seed, compute_dtype, options):
    opts = resolve_options(kind, sample_rate, **options)
    if compute_dtype not in _COMPUTE_DTYPES:
        raise ValueError(
            f"compute_dtype must be one of {sorted(_COMPUTE_DTYPES)}, got {compute_dtype!r}")
    dtype = _COMPUTE_DTYPES[compute_dtype]
    length = _samples(sample_rate, opts["frame_length_ms"])
    shift = _samples(sample_rate, opts["frame_shift_ms"])
    padded = _padded_length(sample_rate, opts)
    frame_args = dict(frame_length_ms=opts["frame_length_ms"],
                      frame_shift_ms=opts["frame_shift_ms"],
                      snip_edges=opts["snip_edges"], sample_rate=sample_rate)

    waveform, lengths, batched = _as_batch(waveform, lengths)
    frame_lengths = num_frames(lengths, **frame_args)
    num_out = tf.reduce_max(tf.concat([frame_lengths, [0]], axis=0))
    frames = _extract_frames(tf.cast(waveform, dtype) * INT16_SCALE, lengths, num_out,
                             length, shift, opts["snip_edges"])

    if opts["dither"] > 0.0:
        frames += opts["dither"] * _seeded_normal(tf.shape(frames), seed, dtype)
    # The time-domain steps below round exactly as kaldi-native-fbank's float32 code
    # does (same operations, same order), so the windowed frames are bit-identical to
    # its own: with int16-scale integers the frame sum is exact in float32, and
    # every later step is one elementwise float32 operation.
    if opts["remove_dc_offset"]:
        frames -= tf.reduce_sum(frames, axis=-1, keepdims=True) / tf.constant(length, dtype)

    def log_energy(x):
        return tf.math.log(tf.maximum(tf.reduce_sum(tf.square(x), axis=-1), LOG_FLOOR))

    if opts["use_energy"] and opts["raw_energy"]:
        energy = log_energy(frames)
    coeff = opts["preemph_coeff"]
    if coeff != 0.0:
        # y[i] = x[i] - c x[i-1], y[0] = x[0] - c x[0]: one shifted copy, one multiply
        # and one subtract (each rounded, as Kaldi's loop rounds them).
        previous = tf.concat([frames[..., :1], frames[..., :-1]], axis=-1)
        frames -= coeff * previous
    window = _window(length, opts["window_type"], opts["blackman_coeff"])
    frames *= tf.constant(window, dtype)
    if opts["use_energy"] and not opts["raw_energy"]:
        energy = log_energy(frames)
    if opts["use_energy"] and opts["energy_floor"] > 0.0:
        energy = tf.maximum(energy, math.log(opts["energy_floor"]))

    # The FFT is where float32 loses precision: a float32 FFT's rounding error is
    # relative to the frame's total power, so bands 100+ dB below the frame's peak
    # (under the DC removal and pre-emphasis, above LibriSpeech's MP3 low-pass,
    # telephone band edges) come out wrong by 1e-3 and more in log terms, and the MFCC
    # lifter multiplies that by up to 1 + Q/2. So the FFT is float64, from the float32
    # frames (zero-padded here: rfft's own padding refuses an empty input). Each bin's
    # real and imaginary part is then accurate to its own magnitude, so both go back to
    # float32 for the power and the mel and DCT products: no sum there cancels (every
    # term is positive until the log).
    frames = tf.cast(frames, _SPECTRUM_DTYPE)
    if padded > length:
        frames = tf.pad(frames, [[0, 0], [0, 0], [0, padded - length]])
    spectrum = tf.signal.rfft(frames)
    real = tf.cast(tf.math.real(spectrum), dtype)
    imag = tf.cast(tf.math.imag(spectrum), dtype)
    power = real * real + imag * imag
    if kind == "fbank" and not opts["use_power"]:
        power = tf.sqrt(power)
    banks = _mel_banks(float(sample_rate), padded, opts["num_mel_bins"],
                       opts["low_freq"], opts["high_freq"])
    mel = tf.linalg.matmul(power, tf.constant(banks, dtype))

    if kind == "fbank":
        features = tf.math.log(tf.maximum(mel, LOG_FLOOR)) if opts["use_log_fbank"] else mel
        if opts["use_energy"]:
            features = tf.concat([energy[..., None], features], axis=-1)
    else:
        log_mel = tf.math.log(tf.maximum(mel, LOG_FLOOR))
        transform = (_dct_matrix(opts["num_mel_bins"], opts["num_ceps"])
                     * _lifter(opts["num_ceps"], opts["cepstral_lifter"])[None, :])
        features = tf.linalg.matmul(log_mel, tf.constant(transform, dtype))
        if opts["use_energy"]:
            features = tf.concat([energy[..., None], features[..., 1:]], axis=-1)

    valid = tf.range(num_out)[None, :] < frame_lengths[:, None]
    features = tf.where(valid[..., None], tf.cast(features, tf.float32), 0.0)
    if not batched:
        return features[0], frame_lengths[0]
    return features, frame_lengths


def kaldi_fbank_with_lengths(waveform, lengths=None, sample_rate=16000, *, seed=None,
                             compute_dtype="float32", **options):
    """Kaldi log mel filterbank energies and the number of valid frames per row.

    Args:
      waveform: float [samples] or [batch, samples] in [-1, 1].
      lengths: valid samples per row (None: the full width). Rows are computed as
        if cut to their length; frames past `num_frames(length)` are zero.
      sample_rate: in Hz.
      seed: for dither only: an int or a shape-[2] integer tensor (stateless,
        reproducible); None draws from TensorFlow's global generator.
      compute_dtype: "float32" (default) or "float64" for the arithmetic inside.
      **options: kaldi-native-fbank FbankOptions names (see `FBANK_DEFAULTS`).

    Returns:
      (features float32 [..., frames, num_mel_bins (+1 with use_energy)],
       frame_lengths int32 [batch] or scalar).
    """
    return _compute("fbank", waveform, lengths, sample_rate, seed, compute_dtype, options)


def kaldi_mfcc_with_lengths(waveform, lengths=None, sample_rate=16000, *, seed=None,
                            compute_dtype="float32", **options):
    """Kaldi MFCCs and the number of valid frames per row.

    Same arguments as `kaldi_fbank_with_lengths`; options are kaldi-native-fbank
    MfccOptions names (see `MFCC_DEFAULTS`: the paper's 40 bins / 40 cepstra).

    Returns:
      (features float32 [..., frames, num_ceps], frame_lengths int32).
    """
    return _compute("mfcc", waveform, lengths, sample_rate, seed, compute_dtype, options)


def kaldi_fbank(waveform, sample_rate=16000, *, lengths=None, seed=None,
                compute_dtype="float32", **options):
    """Kaldi filterbank features of `waveform` ([samples] or [batch, samples]).

    See `kaldi_fbank_with_lengths`; this returns the features only.
    """
    return kaldi_fbank_with_lengths(waveform, lengths, sample_rate, seed=seed,
                                    compute_dtype=compute_dtype, **options)[0]


def kaldi_mfcc(waveform, sample_rate=16000, *, lengths=None, seed=None,
               compute_dtype="float32", **options):
    """Kaldi MFCCs of `waveform` ([samples] or [batch, samples]).

    Defaults: Kaldi's, with the paper's 40 mel bins and 40 cepstra and dither 0.
    See `kaldi_mfcc_with_lengths`; this returns the features only.
    """
    return kaldi_mfcc_with_lengths(waveform, lengths, sample_rate, seed=seed,
                                   compute_dtype=compute_dtype, **options)[0]

