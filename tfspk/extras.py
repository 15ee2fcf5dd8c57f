"""Optional dependencies: one place that imports them and says how to install them.

tfspk's core needs TensorFlow, numpy, soundfile and soxr; everything else is an
extra of `setup.py` (`pip install 'tfspk[serving]'` ...). Code that needs one calls

    grpc = extras.require("grpc", "serving", "the gRPC client")

instead of importing it, so that a missing package is a `MissingExtraError` whose
message names the package, the extra that installs it and what needed it, never a
bare `ModuleNotFoundError` from deep inside a call.
"""
from __future__ import annotations

import importlib
from typing import Optional

# Top-level module -> (distribution on PyPI, the setup.py extra that installs it).
# tests/test_hostile_inputs.py checks every pair against setup.py's extras_require.
KNOWN = {
    "grpc": ("grpcio", "serving"),
    "tensorflow_serving": ("tensorflow-serving-api", "serving"),
    "kaldiio": ("kaldiio", "kaldi"),
    "tf2onnx": ("tf2onnx", "onnx"),
    "onnx": ("tf2onnx", "onnx"),  # installed with tf2onnx
    "onnxruntime": ("onnxruntime", "onnx"),
    "ai_edge_litert": ("ai-edge-litert", "tflite"),
    "av": ("av", "m4a"),
    "apache_beam": ("apache-beam", "beam"),
    "espeakng_loader": ("espeakng-loader", "demo"),
}


class MissingExtraError(ModuleNotFoundError, ValueError):
    """An optional package is not installed; the message says how to install it.

    Also a ValueError: like bad input, it is the user's to fix, so the CLIs' error
    wrappers (which report ValueErrors as `error: ...` with exit status 2 and no
    traceback) report it the same way. `name` is the missing module, `extra` the
    setup.py extra that installs it.
    """

    def __init__(self, message: str, name: str, extra: str):
        super().__init__(message, name=name)
        self.extra = extra


def install_hint(module: str, extra: Optional[str] = None) -> str:
    """`pip install 'tfspk[<extra>]'` (or the distribution itself) for `module`."""
    top = module.split(".")[0]
    distribution, known_extra = KNOWN.get(top, (top, None))
    extra = extra or known_extra
    if extra:
        return f"pip install 'tfspk[{extra}]' (or pip install {distribution})"
    return f"pip install {distribution}"


def require(module: str, extra: Optional[str] = None, purpose: Optional[str] = None):
    """Imports and returns `module` (dotted names allowed), or raises MissingExtraError.

    `extra` defaults to the one `KNOWN` lists for the top-level package; `purpose`
    ("the gRPC client", "--output=*.ark") says what needed it.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        top = module.split(".")[0]
        distribution, known_extra = KNOWN.get(top, (top, None))
        extra = extra or known_extra
        missing = error.name or module
        if missing.split(".")[0] != top:  # installed, but one of its own dependencies is not
            distribution += f" (its dependency {missing} is missing)"
        raise MissingExtraError(
            f"{purpose or 'tfspk'} needs the optional package {distribution}, which is not "
            f"installed: {install_hint(module, extra)}", name=missing, extra=extra) from None
