"""Moved to `tfspk.probes.edit_distance`; this module keeps the old import path."""
from tfspk.probes.edit_distance import *  # noqa: F401,F403
