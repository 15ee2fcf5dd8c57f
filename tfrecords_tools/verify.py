r"""Re-reads every shard of a built data directory and checks it against metadata.

    python -m tfrecords_tools.verify --data_dir=data/vox1 [--split=train]

Parses every record with the tfspk schema, compares counts and sha256 checksums
with `<split>.metadata.json`, prints each corrupt or missing shard by name and
exits non-zero on any problem.
"""
import sys

from absl import app, flags

from tfspk.shards.cli import user_errors
from tfspk.shards.verify import verify_dir

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS):
    """CLI flags; defined when run as a program, so importing this module defines none."""
    flags.DEFINE_string("data_dir", None, "Directory written by tfrecords_tools.build.",
                        flag_values=flag_values)
    flags.DEFINE_string("split", None, "Split to check (default: every split in data_dir).",
                        flag_values=flag_values)
    flags.mark_flag_as_required("data_dir", flag_values=flag_values)


@user_errors
def main(argv, flag_values=FLAGS):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    reports = verify_dir(flag_values.data_dir, flag_values.split)
    failed = False
    for report in reports:
        status = "OK" if report.ok else f"{len(report.problems)} problem(s)"
        print(f"{report.split}: {report.num_shards} shards, {report.num_examples} examples "
              f"read: {status}")
        for problem in report.problems:
            print(f"  {problem}")
        failed |= not report.ok
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
