"""Trains a speaker-embedding network: `python -m tfspk.train --flagfile=configs/X.flags`.

Defaults follow Shon, Tang & Glass (SLT 2018): 40-dim MFCC, the 1-D CNN with
statistics pooling and a linear fc1, softmax over training speakers, SGD at 0.001
decayed x0.98 every 50k updates, 2-s (200-frame) crops. Rerunning the same command
resumes from the latest checkpoint in --model_dir.

Every flag is a field of `tfspk.training.config.TrainConfig` (generated from it: names,
defaults, help and ranges live there); `--helpfull` lists them. The run records its
resolved config as `MODEL_DIR/config.json` and `MODEL_DIR/flags.txt`
(`--flagfile=MODEL_DIR/flags.txt` repeats it). Fine-tuning: `--init_from=RUN_OR_EXPORT`
(and optionally `--freeze_until=LAYER`) on a new corpus's shards.
"""
from __future__ import annotations

import sys

from absl import app, flags, logging

from tfspk.shards.cli import user_errors
from tfspk.training import config as config_lib

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS):
    """CLI flags; defined when run as a program, so importing this module defines none.

    One flag per TrainConfig field, range-checked at parse time: a value outside its
    range stops the program with a message naming the flag."""
    # absl files a program's own flags under sys.argv[0]; --helpshort lists those.
    module = sys.argv[0] if __name__ == "__main__" else __name__
    config_lib.define_flags(flag_values, module_name=module)


def config_from_flags(flag_values=FLAGS) -> config_lib.TrainConfig:
    """The resolved TrainConfig the parsed flags describe (callable from Python)."""
    return config_lib.resolve(config_lib.from_flags(flag_values))


@user_errors
def main(argv, flag_values=FLAGS):
    """Validates everything (flags, data, model_dir) before writing anything; the
    trainer then holds model_dir's lock for the run, so the flags.txt of a refused run
    is never overwritten."""
    import tensorflow as tf

    from tfspk.training import trainer

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("WARNING")
    config = config_from_flags(flag_values)
    trainer.train(config, trainer.preflight(config))


if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
