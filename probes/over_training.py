"""Phonetic information over the course of training (paper section 4, Figs. 3 and 4).

`python -m probes.over_training --model_dir=RUN --timit_dir=DIR --output_dir=OUT`

Flags and `main` only; the probe itself, and its description, is `tfspk.probes.over_training`.
"""
from __future__ import annotations

from absl import app, flags

from probes import cli, phone_recognition
from tfspk import flagfiles
from tfspk.probes.over_training import PROBE, probe_checkpoints, write_outputs  # noqa: F401
from tfspk.probes.report import update_report

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS) -> None:
    """Common flags and the recognizer's (`--per_layers` defaults to the last layer here)."""
    phone_recognition.define_flags(flag_values)


@cli.probe_main
def main(argv, flag_values=FLAGS):
    cli.check_common(argv, flag_values)
    cli.check_required(flag_values, "model_dir")
    values = flag_values
    rows = probe_checkpoints(values.model_dir, cli.split_from_flags("TRAIN", values),
                             cli.split_from_flags("TEST", values), values.layers,
                             values.per_layers, phone_recognition.config_from_flags(values))
    print(update_report(values.output_dir, write_outputs(rows, values.output_dir)))


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
