"""tfspk: speaker embeddings with TensorFlow 2 / Keras 3.

Implements and extends Shon, Tang & Glass, "Frame-level speaker embeddings for
text-independent speaker recognition and analysis of end-to-end model" (SLT 2018).
"""
__version__ = "0.1.0"

try:
    import tensorflow as _tf  # noqa: F401
except ImportError as _error:  # pragma: no cover - exercised in a clean venv
    raise ImportError(
        "tfspk needs TensorFlow 2.21, which is not installed. Install tfspk with "
        "the extra for your machine: `pip install 'tfspk[cpu]'` (CPU only) or "
        "`pip install 'tfspk[gpu]'` (NVIDIA GPUs)."
    ) from _error
