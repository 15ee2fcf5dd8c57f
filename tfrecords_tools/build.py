r"""Builds sharded TFRecords of one split of a speech corpus (local processes).

    python -m tfrecords_tools.build --input_format=voxceleb --input=VoxCeleb1 \
        --output_dir=data/vox1 --split=train --num_shards=64 --num_workers=8

Writes `<split>-NNNNN-of-MMMMM.tfrecord[.gz]` (balanced by duration), one sidecar
`.json` per shard, `<split>.plan.json`, `<split>.speakers.tsv` (label<TAB>speaker),
`<split>.rejects.tsv` (path<TAB>reason<TAB>utt_id) and `<split>.metadata.json`.
Rerunning the same command after a crash finishes the missing shards only. Exits
non-zero when more than --max_reject_fraction of the inputs were rejected.

Exit status: 0 done; 1 more rejects than --max_reject_fraction (outputs written);
2 refused with `error: ...` naming the file, flag or directory (bad input, every input
rejected, more shards than utterances, another build holding --output_dir).
"""
from absl import app, flags

from tfspk.shards import cli
from tfspk.shards.build import build_split

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS):
    """CLI flags; defined when run as a program, so importing this module defines none."""
    cli.define_build_flags(flag_values)


@cli.user_errors
def main(argv, flag_values=FLAGS):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = cli.config_from_flags("tfrecords_tools.build", flag_values=flag_values)
    result = build_split(cli.read_corpus_from_flags(flag_values), config)
    cli.report_and_exit_status(result)


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
