"""Input pipeline throughput against the training step rate of the full-size model.

Writes `tfspk.schema` shards on the fly into a temporary folder: training speech from the
LibriSpeech files in `--librispeech_dir` (one speaker each), babble speech from other
LibriSpeech files, and noise, music and RIRs from `tfspk.synth` (synthetic noise and an
exponentially decaying RIR when that package is unavailable). Then measures, in one run:

* the tf.data pipeline of `tfspk.data.train_dataset`: 2-s crops (200 frames), full
  augmentation (every example reverberated plus one of noise / music / babble, so all
  four kinds are computed; noise placed as Kaldi's foreground noises 1 s apart, the
  `AugmentationConfig` default), paper MFCC + CMN, batch 32: examples per second;
* the training step of the full-size paper model (`build_paper_cnn` +
  `build_classifier` with 1,211 speakers, SGD, tf.function) on the same batch shape;
* their ratio (how many training steps the pipeline can feed; target >= 1.5 on 2 cores);
* the same pipeline with `features_on_device=True`: the host-side work only (crops, plans
  and source crops; augmentation and MFCC then run in the training step);
* `tfspk.features.kaldi_mfcc` against kaldi-native-fbank in seconds of audio per second
  (`benchmarks/feature_speed.py`, whose --batch_size/--seconds/--repeats flags apply).

`--source_layout=musan_tree` writes the sources as MUSAN / RIRS_NOISES trees of WAV files
`--source_minutes` long (MUSAN's music and speech files run for minutes), read the way a
real recipe reads them, instead of TFRecord shards of short recordings.

    python benchmarks/input_pipeline.py --pipeline_batches=20 --train_steps=5
    python benchmarks/input_pipeline.py --source_layout=musan_tree --source_minutes=3
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import soundfile  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import feature_speed  # noqa: E402  (sibling benchmark: the MFCC speed comparison)

from tfspk import audio, augment, data, models, schema  # noqa: E402

SAMPLE_RATE = 16000
DEFAULT_SPEECH_DIR = (pathlib.Path(__file__).resolve().parents[2]
                      / "shared" / "data" / "librispeech-251")

_SPEECH_DIR = flags.DEFINE_string("librispeech_dir", str(DEFAULT_SPEECH_DIR),
                                  "Folder of 16 kHz LibriSpeech FLAC files.")
_TRAIN_FILES = flags.DEFINE_integer("train_files", 64, "LibriSpeech files used as training "
                                    "speech (one speaker each).", lower_bound=2)
_BABBLE_FILES = flags.DEFINE_integer("babble_files", 24, "Further files used as babble.",
                                     lower_bound=1)
_PIPELINE_BATCH = flags.DEFINE_integer("pipeline_batch_size", 32, "Examples per batch.",
                                       lower_bound=1)
_NUM_FRAMES = flags.DEFINE_integer("num_frames", 200, "Frames per crop (200 = 2 s).",
                                   lower_bound=1)
_PIPELINE_BATCHES = flags.DEFINE_integer("pipeline_batches", 20, "Timed pipeline batches.",
                                         lower_bound=1)
_TRAIN_STEPS = flags.DEFINE_integer("train_steps", 5, "Timed training steps.", lower_bound=1)
_NUM_SPEAKERS = flags.DEFINE_integer("num_speakers", 1211, "Softmax classes.", lower_bound=2)
_SOURCE_LAYOUT = flags.DEFINE_enum("source_layout", "tfrecords", ["tfrecords", "musan_tree"],
                                   "How the augmentation sources are stored.")
_SOURCE_MINUTES = flags.DEFINE_float("source_minutes", 3.0, "Length of each source file with "
                                     "--source_layout=musan_tree.", lower_bound=0.05)
_SKIP_FEATURES = flags.DEFINE_boolean("skip_feature_speed", False,
                                      "Skip the kaldi_mfcc vs kaldi-native-fbank part.")


def _write(path, examples):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for utt_id, speaker, label, waveform in examples:
            pcm = audio.float_to_int16(waveform)
            writer.write(schema.serialize_example(utt_id, speaker, label, pcm, SAMPLE_RATE))


def _synthetic_sources(rng, count):
    """(noise, music, rirs) lists from tfspk.synth, or plain synthetic stand-ins."""
    try:
        from tfspk.synth import music, noise, rir
    except ImportError:
        t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
        rirs = [np.concatenate([[1.0], rng.standard_normal(t.size - 1) * np.exp(-t[1:] / 0.08)])
                for _ in range(count)]
        return ([0.05 * rng.standard_normal(5 * SAMPLE_RATE) for _ in range(count)],
                [0.05 * np.sin(2 * np.pi * 220 * np.arange(10 * SAMPLE_RATE) / SAMPLE_RATE)
                 for _ in range(count)], rirs), "synthetic stand-ins"
    rirs = []
    for index in range(count):
        room = rir.random_room(rng, list(rir.ROOM_KINDS)[index % len(rir.ROOM_KINDS)])
        response = rir.simulate_rir(room, rir.random_position(rng, room),
                                    rir.random_position(rng, room), rng)
        rirs.append(0.5 * response / np.max(np.abs(response)))
    return ([noise.random_noise(rng, 8.0)[1] for _ in range(count)],
            [music.random_music(rng, 15.0) for _ in range(count)], rirs), "tfspk.synth"


def write_benchmark_shards(root: pathlib.Path, speech_dir: str, train_files: int,
                           babble_files: int, source_minutes: float | None = None) -> dict:
    """Training shards and an augmentation tree under `root`; returns their locations."""
    files = sorted(pathlib.Path(speech_dir).glob("*.flac"))
    if len(files) < train_files + babble_files:
        raise app.UsageError(f"{speech_dir}: {len(files)} FLAC files, need "
                             f"{train_files + babble_files} (--train_files + --babble_files)")
    speech = []
    for path in files[:train_files + babble_files]:
        samples, rate = soundfile.read(path, dtype="float32")
        if rate != SAMPLE_RATE:
            raise ValueError(f"{path}: sample rate {rate}, expected {SAMPLE_RATE}")
        speech.append((path.stem, samples))
    train = [(stem, stem.split("-")[0], label, samples)
             for label, (stem, samples) in enumerate(speech[:train_files])]
    for shard in range(4):
        _write(root / f"train-{shard:05d}-of-00004.tfrecord", train[shard::4])
    rng = np.random.default_rng(0)
    (noises, music, rirs), origin = _synthetic_sources(rng, 8)
    kinds = {"babble": [samples for _, samples in speech[train_files:]], "noise": noises,
             "music": music, "rirs": rirs}
    for kind, waveforms in kinds.items():
        os.makedirs(root / "augmentation" / kind, exist_ok=True)
        _write(root / "augmentation" / kind / "part-0.tfrecord",
               [(f"{kind}{i}", kind, -1, np.asarray(w, np.float32))
                for i, w in enumerate(waveforms)])
    seconds = sum(s.size for _, _, _, s in train) / SAMPLE_RATE
    augmentation = root / "augmentation"
    if source_minutes is not None:
        augmentation = root / "trees"
        write_musan_tree(augmentation, kinds["babble"], source_minutes)
        origin += f", MUSAN/RIRS_NOISES WAV trees of {source_minutes:g}-min files"
    return {"train": str(root / "train-*.tfrecord"),
            "augmentation": str(augmentation), "train_seconds": seconds,
            "source_origin": origin}


def write_musan_tree(root: pathlib.Path, babble: list, minutes: float) -> None:
    """MUSAN and RIRS_NOISES trees under `root` whose noise, music and speech files are
    `minutes` long each (tiled from shorter material, with a seeded random start)."""
    rng = np.random.default_rng(1)
    (noises, music, rirs), _ = _synthetic_sources(rng, 4)
    length = int(minutes * 60 * SAMPLE_RATE)
    for category, waveforms in (("noise", noises), ("music", music), ("speech", babble)):
        folder = root / "musan" / category / "bench"
        os.makedirs(folder, exist_ok=True)
        for index, waveform in enumerate(waveforms):
            waveform = np.roll(np.asarray(waveform, np.float32), int(rng.integers(1000)))
            tiled = np.resize(waveform, length)
            soundfile.write(folder / f"{category}-{index:04d}.wav", tiled, SAMPLE_RATE,
                            subtype="PCM_16")
    for index, response in enumerate(rirs):
        room = root / "RIRS_NOISES" / "simulated_rirs" / ("smallroom", "mediumroom")[index % 2]
        folder = room / f"Room{index:03d}"
        os.makedirs(folder, exist_ok=True)
        soundfile.write(folder / f"Room{index:03d}-00001.wav", response, SAMPLE_RATE)


def measure_pipeline(train_pattern: str, augmentation_root: str, batch_size: int,
                     num_frames: int, batches: int, features_on_device: bool = False,
                     cpu_ms: dict | None = None) -> float:
    """Examples per second of the fully augmented training pipeline (after warm-up).

    `cpu_ms`, when given, receives "per_example": the process CPU time (all threads)
    per example over the same batches, which other load on a shared machine inflates
    far less than the wall-clock rate; 1000 * cores / per_example is the rate the
    cores would sustain on their own.
    """
    config = augment.AugmentationConfig(reverb=1.0, noise=1 / 3, music=1 / 3, babble=1 / 3,
                                        exclusive=False)
    sources = augment.AugmentationSources.from_path(augmentation_root)
    dataset = data.train_dataset(train_pattern, batch_size=batch_size, num_frames=num_frames,
                                 augmentation=config, augmentation_sources=sources, seed=0,
                                 features_on_device=features_on_device)
    iterator = iter(dataset)
    for _ in range(3):  # tracing, buffers, autotuning
        next(iterator)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(batches):
        inputs, _ = next(iterator)
    inputs["waveform" if features_on_device else "features"].numpy()
    if cpu_ms is not None:
        cpu_ms["per_example"] = (time.process_time() - cpu_start) * 1e3 / (batches * batch_size)
    return batches * batch_size / (time.perf_counter() - start)


def measure_training(batch_size: int, num_frames: int, num_speakers: int, steps: int) -> dict:
    """Examples per second of one SGD step of the full-size paper model."""
    import keras

    classifier = models.build_classifier(models.build_paper_cnn(), num_speakers)
    optimizer = keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    inputs = {"features": tf.constant(rng.standard_normal([batch_size, num_frames, 40]),
                                      tf.float32),
              "lengths": tf.fill([batch_size], num_frames)}
    labels = tf.constant(rng.integers(0, num_speakers, batch_size), tf.int32)

    @tf.function
    def train_step(inputs, labels):
        with tf.GradientTape() as tape:
            logits = classifier(inputs, labels=labels, training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                labels, logits, from_logits=True))
        gradients = tape.gradient(loss, classifier.trainable_variables)
        optimizer.apply_gradients(zip(gradients, classifier.trainable_variables))
        return loss

    for _ in range(2):
        train_step(inputs, labels).numpy()
    start = time.perf_counter()
    for _ in range(steps):
        train_step(inputs, labels).numpy()
    return {"examples_per_s": steps * batch_size / (time.perf_counter() - start),
            "parameters": int(classifier.count_params())}


def run_benchmark(speech_dir: str, train_files: int, babble_files: int, batch_size: int,
                  num_frames: int, pipeline_batches: int, train_steps: int,
                  num_speakers: int, feature_batch=None, feature_repeats: int = 3,
                  source_minutes: float | None = None) -> dict:
    """All measurements of this benchmark as a dict (see the module docstring)."""
    result = {"batch_size": batch_size, "num_frames": num_frames,
              "crop_seconds": data.samples_for_frames(num_frames) / SAMPLE_RATE,
              "cpu_count": os.cpu_count(), "load_average": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="tfspk_pipeline_bench_") as folder:
        shards = write_benchmark_shards(pathlib.Path(folder), speech_dir, train_files,
                                        babble_files, source_minutes)
        result["source_origin"] = shards["source_origin"]
        host_cpu, device_cpu = {}, {}
        result["pipeline_examples_per_s"] = measure_pipeline(
            shards["train"], shards["augmentation"], batch_size, num_frames, pipeline_batches,
            cpu_ms=host_cpu)
        result["host_side_examples_per_s_features_on_device"] = measure_pipeline(
            shards["train"], shards["augmentation"], batch_size, num_frames, pipeline_batches,
            features_on_device=True, cpu_ms=device_cpu)
        cores = os.cpu_count() or 1
        result["pipeline_cpu_ms_per_example"] = host_cpu["per_example"]
        result["host_side_cpu_ms_per_example_features_on_device"] = device_cpu["per_example"]
        result["pipeline_examples_per_s_at_full_cores"] = 1e3 * cores / host_cpu["per_example"]
        result["host_side_examples_per_s_at_full_cores"] = (1e3 * cores
                                                            / device_cpu["per_example"])
    training = measure_training(batch_size, num_frames, num_speakers, train_steps)
    result["train_examples_per_s"] = training["examples_per_s"]
    result["model_parameters"] = training["parameters"]
    result["pipeline_to_training_ratio"] = (result["pipeline_examples_per_s"]
                                            / result["train_examples_per_s"])
    if feature_batch is not None:
        speed = feature_speed.measure_feature_speed(feature_batch, feature_repeats)
        result["mfcc_audio_s_per_s"] = {"tfspk_kaldi_mfcc": speed["tfspk"],
                                        "kaldi_native_fbank": speed["kaldi_native_fbank"]}
    return result


def main(argv):
    del argv
    feature_batch = None
    if not _SKIP_FEATURES.value:
        feature_batch = feature_speed.load_batch(_SPEECH_DIR.value, flags.FLAGS.batch_size,
                                                 flags.FLAGS.seconds)
    result = run_benchmark(_SPEECH_DIR.value, _TRAIN_FILES.value, _BABBLE_FILES.value,
                           _PIPELINE_BATCH.value, _NUM_FRAMES.value, _PIPELINE_BATCHES.value,
                           _TRAIN_STEPS.value, _NUM_SPEAKERS.value, feature_batch,
                           flags.FLAGS.repeats,
                           _SOURCE_MINUTES.value if _SOURCE_LAYOUT.value == "musan_tree" else None)
    print(json.dumps(result, indent=2))
    print(f"pipeline {result['pipeline_examples_per_s']:.1f} ex/s (host MFCC), "
          f"{result['host_side_examples_per_s_features_on_device']:.1f} ex/s host-side with "
          f"features on device; training {result['train_examples_per_s']:.1f} ex/s, ratio "
          f"{result['pipeline_to_training_ratio']:.2f} (target >= 1.5)")
    print(f"CPU per example: {result['pipeline_cpu_ms_per_example']:.2f} ms (host MFCC), "
          f"{result['host_side_cpu_ms_per_example_features_on_device']:.2f} ms host-side; "
          f"with all {result['cpu_count']} cores to itself: "
          f"{result['pipeline_examples_per_s_at_full_cores']:.0f} and "
          f"{result['host_side_examples_per_s_at_full_cores']:.0f} ex/s (targets 400 and 1500)")


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
