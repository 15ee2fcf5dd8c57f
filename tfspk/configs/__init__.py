"""The shipped training flag files (`configs/*.flags` in the repository), found through
the installed package, so they work from a wheel as from a checkout:

    python -m tfspk.train --flagfile="$(python -c 'import tfspk.configs as c; print(c.path("demo.flags"))')"

`tfspk/configs/flags` is a link to the repository's `configs/` directory; a build copies
the files into the package (setup.py `package_data`).
"""
from __future__ import annotations

import importlib.resources
import os

_DIRECTORY = "flags"


def names() -> list[str]:
    """The shipped flag files, e.g. `["aam_voxceleb1.flags", "demo.flags", ...]`."""
    root = importlib.resources.files(__name__) / _DIRECTORY
    return sorted(entry.name for entry in root.iterdir() if entry.name.endswith(".flags"))


def path(name: str) -> str:
    """The file system path of shipped flag file `name` (".flags" may be left out)."""
    if not name.endswith(".flags"):
        name += ".flags"
    candidate = importlib.resources.files(__name__) / _DIRECTORY / name
    if not candidate.is_file():
        raise FileNotFoundError(f"no shipped flag file {name!r}; shipped: "
                                f"{', '.join(names())}")
    return os.fspath(candidate)
