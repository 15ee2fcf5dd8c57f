r"""Builds sharded TFRecords of one split of a speech corpus (local processes).

    python -m tfrecords_tools.build --input_format=voxceleb --input=VoxCeleb1 \
        --output_dir=data/vox1 --split=train --num_shards=64 --num_workers=8

Writes `<split>-NNNNN-of-MMMMM.tfrecord[.gz]` (balanced by duration), one sidecar
`.json` per shard, `<split>.plan.json`, `<split>.speakers.tsv` (label<TAB>speaker),
`<split>.rejects.tsv` (path<TAB>reason<TAB>utt_id) and `<split>.metadata.json`.
Rerunning the same command after a crash finishes the missing shards only. Exits
non-zero when more than --max_reject_fraction of the inputs were rejected.
"""
from absl import app, flags

from tfspk.shards import cli
from tfspk.shards.build import build_split

cli.define_build_flags()
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = cli.config_from_flags("tfrecords_tools.build")
    result = build_split(cli.read_corpus_from_flags(), config)
    cli.report_and_exit_status(result)


if __name__ == "__main__":
    app.run(main)
