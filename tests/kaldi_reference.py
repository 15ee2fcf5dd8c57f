"""kaldi-native-fbank as the reference front end for the feature tests."""
import numpy as np

import kaldi_native_fbank as knf

_FRAME_FIELDS = ("frame_length_ms", "frame_shift_ms", "snip_edges", "preemph_coeff",
                 "remove_dc_offset", "window_type", "round_to_power_of_two",
                 "blackman_coeff")
_TOP_FIELDS = ("num_ceps", "use_energy", "raw_energy", "energy_floor",
               "cepstral_lifter", "use_log_fbank", "use_power")


def knf_features(waveform, rate: int, kind: str, options: dict) -> np.ndarray:
    """kaldi-native-fbank MFCC or fbank [frames, dims] of a float waveform in [-1, 1].

    `options` is a complete option set in `tfspk.features`' names (no dither)."""
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
