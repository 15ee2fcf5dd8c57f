"""The front end: waveform -> Kaldi features, normalisation, VAD, and where frames sit.

* `framing`: frames <-> samples, first-frame offset, frame centres (the only place
  this arithmetic lives), `FrameGrid`.
* `ops`: `kaldi_fbank`, `kaldi_mfcc` (+ `_with_lengths`), option resolution.
* `normalization`: `apply_cmn`, `sliding_cmn`.  `vad`: `energy_vad`.
* `layers`: Keras layers `MfccFeatures`, `FbankFeatures`; `network_inputs` (front end
  -> the `{"features", "lengths"}` an embedding network takes) and
  `with_waveform_frontend`.

`tfspk.features` re-exports the ops, normalisation, VAD and layers under their old
names.
"""
from tfspk.frontend.framing import (FrameGrid, first_frame_start, frames_centred_in,
                                    layer_frame_centres, milliseconds_to_samples,
                                    num_frames, samples_for_frames)
from tfspk.frontend.layers import (FbankFeatures, MfccFeatures, network_inputs,
                                   with_waveform_frontend)
from tfspk.frontend.normalization import apply_cmn, sliding_cmn
from tfspk.frontend.ops import (FBANK_DEFAULTS, KALDI_MFCC_DEFAULTS, MFCC_DEFAULTS,
                                PAPER_MFCC_OPTIONS, VOXCELEB_V2_MFCC_OPTIONS, kaldi_fbank,
                                kaldi_fbank_with_lengths, kaldi_mfcc,
                                kaldi_mfcc_with_lengths, resolve_options)
from tfspk.frontend.vad import KALDI_VAD_OPTIONS, VOXCELEB_V2_VAD_OPTIONS, energy_vad

__all__ = [
    "FBANK_DEFAULTS", "FbankFeatures", "FrameGrid", "KALDI_MFCC_DEFAULTS",
    "KALDI_VAD_OPTIONS", "MFCC_DEFAULTS", "MfccFeatures", "PAPER_MFCC_OPTIONS",
    "VOXCELEB_V2_MFCC_OPTIONS", "VOXCELEB_V2_VAD_OPTIONS", "apply_cmn", "energy_vad",
    "first_frame_start", "frames_centred_in", "kaldi_fbank", "kaldi_fbank_with_lengths",
    "kaldi_mfcc", "kaldi_mfcc_with_lengths", "layer_frame_centres",
    "milliseconds_to_samples", "network_inputs", "num_frames", "resolve_options",
    "samples_for_frames", "sliding_cmn", "with_waveform_frontend",
]
