"""Moved to `tfspk.probes.frames`; this module keeps the old import path."""
from tfspk.probes.frames import *  # noqa: F401,F403
