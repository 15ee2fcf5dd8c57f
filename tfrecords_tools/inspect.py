r"""Summarises a built data directory: speakers, utterances, hours, durations.

    python -m tfrecords_tools.inspect --data_dir=data/vox1 [--split=train] [--plot]

Prints a text duration histogram; --plot also writes `<split>.durations.png`
(or --plot_dir/<split>.durations.png).
"""
import os

from absl import app, flags

from tfspk.shards import inspect as shard_inspect
from tfspk.shards.cli import user_errors
from tfspk.shards.metadata import splits_in

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS):
    """CLI flags; defined when run as a program, so importing this module defines none."""
    fv = dict(flag_values=flag_values)
    flags.DEFINE_string("data_dir", None, "Directory written by tfrecords_tools.build.", **fv)
    flags.DEFINE_string("split", None, "Split to summarise (default: every split).", **fv)
    flags.DEFINE_integer("num_bins", 10, "Bins of the text histogram.", lower_bound=1, **fv)
    flags.DEFINE_boolean("plot", False, "Also write the histogram as a PNG.", **fv)
    flags.DEFINE_string("plot_dir", None, "Where PNGs go (default: --data_dir).", **fv)
    flags.mark_flag_as_required("data_dir", **fv)


@user_errors
def main(argv, flag_values=FLAGS):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    FLAGS = flag_values  # noqa: N806 - the flags this call reads
    if not os.path.isdir(FLAGS.data_dir):
        raise ValueError(f"--data_dir={FLAGS.data_dir}: not a directory")
    splits = [FLAGS.split] if FLAGS.split else splits_in(FLAGS.data_dir)
    if not splits:
        raise ValueError(f"--data_dir={FLAGS.data_dir}: no <split>.metadata.json found")
    for split in splits:
        summary = shard_inspect.summarize_split(FLAGS.data_dir, split)
        print(shard_inspect.format_summary(summary, FLAGS.num_bins))
        if FLAGS.plot:
            path = os.path.join(FLAGS.plot_dir or FLAGS.data_dir, f"{split}.durations.png")
            shard_inspect.plot_histogram(summary, path)
            print(f"wrote {path}")


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
