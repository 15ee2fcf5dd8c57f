"""Broad phone-class classification from segment embeddings (paper section 4, Fig. 5).

`python -m probes.broad_class --saved_model=DIR --timit_dir=DIR --output_dir=OUT`

Flags and `main` only; the probe itself, and its description, is `tfspk.probes.broad_class`.
"""
from __future__ import annotations

from absl import app, flags

from probes import cli
from tfspk import flagfiles
from tfspk.probes.broad_class import *  # noqa: F401,F403 - the library names, as before
from tfspk.probes.broad_class import run
from tfspk.probes.report import update_report

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS) -> None:
    cli.define_common_flags(flag_values)


@cli.probe_main
def main(argv, flag_values=FLAGS):
    cli.check_common(argv, flag_values)
    _, artifacts = run(cli.embedder_from_flags(flag_values),
                       cli.split_from_flags("TRAIN", flag_values),
                       cli.split_from_flags("TEST", flag_values), flag_values.output_dir)
    print(update_report(flag_values.output_dir, artifacts))


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
