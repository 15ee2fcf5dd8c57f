"""tfspk: speaker embeddings with TensorFlow 2 / Keras 3.

Implements and extends Shon, Tang & Glass, "Frame-level speaker embeddings for
text-independent speaker recognition and analysis of end-to-end model" (SLT 2018).
"""
import importlib.util as _importlib_util

__version__ = "0.1.0"

# Checked without importing TensorFlow: worker processes that only read audio should
# not pay TensorFlow's start-up time.
if _importlib_util.find_spec("tensorflow") is None:
    raise ImportError(
        "tfspk needs TensorFlow 2.21, which is not installed. Install tfspk with "
        "the extra for your machine: `pip install 'tfspk[cpu]'` (CPU only) or "
        "`pip install 'tfspk[gpu]'` (NVIDIA GPUs).")
