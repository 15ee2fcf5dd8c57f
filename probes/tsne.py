"""t-SNE of phone-segment embeddings coloured by broad class (paper section 4, Fig. 6).

`python -m probes.tsne --saved_model=DIR --timit_dir=DIR --output_dir=OUT`

Flags and `main` only; the probe itself, and its description, is `tfspk.probes.tsne`.
"""
from __future__ import annotations

from absl import app, flags

from probes import cli
from tfspk import flagfiles
from tfspk.probes.report import update_report
from tfspk.probes.tsne import *  # noqa: F401,F403 - the library names, as before
from tfspk.probes.tsne import segment_tsne, write_outputs

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS) -> None:
    cli.define_common_flags(flag_values)
    cli.define_once(flags.DEFINE_integer, "tsne_max_segments", 2000,
                    "Phone segments in the t-SNE plot.", flag_values)


@cli.probe_main
def main(argv, flag_values=FLAGS):
    cli.check_common(argv, flag_values)
    values = flag_values
    coordinates, classes = segment_tsne(cli.embedder_from_flags(values),
                                        cli.split_from_flags("TEST", values),
                                        max_segments=values.tsne_max_segments,
                                        seed=values.seed)
    print(update_report(values.output_dir,
                        write_outputs(coordinates, classes, values.output_dir)))


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
