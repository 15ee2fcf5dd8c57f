"""Shared pytest set-up: quiet TensorFlow, locate shared data."""
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
LIBRISPEECH_DIR = REPO_ROOT.parent / "shared" / "data" / "librispeech-251"


@pytest.fixture(scope="session")
def librispeech_dir():
    if not LIBRISPEECH_DIR.is_dir():
        pytest.skip(f"real speech not found at {LIBRISPEECH_DIR}")
    return LIBRISPEECH_DIR
