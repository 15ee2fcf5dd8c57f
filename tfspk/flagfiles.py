"""`--flagfile` checks for the CLIs: a file that is not text is a flag error naming it.

absl reads a flag file with `readlines()` in text mode, so a binary file (an audio
file or a checkpoint passed by mistake) ends the program with a `UnicodeDecodeError`
traceback from inside absl. The CLIs pass `parse_flags_with_usage` to `app.run`:

    app.run(main, flags_parser=flagfiles.parse_flags_with_usage)

which checks every `--flagfile` (and the flag files those name) first and reports a
bad one the way absl reports any flag error: one line, exit status 1.
`parse_known_flags_with_usage` does the same for a CLI that passes unknown flags on.
"""
from __future__ import annotations

import os
import sys
from typing import Sequence

from absl import app, flags

_NAMES = ("--flagfile", "-flagfile")


def _named_flagfiles(args: Sequence[str]) -> list[str]:
    paths = []
    for index, arg in enumerate(args):
        for name in _NAMES:
            if arg.startswith(name + "="):
                paths.append(arg[len(name) + 1:])
            elif arg == name and index + 1 < len(args):
                paths.append(args[index + 1])
    return paths


def check_flagfiles(argv: Sequence[str], _seen: frozenset = frozenset()) -> None:
    """Raises flags.Error naming the first `--flagfile` that is not UTF-8 text.

    Missing files are left to absl, which already names them.
    """
    for path in _named_flagfiles(list(argv)[1:] if not _seen else argv):
        real = os.path.realpath(os.path.expanduser(path))
        if real in _seen or not os.path.isfile(real):
            continue
        with open(real, "rb") as stream:
            data = stream.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise flags.Error(f"--flagfile={path}: not a text file of flags (byte "
                              f"0x{data[error.start]:02x} at offset {error.start} is not "
                              "UTF-8)") from None
        if "\0" in text:
            raise flags.Error(f"--flagfile={path}: not a text file of flags (it holds NUL "
                              "bytes)")
        nested = [line.strip() for line in text.splitlines() if line.strip()]
        check_flagfiles(nested, _seen | {real})


def _flag_error_exit(error: flags.Error):
    """Reports a flag error as absl's `parse_flags_with_usage` does, and exits 1."""
    sys.stderr.write(f"FATAL Flags parsing error: {error}\n")
    sys.stderr.write("Pass --helpshort or --helpfull to see help on flags.\n")
    sys.exit(1)


def parse_flags_with_usage(argv):
    """`app.run`'s flags_parser: absl's own, after `check_flagfiles`."""
    try:
        check_flagfiles(argv)
    except flags.Error as error:
        _flag_error_exit(error)
    return app.parse_flags_with_usage(argv)


def parse_known_flags_with_usage(argv, flag_values: flags.FlagValues = flags.FLAGS):
    """The same for a CLI that passes the flags it does not define on (the Beam build hands
    them to Beam): parses with `known_only=True` and returns the program name and the
    unknown arguments. A bad value of a known flag is a one-line flag error, as with
    `parse_flags_with_usage` (absl's `app.run` prints a custom parser's errors as a
    traceback)."""
    try:
        check_flagfiles(argv)
        return flag_values(argv, known_only=True)
    except flags.Error as error:
        _flag_error_exit(error)
