"""`python -m tfspk.export --model_dir=RUN --export_dir=BASE/NAME` (see `tfspk.export`)."""
from absl import app

from tfspk.export.cli import define_flags, main

if __name__ == "__main__":
    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    define_flags()
    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
