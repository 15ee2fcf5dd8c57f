"""Moved to `tfspk.scoring.embeddings`; this module keeps the old import path."""
from tfspk.scoring.embeddings import *  # noqa: F401,F403
