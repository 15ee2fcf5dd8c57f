r"""Builds sharded TFRecords of one split with an Apache Beam pipeline.

    python -m tfrecords_tools.beam_build --input_format=kaldi --input=data/train \
        --output_dir=/shared/tfr --split=train --num_shards=256 \
        --runner=FlinkRunner --flink_master=host:8081

Same flags, files, schema and shard contents as `tfrecords_tools.build`; any flag
this tool does not define is passed to Beam as a pipeline option. --num_workers, when
given, is passed on as Beam's --num_workers too. Needs `pip install 'tfspk[beam]'`.
All workers must see --input's audio and --output_dir at the same paths.
"""
from absl import app, flags

from tfspk import flagfiles
from tfspk.shards import cli
from tfspk.shards.beam import RUNNERS, build_split_beam

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS):
    """CLI flags; defined when run as a program, so importing this module defines none."""
    cli.define_build_flags(flag_values)
    flags.DEFINE_enum("runner", "DirectRunner", list(RUNNERS), "Beam runner.",
                      flag_values=flag_values)


def parse_flags(argv, flag_values=FLAGS):
    """absl parses its flags (a bad one, or a binary --flagfile, is a one-line flag error);
    everything else is left for Beam's PipelineOptions."""
    return flagfiles.parse_known_flags_with_usage(argv, flag_values)


@cli.user_errors
def main(argv, flag_values=FLAGS):
    """`argv[1:]` are the flags absl did not know: Beam pipeline options."""
    pipeline_args = [f"--runner={flag_values.runner}"] + list(argv[1:])
    if flag_values["num_workers"].present:
        pipeline_args.append(f"--num_workers={flag_values.num_workers}")
    config = cli.config_from_flags("tfrecords_tools.beam_build", extra_flags=("runner",),
                                   flag_values=flag_values)
    utterances = cli.read_corpus_from_flags(flag_values)
    result = build_split_beam(utterances, config, pipeline_args)
    cli.report_and_exit_status(result)


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=parse_flags)
