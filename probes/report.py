"""Moved to `tfspk.probes.report`; this module keeps the old import path."""
from tfspk.probes.report import *  # noqa: F401,F403
