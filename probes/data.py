"""Moved to `tfspk.probes.data`; this module keeps the old import path."""
from tfspk.probes.data import *  # noqa: F401,F403
