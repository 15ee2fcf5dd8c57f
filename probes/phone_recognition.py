"""Phone recognition from each layer's frame embeddings (paper section 4, Fig. 2).

`python -m probes.phone_recognition --saved_model=DIR --timit_dir=DIR --output_dir=OUT`

Flags and `main` only; the probe itself, and its description, is `tfspk.probes.phone_recognition`.
"""
from __future__ import annotations

from absl import app, flags

from probes import cli
from tfspk import flagfiles
from tfspk.probes.phone_recognition import *  # noqa: F401,F403 - the library names, as before
from tfspk.probes.phone_recognition import (LOSSES, RecognizerConfig, phone_error_rates,
                                            write_outputs)
from tfspk.probes.report import update_report

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS) -> None:
    """Common flags plus the recognizer's (`--per_*`, defaults from RecognizerConfig)."""
    cli.define_common_flags(flag_values)
    integer, once = flags.DEFINE_integer, cli.define_once
    default = RecognizerConfig()
    once(flags.DEFINE_enum, "per_loss", default.loss, "Recognizer loss: framewise "
         "(per-frame cross-entropy on the .PHN alignment, runs merged) or ctc.", flag_values,
         enum_values=list(LOSSES))
    once(integer, "per_units", default.units,
         "LSTM units per direction of the phone recognizer.", flag_values)
    once(integer, "per_num_layers", default.num_layers, "LSTM layers of the phone recognizer.",
         flag_values)
    once(flags.DEFINE_bool, "per_bidirectional", default.bidirectional, "Bidirectional LSTMs.",
         flag_values)
    once(integer, "per_epochs", default.epochs, "Training epochs per layer.", flag_values)
    once(integer, "per_batch_size", default.batch_size, "Sequences per training batch: "
         "utterances (ctc) or --per_chunk_frames pieces (framewise).", flag_values)
    once(integer, "per_chunk_frames", default.chunk_frames, "framewise: train on pieces of "
         "this many frames (0: whole utterances); decoding always sees whole utterances.",
         flag_values)
    once(flags.DEFINE_float, "per_learning_rate", default.learning_rate, "Adam learning rate.",
         flag_values)
    once(flags.DEFINE_list, "per_layers", None, "Layers to train recognizers on; default: "
         "every layer (phone_recognition, run) or the last one (over_training).", flag_values)


def config_from_flags(flag_values=FLAGS) -> RecognizerConfig:
    values = flag_values
    return RecognizerConfig(loss=values.per_loss, units=values.per_units,
                            num_layers=values.per_num_layers,
                            bidirectional=values.per_bidirectional, epochs=values.per_epochs,
                            batch_size=values.per_batch_size,
                            chunk_frames=values.per_chunk_frames,
                            learning_rate=values.per_learning_rate, seed=values.seed)


@cli.probe_main
def main(argv, flag_values=FLAGS):
    cli.check_common(argv, flag_values)
    values = flag_values
    config = config_from_flags(values)
    embedder = cli.embedder_from_flags(values)
    results = phone_error_rates(embedder, cli.split_from_flags("TRAIN", values),
                                cli.split_from_flags("TEST", values), values.per_layers, config)
    print(update_report(values.output_dir, write_outputs(results, config, values.output_dir)))


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
