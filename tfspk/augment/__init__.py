"""In-graph data augmentation for speaker embeddings.

Kaldi's x-vector recipe augmentations (MUSAN noise / music / babble at fixed SNRs, RIR
reverberation), speed perturbation and SpecAugment, as TensorFlow ops that run per
example in tf.data or per batch inside a training step. Random decisions are drawn
with stateless ops from explicit seeds (`draw_plan`), so results are reproducible.
"""
from tfspk.augment.config import AugmentationConfig
from tfspk.augment.cropping import head_crop, random_crop, random_crop_pcm16, random_crops
from tfspk.augment.mixing import (fit_to_length, foreground_starts, gain_for_snr, mix_at_snr,
                                  mix_babble, mix_foreground, signal_power)
from tfspk.augment.plan import (BABBLE, MUSIC, NOISE, NONE, augment_waveforms, draw_kinds,
                                draw_plan, mask_features, premix_additive)
from tfspk.augment.reverb import reverberate
from tfspk.augment.sources import (AudioFileSet, AugmentationSourceError,
                                   AugmentationSources, RecordingSet, TFRecordSet, list_files)
from tfspk.augment.specaugment import apply_masks, draw_masks
from tfspk.augment.speed import (perturbed_length, resample_to_length, speed_label,
                                 speed_perturb)

__all__ = [
    "AugmentationConfig", "AugmentationSources", "AugmentationSourceError", "AudioFileSet",
    "RecordingSet", "TFRecordSet", "list_files", "mix_at_snr", "mix_babble",
    "mix_foreground", "foreground_starts",
    "fit_to_length", "gain_for_snr", "signal_power", "reverberate", "speed_perturb",
    "resample_to_length", "perturbed_length", "speed_label", "draw_masks", "apply_masks",
    "draw_plan", "draw_kinds", "premix_additive", "augment_waveforms", "mask_features",
    "random_crop", "random_crop_pcm16", "random_crops",
    "head_crop", "NONE", "NOISE", "MUSIC", "BABBLE",
]
