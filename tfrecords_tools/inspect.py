r"""Summarises a built data directory: speakers, utterances, hours, durations.

    python -m tfrecords_tools.inspect --data_dir=data/vox1 [--split=train] [--plot]

Prints a text duration histogram; --plot also writes `<split>.durations.png`
(or --plot_dir/<split>.durations.png).
"""
import os

from absl import app, flags

from tfspk.shards import inspect as shard_inspect
from tfspk.shards.metadata import splits_in

FLAGS = flags.FLAGS


def define_flags():
    """CLI flags; defined when run as a program, so importing this module defines none."""
    flags.DEFINE_string("data_dir", None, "Directory written by tfrecords_tools.build.")
    flags.DEFINE_string("split", None, "Split to summarise (default: every split).")
    flags.DEFINE_integer("num_bins", 10, "Bins of the text histogram.", lower_bound=1)
    flags.DEFINE_boolean("plot", False, "Also write the histogram as a PNG.")
    flags.DEFINE_string("plot_dir", None, "Where PNGs go (default: --data_dir).")
    flags.mark_flag_as_required("data_dir")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    splits = [FLAGS.split] if FLAGS.split else splits_in(FLAGS.data_dir)
    if not splits:
        raise app.UsageError(f"{FLAGS.data_dir}: no <split>.metadata.json found")
    for split in splits:
        summary = shard_inspect.summarize_split(FLAGS.data_dir, split)
        print(shard_inspect.format_summary(summary, FLAGS.num_bins))
        if FLAGS.plot:
            path = os.path.join(FLAGS.plot_dir or FLAGS.data_dir, f"{split}.durations.png")
            shard_inspect.plot_histogram(summary, path)
            print(f"wrote {path}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
