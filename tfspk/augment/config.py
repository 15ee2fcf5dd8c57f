"""`AugmentationConfig`: which augmentations to apply, how often and how strongly."""
from __future__ import annotations

import dataclasses

SNR_SAMPLING = ("discrete", "uniform")


@dataclasses.dataclass(frozen=True)
class AugmentationConfig:
    """Per-type probabilities and parameters; defaults follow Kaldi's x-vector recipe.

    Waveform augmentation kinds are reverb (RIR convolution) and the additive kinds noise,
    music and babble (MUSAN). With `exclusive=True` (Kaldi's x-vector recipe, where every
    augmented copy gets exactly one kind) an example gets at most one of the four and
    `reverb + noise + music + babble` must be <= 1. With `exclusive=False` reverb is drawn
    independently and then at most one additive kind (`noise + music + babble <= 1`).
    Speed perturbation and SpecAugment are drawn independently of everything else.

    SNRs (dB) are drawn from the listed values (`snr_sampling="discrete"`, Kaldi) or
    uniformly between their minimum and maximum (`"uniform"`). Babble adds
    U{babble_speakers[0]..babble_speakers[1]} speech sources, each at its own SNR.

    Speed perturbation plays the crop `speed_factors[j]` times faster. With
    `speed_label_offset=None` the label is kept; set it to the number of speakers to
    follow Kaldi, where a perturbed copy is a new speaker: factor j gives label
    `label + (j + 1) * speed_label_offset`, and the classifier needs `num_classes(n)`
    outputs.
    """

    reverb: float = 0.0
    noise: float = 0.0
    music: float = 0.0
    babble: float = 0.0
    exclusive: bool = True
    speed: float = 0.0
    specaugment: float = 0.0
    noise_snrs: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0)
    music_snrs: tuple[float, ...] = (5.0, 8.0, 10.0, 15.0)
    babble_snrs: tuple[float, ...] = (13.0, 15.0, 17.0, 20.0)
    snr_sampling: str = "discrete"
    babble_speakers: tuple[int, int] = (3, 7)
    speed_factors: tuple[float, ...] = (0.9, 1.1)
    speed_label_offset: int | None = None
    num_time_masks: int = 1
    max_time_mask_frames: int = 20
    num_freq_masks: int = 1
    max_freq_mask_bins: int = 8

    def __post_init__(self):
        for name in ("reverb", "noise", "music", "babble", "speed", "specaugment"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"AugmentationConfig.{name}: probability must be in [0, 1], "
                                 f"got {value}")
        exclusive_total = self.noise + self.music + self.babble + (
            self.reverb if self.exclusive else 0.0)
        if exclusive_total > 1.0 + 1e-9:
            kinds = "reverb + noise + music + babble" if self.exclusive else \
                "noise + music + babble"
            raise ValueError(f"AugmentationConfig: {kinds} = {exclusive_total} exceeds 1; "
                             "these kinds are mutually exclusive")
        for name in ("noise_snrs", "music_snrs", "babble_snrs", "speed_factors"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
            if not getattr(self, name):
                raise ValueError(f"AugmentationConfig.{name} must not be empty")
        if self.snr_sampling not in SNR_SAMPLING:
            raise ValueError(f"AugmentationConfig.snr_sampling must be one of {SNR_SAMPLING}, "
                             f"got {self.snr_sampling!r}")
        low, high = (int(v) for v in self.babble_speakers)
        object.__setattr__(self, "babble_speakers", (low, high))
        if not 1 <= low <= high:
            raise ValueError("AugmentationConfig.babble_speakers must be (min, max) with "
                             f"1 <= min <= max, got {self.babble_speakers}")
        if any(f <= 0 for f in self.speed_factors):
            raise ValueError(f"AugmentationConfig.speed_factors must be > 0, "
                             f"got {self.speed_factors}")
        if self.speed_label_offset is not None and self.speed_label_offset < 1:
            raise ValueError("AugmentationConfig.speed_label_offset must be None or >= 1")
        for name in ("num_time_masks", "max_time_mask_frames", "num_freq_masks",
                     "max_freq_mask_bins"):
            if getattr(self, name) < 0:
                raise ValueError(f"AugmentationConfig.{name} must be >= 0")

    @classmethod
    def uniform(cls, probability: float, **overrides) -> "AugmentationConfig":
        """Kaldi x-vector style: with `probability` an example gets one of reverb, noise,
        music or babble, each equally likely."""
        share = probability / 4.0
        return cls(reverb=share, noise=share, music=share, babble=share, exclusive=True,
                   **overrides)

    @property
    def source_kinds(self) -> tuple[str, ...]:
        """Source streams this configuration needs ("rir", "noise", "music", "babble")."""
        wanted = (("rir", self.reverb), ("noise", self.noise), ("music", self.music),
                  ("babble", self.babble))
        return tuple(kind for kind, probability in wanted if probability > 0)

    @property
    def max_babble_speakers(self) -> int:
        return self.babble_speakers[1]

    def num_classes(self, num_speakers: int) -> int:
        """Classifier outputs needed for `num_speakers` under the speed label policy."""
        if self.speed_label_offset is None or self.speed == 0:
            return num_speakers
        if self.speed_label_offset < num_speakers:
            raise ValueError(f"speed_label_offset {self.speed_label_offset} < num_speakers "
                             f"{num_speakers}: perturbed labels would collide")
        return num_speakers + len(self.speed_factors) * self.speed_label_offset
