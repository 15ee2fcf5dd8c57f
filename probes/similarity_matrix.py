"""Frame-by-frame cosine similarity between two utterances (paper section 4, Fig. 8).

`python -m probes.similarity_matrix --saved_model=DIR --timit_dir=DIR --output_dir=OUT`

Flags and `main` only; the probe itself, and its description, is `tfspk.probes.similarity_matrix`.
"""
from __future__ import annotations

from absl import app, flags

from probes import cli
from tfspk import flagfiles
from tfspk.probes.report import update_report
from tfspk.probes.similarity_matrix import *  # noqa: F401,F403 - the library names, as before
from tfspk.probes.similarity_matrix import run

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS) -> None:
    cli.define_common_flags(flag_values)
    once = cli.define_once
    once(flags.DEFINE_list, "same_speaker_pair", None, "Two utterance ids of one speaker "
         "(e.g. FCJF0_SA1,FCJF0_SA2); default: chosen from the split.", flag_values)
    once(flags.DEFINE_list, "different_speaker_pair", None,
         "Two utterance ids of two speakers.", flag_values)
    once(flags.DEFINE_enum, "similarity_split", "TEST", "Split to take them from.",
         flag_values, enum_values=["TRAIN", "TEST"])


@cli.probe_main
def main(argv, flag_values=FLAGS):
    cli.check_common(argv, flag_values)
    values = flag_values
    _, artifacts = run(cli.embedder_from_flags(values),
                       cli.split_from_flags(values.similarity_split, values),
                       values.output_dir, same=values.same_speaker_pair,
                       different=values.different_speaker_pair)
    print(update_report(values.output_dir, artifacts))


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
