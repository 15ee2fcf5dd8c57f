"""absl flags shared by `tfrecords_tools.build` and `tfrecords_tools.beam_build`, and
`user_errors`, the error reporting every tfspk CLI's `main` uses."""
from __future__ import annotations

import functools
import sys

from absl import flags

from tfspk.shards.build import INPUT_FORMATS, BuildConfig, BuildResult, read_corpus
from tfspk.shards.encode import EncodeOptions

BUILD_FLAG_NAMES = (
    "input_format", "input", "output_dir", "split", "num_shards", "num_workers",
    "max_reject_fraction", "sample_rate", "no_resample", "compression", "downmix",
    "min_duration", "speakers_tsv", "unseen_speakers", "overwrite", "voxceleb_subset",
    "voxceleb_meta")


#: Exceptions that mean bad input, flags or a busy directory, not a bug in tfspk:
#: `user_errors` prints them as one `error: ...` line instead of a traceback.
def _user_error_types():
    from tfspk.locking import LockHeldError
    return (ValueError, OSError, LockHeldError)


def user_errors(main):
    """Wraps a CLI `main(argv, ...)`: a ValueError (every tfspk input error), OSError or
    LockHeldError is printed to stderr as `error: <message>` (which names the file or
    flag) and the program exits with status 2, without a traceback."""
    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except _user_error_types() as error:
            message = str(error) or type(error).__name__
            print(f"error: {message}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
    return wrapped


def define_build_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines the build flags on `flag_values` (absl's global FLAGS by default)."""
    fv = dict(flag_values=flag_values)
    flags.DEFINE_enum("input_format", None, list(INPUT_FORMATS), "Corpus layout of --input.", **fv)
    flags.DEFINE_string("input", None, "Corpus root, Kaldi data dir or manifest TSV.", **fv)
    flags.DEFINE_string("output_dir", None, "Directory for shards and metadata; several "
                        "splits may share it (every file is prefixed with the split).", **fv)
    flags.DEFINE_string("split", "train", "Split name, prefix of every output file.", **fv)
    flags.DEFINE_integer("num_shards", 16, "Number of shards.", lower_bound=1, **fv)
    flags.DEFINE_integer("num_workers", 1, "Processes writing shards (local build).",
                         lower_bound=1, **fv)
    flags.DEFINE_float("max_reject_fraction", 0.05, "Exit non-zero when more than this "
                       "fraction of the inputs is rejected (all outputs are still written).",
                       lower_bound=0.0, upper_bound=1.0, **fv)
    flags.DEFINE_integer("sample_rate", 16000, "Sample rate of the stored PCM.",
                         lower_bound=1, **fv)
    flags.DEFINE_boolean("no_resample", False, "Reject files at another rate instead of "
                         "resampling them with soxr.", **fv)
    flags.DEFINE_enum("compression", "none", ["none", "gzip"], "Shard compression.", **fv)
    flags.DEFINE_boolean("downmix", False, "Average multi-channel files instead of "
                         "rejecting them.", **fv)
    flags.DEFINE_float("min_duration", 0.5, "Reject utterances shorter than this (s).",
                       lower_bound=0.0, **fv)
    flags.DEFINE_string("speakers_tsv", None, "Existing label<TAB>speaker map (e.g. the "
                        "train split's) to keep labels stable across splits.", **fv)
    flags.DEFINE_enum("unseen_speakers", "append", ["append", "reject"], "With "
                      "--speakers_tsv: give speakers it lacks new labels after its largest "
                      "one (append), or reject their utterances (reject).", **fv)
    flags.DEFINE_boolean("overwrite", False, "Delete this split's existing outputs first; "
                         "without it a rerun resumes an identical unfinished build.", **fv)
    flags.DEFINE_enum("voxceleb_subset", None, ["dev", "test"], "voxceleb: keep only the "
                      "speakers whose Set in vox1_meta.csv is this (one part of a tree "
                      "holding both).", **fv)
    flags.DEFINE_string("voxceleb_meta", None, "vox1_meta.csv for --voxceleb_subset; "
                        "default: INPUT/vox1_meta.csv, else INPUT/../vox1_meta.csv.", **fv)
    for name in ("input_format", "input", "output_dir"):
        flags.mark_flag_as_required(name, **fv)
    flags.register_multi_flags_validator(
        ["input_format", "voxceleb_subset", "voxceleb_meta"],
        lambda values: values["input_format"] == "voxceleb" or not (
            values["voxceleb_subset"] or values["voxceleb_meta"]),
        message="--voxceleb_subset and --voxceleb_meta need --input_format=voxceleb", **fv)


def read_corpus_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> list:
    """The utterances --input_format/--input (and --voxceleb_subset) select."""
    values = flag_values
    return read_corpus(values.input_format, values.input, values.sample_rate,
                       voxceleb_subset=values.voxceleb_subset,
                       voxceleb_meta=values.voxceleb_meta)


def config_from_flags(module: str, extra_flags: tuple[str, ...] = (),
                      flag_values: flags.FlagValues = flags.FLAGS,
                      argv: list[str] | None = None) -> BuildConfig:
    """The BuildConfig the flags describe; records the command line (as
    `python -m <module> ...`, from `argv` or sys.argv) and every build flag's value."""
    values = flag_values
    argv = sys.argv if argv is None else argv
    recorded = {name: values[name].value for name in BUILD_FLAG_NAMES + tuple(extra_flags)}
    return BuildConfig(
        output_dir=values.output_dir, split=values.split, num_shards=values.num_shards,
        num_workers=values.num_workers, compression=values.compression,
        encode=EncodeOptions(sample_rate=values.sample_rate,
                             resample=not values.no_resample, downmix=values.downmix,
                             min_seconds=values.min_duration),
        max_reject_fraction=values.max_reject_fraction, speakers_tsv=values.speakers_tsv,
        unseen_speakers=values.unseen_speakers, overwrite=values.overwrite,
        command=["python", "-m", module] + list(argv[1:]), flags=recorded)


def report_and_exit_status(result: BuildResult) -> None:
    """Prints a one-line summary; exits 1 when rejects exceed the allowed fraction."""
    m = result.metadata
    print(f"{m['split']}: {m['num_examples']} examples, {m['num_rejected']} rejected "
          f"({100 * m['reject_fraction']:.2f}%), {m['total_hours']:.3f} h in "
          f"{len(m['shards'])} shards ({result.shards_written} written, "
          f"{result.shards_reused} already done)")
    if result.too_many_rejects:
        raise SystemExit(
            f"error: {m['num_rejected']} of {m['num_inputs']} inputs rejected "
            f"({100 * m['reject_fraction']:.2f}% > --max_reject_fraction "
            f"{100 * m['max_reject_fraction']:.2f}%); see {m['files']['rejects']}")
