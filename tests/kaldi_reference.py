"""kaldi-native-fbank as the reference front end for the feature tests.

The reference must transform in double precision. kaldi-native-fbank up to 1.20 does
(Ooura's rdft on doubles, as in its fftsg.cc); from 1.21 its Rfft is a float32 FFT
whose rounding error is relative to the frame's peak (measured: 8e-3 on a bin of
amplitude 1 in a frame whose peak bin is 8.9e4), which alone puts up to 6.6e-3 into
low-energy MFCCs of LibriSpeech and 4e-3 into log fbank. `check_double_fft` measures
that property of the installed library and fails with the fix when it is missing.
"""
import functools

import numpy as np

import kaldi_native_fbank as knf

_FRAME_FIELDS = ("frame_length_ms", "frame_shift_ms", "snip_edges", "preemph_coeff",
                 "remove_dc_offset", "window_type", "round_to_power_of_two",
                 "blackman_coeff")
_TOP_FIELDS = ("num_ceps", "use_energy", "raw_energy", "energy_floor",
               "cepstral_lifter", "use_log_fbank", "use_power")


def _version():
    from importlib import metadata
    return metadata.version("kaldi-native-fbank")


@functools.lru_cache(maxsize=1)
def fft_error() -> float:
    """Largest relative error of knf.Rfft's bin magnitudes on a loud frame.

    A double FFT whose bins are returned as float32 is within float32 rounding of every
    bin (~6e-8); a float32 FFT's error is relative to the peak, so the quiet bins (here
    ~110 dB below it) are off by 1e-5 and more (2.5e-5 for 1.23). Magnitudes, because releases differ in the sign
    of the packed imaginary parts."""
    rng = np.random.default_rng(0)
    n = 512
    t = np.arange(n)
    # Speech-like dynamic range: a loud low tone over quiet broadband noise, int16-scale.
    x = 8000.0 * np.sin(2 * np.pi * 5.3 * t / n) + 0.1 * rng.standard_normal(n)
    x = x.astype(np.float32)
    exact = np.fft.rfft(x.astype(np.float64))
    out = np.asarray(knf.Rfft(n).compute(x.tolist()), np.float64)
    magnitude = np.abs(np.concatenate([[out[0]], out[2::2] + 1j * out[3::2], [out[1]]]))
    return float((np.abs(magnitude - np.abs(exact)) / np.abs(exact)).max())


def check_double_fft():
    """Fails (never skips) when the installed kaldi-native-fbank has a float32 FFT."""
    import pytest

    error = fft_error()
    if error > 1e-6:
        pytest.fail(
            f"kaldi-native-fbank {_version()} computes its FFT in float32 (relative "
            f"error {error:.1e} on bins ~110 dB below the peak; a double FFT: ~1e-7), so "
            "it is not an exact Kaldi reference for low-energy bands. Install the last "
            "double-FFT release: pip install 'kaldi-native-fbank>=1.20,<1.21'")


def knf_features(waveform, rate: int, kind: str, options: dict) -> np.ndarray:
    """kaldi-native-fbank MFCC or fbank [frames, dims] of a float waveform in [-1, 1].

    `options` is a complete option set in `tfspk.features`' names (no dither)."""
    if not options["round_to_power_of_two"]:
        # kaldi-native-fbank <= 1.20 exit()s the process on a non-power-of-two FFT.
        raise ValueError("round_to_power_of_two=False: use textbook_mfcc")
    opts = knf.MfccOptions() if kind == "mfcc" else knf.FbankOptions()
    opts.frame_opts.samp_freq = rate
    opts.frame_opts.dither = 0.0
    for name in _FRAME_FIELDS:
        setattr(opts.frame_opts, name, options[name])
    opts.mel_opts.num_bins = options["num_mel_bins"]
    opts.mel_opts.low_freq = options["low_freq"]
    opts.mel_opts.high_freq = options["high_freq"]
    for name in _TOP_FIELDS:
        if name in options:
            setattr(opts, name, options[name])
    computer = knf.OnlineMfcc(opts) if kind == "mfcc" else knf.OnlineFbank(opts)
    computer.accept_waveform(rate, (np.asarray(waveform, np.float64) * 32768.0).tolist())
    computer.input_finished()
    frames = [computer.get_frame(i) for i in range(computer.num_frames_ready)]
    return np.stack(frames) if frames else np.zeros((0, 0), np.float32)


def textbook_mfcc(waveform, rate: int, options: dict) -> np.ndarray:
    """Kaldi's MFCC from its definition in float64 numpy, frame by frame.

    For what kaldi-native-fbank <= 1.20 cannot compute (its Rfft exits the process for
    a non-power-of-two size: round_to_power_of_two=False). snip_edges=True, no dither.
    """
    assert options["snip_edges"] and options["dither"] == 0.0
    x = np.asarray(waveform, np.float64) * 32768.0
    length = int(rate * 0.001 * options["frame_length_ms"])
    shift = int(rate * 0.001 * options["frame_shift_ms"])
    padded = length if not options["round_to_power_of_two"] else 1 << (length - 1).bit_length()
    i = np.arange(length)
    a = 2 * np.pi / (length - 1)
    window = {"hanning": 0.5 - 0.5 * np.cos(a * i), "hamming": 0.54 - 0.46 * np.cos(a * i),
              "povey": (0.5 - 0.5 * np.cos(a * i)) ** 0.85}[options["window_type"]]

    def mel(f):
        return 1127.0 * np.log(1.0 + np.asarray(f, np.float64) / 700.0)

    high = options["high_freq"] if options["high_freq"] > 0 else rate / 2 + options["high_freq"]
    bins = options["num_mel_bins"]
    edges = mel(options["low_freq"]) + np.arange(bins + 2) * (
        (mel(high) - mel(options["low_freq"])) / (bins + 1))
    fft_mel = mel(np.arange(padded // 2) * rate / padded)
    banks = np.zeros((padded // 2 + 1, bins))
    for b in range(bins):
        left, centre, right = edges[b:b + 3]
        for k, m in enumerate(fft_mel):
            if left < m < right:
                banks[k, b] = (m - left) / (centre - left) if m <= centre else (
                    (right - m) / (right - centre))
    q, n_ceps = options["cepstral_lifter"], options["num_ceps"]
    out = []
    for t in range(0, 1 + (len(x) - length) // shift if len(x) >= length else 0):
        frame = x[t * shift:t * shift + length].copy()
        if options["remove_dc_offset"]:
            frame -= frame.mean()
        energy = np.log(max(np.dot(frame, frame), np.finfo(np.float32).eps))
        if options["preemph_coeff"]:
            frame = frame - options["preemph_coeff"] * np.concatenate([frame[:1], frame[:-1]])
        frame *= window
        if not options["raw_energy"]:
            energy = np.log(max(np.dot(frame, frame), np.finfo(np.float32).eps))
        power = np.abs(np.fft.rfft(frame, padded)) ** 2
        log_mel = np.log(np.maximum(power @ banks, np.finfo(np.float32).eps))
        ceps = np.array([np.sqrt((1.0 if k == 0 else 2.0) / bins) * np.sum(
            log_mel * np.cos(np.pi / bins * (np.arange(bins) + 0.5) * k))
            for k in range(n_ceps)])
        if q:
            ceps *= 1.0 + 0.5 * q * np.sin(np.pi * np.arange(n_ceps) / q)
        if options["use_energy"]:
            if options["energy_floor"] > 0:
                energy = max(energy, np.log(options["energy_floor"]))
            ceps[0] = energy
        out.append(ceps)
    return np.array(out)
