"""Which phones carry the speaker? (paper section 4, Fig. 7).

`python -m probes.critical_phones --saved_model=DIR --timit_dir=DIR --output_dir=OUT`

Flags and `main` only; the probe itself, and its description, is `tfspk.probes.critical_phones`.
"""
from __future__ import annotations

from absl import app, flags

from probes import cli
from tfspk import flagfiles
from tfspk.probes.critical_phones import *  # noqa: F401,F403 - the library names, as before
from tfspk.probes.critical_phones import DEFAULT_EXCLUDE, run
from tfspk.probes.report import update_report

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS) -> None:
    cli.define_common_flags(flag_values)
    once = cli.define_once
    once(flags.DEFINE_string, "critical_layer", None,
         "Layer for critical phones; default the last.", flag_values)
    once(flags.DEFINE_integer, "critical_min_utterances", 10,
         "Speakers need this many utterances.", flag_values)
    once(flags.DEFINE_list, "critical_exclude", list(DEFAULT_EXCLUDE),
         "Phones never reported.", flag_values)
    once(flags.DEFINE_enum, "critical_split", "TEST", "Split of the held-out speakers.",
         flag_values, enum_values=["TRAIN", "TEST"])


@cli.probe_main
def main(argv, flag_values=FLAGS):
    cli.check_common(argv, flag_values)
    values = flag_values
    _, artifacts = run(cli.embedder_from_flags(values),
                       cli.split_from_flags(values.critical_split, values),
                       cli.split_from_flags("TRAIN", values), values.output_dir,
                       values.critical_layer, values.critical_min_utterances,
                       values.critical_exclude)
    print(update_report(values.output_dir, artifacts))


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
