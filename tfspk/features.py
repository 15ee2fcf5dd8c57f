"""Kaldi-compatible filterbank and MFCC features: the names `tfspk.features` has
always had, now living in the `tfspk.frontend` package.

* ops (`kaldi_fbank`, `kaldi_mfcc`, option dicts, `resolve_options`): `tfspk.frontend.ops`
* frame bookkeeping (`num_frames`): `tfspk.frontend.framing`
* `apply_cmn`, `sliding_cmn`: `tfspk.frontend.normalization`
* `energy_vad` and its option dicts: `tfspk.frontend.vad`
* Keras layers `MfccFeatures`, `FbankFeatures`: `tfspk.frontend.layers`

See `tfspk.frontend.ops` for the algorithm, its precision and its defaults.
"""
from tfspk.frontend.framing import num_frames
from tfspk.frontend.layers import FbankFeatures, MfccFeatures, _KaldiFeatures
from tfspk.frontend.normalization import apply_cmn, sliding_cmn
from tfspk.frontend.ops import (FBANK_DEFAULTS, INT16_SCALE, KALDI_MFCC_DEFAULTS,
                                LOG_FLOOR, MFCC_DEFAULTS, PAPER_MFCC_OPTIONS,
                                VOXCELEB_V2_MFCC_OPTIONS, WINDOW_TYPES, kaldi_fbank,
                                kaldi_fbank_with_lengths, kaldi_mfcc,
                                kaldi_mfcc_with_lengths, mel_scale, resolve_options)
from tfspk.frontend.vad import KALDI_VAD_OPTIONS, VOXCELEB_V2_VAD_OPTIONS, energy_vad

__all__ = [
    "FBANK_DEFAULTS", "FbankFeatures", "INT16_SCALE", "KALDI_MFCC_DEFAULTS",
    "KALDI_VAD_OPTIONS", "LOG_FLOOR", "MFCC_DEFAULTS", "MfccFeatures", "PAPER_MFCC_OPTIONS",
    "VOXCELEB_V2_MFCC_OPTIONS", "VOXCELEB_V2_VAD_OPTIONS", "WINDOW_TYPES", "apply_cmn",
    "energy_vad", "kaldi_fbank", "kaldi_fbank_with_lengths", "kaldi_mfcc",
    "kaldi_mfcc_with_lengths", "mel_scale", "num_frames", "resolve_options",
    "sliding_cmn",
]
