"""`AugmentationConfig`: which augmentations to apply, how often and how strongly."""
from __future__ import annotations

import dataclasses
import math

from tfspk.flagspec import Each, Range, Rule, field

SNR_SAMPLING = ("discrete", "uniform")
NOISE_PLACEMENTS = ("foreground", "background")
_PROBABILITY = Range(0, 1)
_NON_EMPTY = Rule(lambda values: len(values) > 0 and all(math.isfinite(v) for v in values),
                  "a non-empty comma-separated list of finite numbers")


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

    Every field is a `tfspk.train` flag (`--augment_<kind>` for the probabilities, the
    field name for the rest); the defaults are Kaldi's VoxCeleb v2 recipe values
    (egs/voxceleb/v2/run.sh: MUSAN noise 0-15 dB placed as foreground noises 1 s apart,
    music 5-15 dB, babble 3-7 speakers at 13-20 dB, speed 0.9/1.1), with every kind off
    until its probability is set.
    """

    reverb: float = field(0.0, "Probability of reverberating an example with a room impulse "
                          "response (needs --augmentation_data).", flag="augment_reverb",
                          rule=_PROBABILITY)
    noise: float = field(0.0, "Probability of adding MUSAN noise.", flag="augment_noise",
                         rule=_PROBABILITY)
    music: float = field(0.0, "Probability of adding MUSAN music.", flag="augment_music",
                         rule=_PROBABILITY)
    babble: float = field(0.0, "Probability of adding babble (several MUSAN speech "
                          "sources).", flag="augment_babble", rule=_PROBABILITY)
    exclusive: bool = field(True, "At most one of reverb/noise/music/babble per example "
                            "(Kaldi); else reverb is drawn independently of the additive "
                            "kinds.", flag="augment_exclusive")
    speed: float = field(0.0, "Probability of speed perturbation (one of --speed_factors).",
                         flag="augment_speed", rule=_PROBABILITY)
    specaugment: float = field(0.0, "Probability of SpecAugment time/frequency masks on "
                               "the MFCCs.", flag="augment_specaugment", rule=_PROBABILITY)
    noise_snrs: tuple[float, ...] = field((0.0, 5.0, 10.0, 15.0), "SNRs (dB) of added noise "
                                          "(Kaldi: 0,5,10,15).", rule=_NON_EMPTY)
    music_snrs: tuple[float, ...] = field((5.0, 8.0, 10.0, 15.0), "SNRs (dB) of added music "
                                          "(Kaldi: 5,8,10,15).", rule=_NON_EMPTY)
    babble_snrs: tuple[float, ...] = field((13.0, 15.0, 17.0, 20.0), "SNRs (dB) of each "
                                           "babble source (Kaldi: 13,15,17,20).",
                                           rule=_NON_EMPTY)
    noise_placement: str = field(
        "foreground", "'foreground' (Kaldi's MUSAN noise, augment_data_dir.py --fg-noise-dir):"
        " noises one after another, each followed by --fg_interval seconds without noise "
        "and at its own SNR from --noise_snrs, until the crop is covered; 'background': "
        "one noise over the whole crop (tiled when shorter), as music.",
        choices=NOISE_PLACEMENTS)
    fg_interval: float = field(1.0, "Seconds without noise after each foreground noise "
                               "(Kaldi's --fg-interval: 1).",
                               rule=Range(0, low_open=True))
    snr_sampling: str = field("discrete", "'discrete': an SNR from the list (Kaldi); "
                              "'uniform': uniform between its minimum and maximum.",
                              choices=SNR_SAMPLING)
    babble_speakers: tuple[int, int] = field((3, 7), "min,max speech sources per babble "
                                             "(Kaldi: 3,7).",
                                             rule=Rule(lambda v: 1 <= v[0] <= v[1]
                                                       and len(v) == 2,
                                                       "two integers min,max with "
                                                       "1 <= min <= max"))
    speed_factors: tuple[float, ...] = field((0.9, 1.1), "Speed factors of perturbed "
                                             "crops (Kaldi: 0.9,1.1).",
                                             rule=Each(Range(0, low_open=True), "numbers"))
    speed_label_offset: int | None = field(None, "Unset: a perturbed crop keeps its "
                                           "speaker; N (Kaldi: the number of speakers): "
                                           "factor j gives label + (j + 1) * N, a new "
                                           "speaker.", rule=Range(1, allow_none=True))
    num_time_masks: int = field(1, "SpecAugment time masks.", rule=Range(0))
    max_time_mask_frames: int = field(20, "Widest SpecAugment time mask (frames).",
                                      rule=Range(0))
    num_freq_masks: int = field(1, "SpecAugment frequency masks.", rule=Range(0))
    max_freq_mask_bins: int = field(8, "Widest SpecAugment frequency mask (coefficients).",
                                    rule=Range(0))

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
        if self.noise_placement not in NOISE_PLACEMENTS:
            raise ValueError("AugmentationConfig.noise_placement must be one of "
                             f"{NOISE_PLACEMENTS}, got {self.noise_placement!r}")
        if not self.fg_interval > 0:
            raise ValueError(f"AugmentationConfig.fg_interval must be > 0 seconds, got "
                             f"{self.fg_interval}")
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

    def max_fg_noises(self, crop_samples: int, sample_rate: int = 16000) -> int:
        """Foreground noises a crop can hold: noise k starts after k intervals and k
        noises of at least one sample, so k * (interval + 1) < crop_samples."""
        if self.noise_placement != "foreground":
            return 1
        return max(1, -(-int(crop_samples) // (self.fg_interval_samples(sample_rate) + 1)))

    def fg_interval_samples(self, sample_rate: int = 16000) -> int:
        return int(round(self.fg_interval * sample_rate))

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
