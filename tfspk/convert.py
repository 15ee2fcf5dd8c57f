"""ONNX and TFLite copies of an export's waveform -> embedding graph.

`python -m tfspk.convert --model=EXPORT_DIR --format=onnx|tflite --output=FILE`
converts the `serving_default` signature of a SavedModel written by `tfspk.export`
(raw 16 kHz waveform and lengths in, Kaldi MFCC + CMN inside the graph, embedding
out) to an ONNX model (for ONNX Runtime) or a TFLite flatbuffer (for
`ai_edge_litert.interpreter`), and writes `FILE.json` beside it: the input and output
tensor names, dtypes and shapes, the export's frame geometry (sample rate,
`min_samples`, ...), the graph rewrites applied and the largest difference from the
SavedModel measured on a check signal at conversion time. `EXPORT_DIR` is a version
directory or `BASE/NAME` (its highest version).

How the graph is converted. The signature is frozen (variables -> constants) and
its GraphDef is rewritten, in this conversion path only, so that both formats can
hold it with builtin operators:

* `RFFT`, whose complex output neither an ONNX graph nor a TFLite builtin kernel
  holds here, is replaced by two real matmuls with a precomputed cosine / sine basis
  (its `Real` and `Imag` consumers become `BatchMatMulV2` of the frames with
  `cos(2 pi t k / L)` and `-sin(2 pi t k / L)`): the same DFT, summed directly.
* TFLite only: float64 arithmetic (the front end's FFT, power spectrum and CMN run in
  float64 in the SavedModel) is demoted to float32, since TFLite builtins have no
  float64 kernels; ONNX keeps float64 (ONNX Runtime has it).
* TFLite only: where a convolution's input channels are unknown statically (the
  export's empty-batch padding hides them), the input is pinned to the filter's
  channel count with `EnsureShape`.
* ONNX only: tf2onnx would lower float selects to multiply-adds, which let a NaN in
  the padding through; selects are kept as ONNX `Where` instead.
* `Assert` (the SavedModel's InvalidArgument checks on lengths and NaN/Inf) has no
  equivalent in either format and is dropped by the converters: a converted model does
  not validate its input. `ConvertedModel.embed` checks lengths (>= `min_samples`,
  <= the row width) and finiteness in Python before running it.

Shapes. ONNX: `waveform` [batch, samples] and `lengths` [batch] with both
dimensions dynamic. TFLite: dynamic too by default (the interpreter resizes its
inputs per call; `ConvertedModel` does it), or fixed with `--num_samples` (and
`--batch_size`, default 1 when `--num_samples` is given), which lets the converter fold
the shape arithmetic and is what fixed-shape delegates need.

Any operator the target cannot run (including one that would need TFLite's
SELECT_TF_OPS / Flex, which `ai_edge_litert`'s interpreter lacks) raises
`UnsupportedOpError` naming the operator(s) and the reason, instead of the
converter's traceback.
"""
from __future__ import annotations

import json
import os
import re
import tempfile

import numpy as np

FORMATS = ("onnx", "tflite")
SIGNATURE = "serving_default"
DEFAULT_OPSET = 17
DEFAULT_TOLERANCE = 1e-4
METADATA_SUFFIX = ".json"


class ConversionError(ValueError):
    """A conversion that could not be completed (the message says why)."""


class UnsupportedOpError(ConversionError):
    """An operator of the graph that the target format cannot hold or run."""

    def __init__(self, ops, target: str, reason: str):
        self.ops = sorted(set(ops))
        self.target = target
        self.reason = reason
        super().__init__(f"cannot convert to {target}: unsupported op(s) "
                         f"{', '.join(self.ops)}: {reason}")


class ConversionMismatchError(ConversionError):
    """The converted model's embeddings differ from the SavedModel's."""


# --------------------------------------------------------------------------- #
# The SavedModel's serving graph, frozen
# --------------------------------------------------------------------------- #
def _tf():
    import tensorflow as tf

    return tf


def resolve_export(model: str) -> str:
    """The SavedModel directory: `model` itself or its highest numeric version."""
    from tfspk import inference

    return inference.resolve_export(model)


def read_geometry(export_path: str) -> dict:
    from tfspk import export

    path = os.path.join(export_path, export.EXTRA_DIR, export.GEOMETRY_FILENAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: missing; is {export_path} a tfspk export?")
    with open(path, encoding="utf-8") as stream:
        return json.load(stream)


class ServingGraph:
    """The frozen `serving_default` signature: GraphDef plus input/output tensor names."""

    def __init__(self, graph_def, inputs: dict, outputs: dict):
        self.graph_def = graph_def
        self.inputs = inputs      # signature name -> graph tensor name ("waveform:0")
        self.outputs = outputs    # signature name -> graph tensor name ("Identity:0")


def load_serving_graph(export_path: str, signature: str = SIGNATURE) -> ServingGraph:
    """Loads `export_path` and freezes `signature` (variables become constants)."""
    tf = _tf()
    from tensorflow.python.framework import convert_to_constants

    loaded = tf.saved_model.load(export_path)
    if signature not in loaded.signatures:
        raise ConversionError(f"{export_path}: no signature {signature!r}; "
                              f"signatures: {sorted(loaded.signatures)}")
    function = loaded.signatures[signature]
    frozen = convert_to_constants.convert_variables_to_constants_v2(
        function, lower_control_flow=False)
    # Signature argument names -> placeholders, in the function's own order.
    input_specs = function.structured_input_signature[1]
    placeholders = [t for t in frozen.inputs if t.dtype != tf.resource]
    inputs = {}
    for name in sorted(input_specs):
        match = [t for t in placeholders if t.name.split(":")[0] == name]
        if len(match) != 1:
            raise ConversionError(f"{export_path}: cannot find the placeholder of "
                                  f"input {name!r} in {signature}")
        inputs[name] = match[0].name
    output_tensors = tf.nest.flatten(frozen.structured_outputs)
    output_names = sorted(function.structured_outputs)
    flat_names = tf.nest.flatten({n: n for n in output_names})
    outputs = {name: tensor.name for name, tensor in zip(flat_names, output_tensors)}
    return ServingGraph(frozen.graph.as_graph_def(), inputs, outputs)


# --------------------------------------------------------------------------- #
# GraphDef rewrites (conversion path only)
# --------------------------------------------------------------------------- #
def _static_shapes(graph_def) -> dict:
    """Tensor name -> static shape (list with None) as TensorFlow infers it."""
    tf = _tf()
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    shapes = {}
    for op in graph.get_operations():
        for tensor in op.outputs:
            shape = tensor.shape
            shapes[tensor.name] = None if shape.rank is None else shape.as_list()
    return shapes


def _consumers(graph_def) -> dict:
    """Node name -> [(consumer node, input index)] over data inputs."""
    consumers: dict = {}
    for node in graph_def.node:
        for index, name in enumerate(node.input):
            if name.startswith("^"):
                continue
            source = name.split(":")[0]
            consumers.setdefault(source, []).append((node, index))
    return consumers


def _const(graph_def, name: str) -> np.ndarray | None:
    from tensorflow.python.framework import tensor_util

    for node in graph_def.node:
        if node.name == name.split(":")[0] and node.op == "Const":
            return tensor_util.MakeNdarray(node.attr["value"].tensor)
    return None


def dft_basis(frame_length: int, fft_length: int) -> tuple[np.ndarray, np.ndarray]:
    """[frame_length, fft_length // 2 + 1] real and imaginary DFT bases (float64).

    `x @ real + 1j * (x @ imag)` is `np.fft.rfft(x, fft_length)` for frames `x` of
    `frame_length` samples (zero-padded or cut to `fft_length`, as RFFT does).
    """
    t = np.arange(frame_length)[:, None]
    k = np.arange(fft_length // 2 + 1)[None, :]
    angle = 2.0 * np.pi * ((t * k) % fft_length) / fft_length  # exact phase index
    inside = (t < fft_length).astype(np.float64)
    return np.cos(angle) * inside, -np.sin(angle) * inside


def _replace_rfft(graph_def, shapes) -> list[str]:
    """RFFT -> two BatchMatMulV2 with a DFT basis; returns the rewrites made."""
    from tensorflow.core.framework import node_def_pb2, types_pb2
    from tensorflow.python.framework import tensor_util

    consumers = _consumers(graph_def)
    rewrites = []
    for node in list(graph_def.node):
        if node.op not in ("RFFT", "RFFT2D", "RFFT3D"):
            continue
        if node.op != "RFFT":
            raise UnsupportedOpError([node.op], "a real-valued graph",
                                     f"{node.name}: only a 1-D RFFT can be rewritten as a "
                                     "DFT matmul")
        frames, length_input = node.input[0], node.input[1]
        shape = shapes.get(frames if ":" in frames else frames + ":0")
        fft_length = _const(graph_def, length_input)
        if not shape or shape[-1] is None or fft_length is None:
            raise UnsupportedOpError(
                ["RFFT"], "a real-valued graph",
                f"{node.name}: the frame length or fft_length is not static, so the DFT "
                "basis cannot be precomputed")
        users = consumers.get(node.name, [])
        complex_users = sorted({user.op for user, _ in users} - {"Real", "Imag"})
        if complex_users:
            raise UnsupportedOpError(
                ["RFFT"] + complex_users, "a real-valued graph",
                f"{node.name}: its complex output feeds {', '.join(complex_users)}; only "
                "Real and Imag consumers can be rewritten as DFT matmuls")
        real_type = node.attr["Treal"].type
        dtype = np.float64 if real_type == types_pb2.DT_DOUBLE else np.float32
        cos_basis, sin_basis = dft_basis(int(shape[-1]), int(fft_length.reshape(-1)[0]))
        controls = [name for name in node.input if name.startswith("^")]
        for user, _ in users:
            basis = cos_basis if user.op == "Real" else sin_basis
            constant = graph_def.node.add()
            constant.name = f"{user.name}/dft_basis"
            constant.op = "Const"
            constant.attr["dtype"].type = real_type
            constant.attr["value"].tensor.CopyFrom(
                tensor_util.make_tensor_proto(basis.astype(dtype)))
            replacement = node_def_pb2.NodeDef(name=user.name, op="BatchMatMulV2")
            replacement.input.extend([frames, constant.name] + controls
                                     + [n for n in user.input if n.startswith("^")])
            replacement.attr["T"].type = real_type
            replacement.attr["adj_x"].b = False
            replacement.attr["adj_y"].b = False
            user.CopyFrom(replacement)
        graph_def.node.remove(node)
        rewrites.append(f"{node.name}: RFFT({shape[-1]} samples, fft_length "
                        f"{int(fft_length.reshape(-1)[0])}) -> DFT matmuls")
    return rewrites


def _demote_float64(graph_def) -> list[str]:
    """Every float64 tensor becomes float32 (attrs and constants); returns rewrites."""
    from tensorflow.core.framework import types_pb2
    from tensorflow.python.framework import tensor_util

    demoted = set()
    for node in graph_def.node:
        for key, value in node.attr.items():
            if value.HasField("type") and value.type == types_pb2.DT_DOUBLE:
                value.type = types_pb2.DT_FLOAT
                demoted.add(node.op)
            elif value.HasField("type") and value.type == types_pb2.DT_COMPLEX128:
                value.type = types_pb2.DT_COMPLEX64
                demoted.add(node.op)
            elif value.HasField("list") and types_pb2.DT_DOUBLE in value.list.type:
                types = [types_pb2.DT_FLOAT if t == types_pb2.DT_DOUBLE else t
                         for t in value.list.type]
                del value.list.type[:]
                value.list.type.extend(types)
                demoted.add(node.op)
            elif (key == "value" and value.HasField("tensor")
                  and value.tensor.dtype == types_pb2.DT_DOUBLE):
                array = tensor_util.MakeNdarray(value.tensor).astype(np.float32)
                value.tensor.CopyFrom(tensor_util.make_tensor_proto(array))
    return [f"float64 -> float32 in {', '.join(sorted(demoted))}"] if demoted else []


def _pin_conv_channels(graph_def, shapes) -> list[str]:
    """Convolution inputs whose channel count is not static get it from the filter.

    The input goes through `Reshape(x, concat(shape(x)[:-1], [channels]))`, which the
    converter's shape inference reads as "last dimension = channels" (TFLite has no
    EnsureShape); the values are unchanged.
    """
    from tensorflow.core.framework import node_def_pb2, types_pb2

    rewrites = []
    for node in list(graph_def.node):
        if node.op not in ("Conv2D", "Conv3D", "DepthwiseConv2dNative"):
            continue
        shape = shapes.get(_tensor_name(node.input[0]))
        filters = shapes.get(_tensor_name(node.input[1]))
        if shape is None or filters is None or shape[-1] is not None:
            continue
        if node.attr["data_format"].s not in (b"", b"NHWC", b"NDHWC"):
            continue
        channels = int(filters[-2])
        prefix = f"{node.name}/pinned_input"
        _add_const(graph_def, f"{prefix}/channels", np.array([channels], np.int32))
        _add_const(graph_def, f"{prefix}/begin", np.array([0], np.int32))
        _add_const(graph_def, f"{prefix}/end", np.array([-1], np.int32))
        _add_const(graph_def, f"{prefix}/strides", np.array([1], np.int32))
        _add_const(graph_def, f"{prefix}/axis", np.array(0, np.int32))
        shape_node = graph_def.node.add(name=f"{prefix}/shape", op="Shape")
        shape_node.input.append(node.input[0])
        shape_node.attr["T"].CopyFrom(node.attr["T"])
        shape_node.attr["out_type"].type = types_pb2.DT_INT32
        leading = graph_def.node.add(name=f"{prefix}/leading", op="StridedSlice")
        leading.input.extend([shape_node.name, f"{prefix}/begin", f"{prefix}/end",
                              f"{prefix}/strides"])
        leading.attr["T"].type = types_pb2.DT_INT32
        leading.attr["Index"].type = types_pb2.DT_INT32
        for mask in ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask",
                     "shrink_axis_mask"):
            leading.attr[mask].i = 0
        target = graph_def.node.add(name=f"{prefix}/target", op="ConcatV2")
        target.input.extend([leading.name, f"{prefix}/channels", f"{prefix}/axis"])
        target.attr["N"].i = 2
        target.attr["T"].type = types_pb2.DT_INT32
        target.attr["Tidx"].type = types_pb2.DT_INT32
        reshape = node_def_pb2.NodeDef(name=prefix, op="Reshape")
        reshape.input.extend([node.input[0], target.name])
        reshape.attr["T"].CopyFrom(node.attr["T"])
        reshape.attr["Tshape"].type = types_pb2.DT_INT32
        graph_def.node.append(reshape)
        node.input[0] = prefix
        rewrites.append(f"{node.name}: input channels pinned to {channels}")
    return rewrites


def _new_axis_slices_to_expand_dims(graph_def, shapes) -> list[str]:
    """`x[..., None]`-style StridedSlices (only new axes, every other axis whole)
    become ExpandDims: TFLite's strided_slice cannot add axes to a dynamic shape."""
    from tensorflow.core.framework import node_def_pb2, types_pb2

    count = 0
    for node in list(graph_def.node):
        if node.op != "StridedSlice" or not node.attr["new_axis_mask"].i:
            continue
        if node.attr["shrink_axis_mask"].i:
            continue
        begin, end, strides = (_const(graph_def, name) for name in node.input[1:4])
        input_shape = shapes.get(_tensor_name(node.input[0]))
        if begin is None or end is None or strides is None or input_shape is None:
            continue
        new_axis, ellipsis = node.attr["new_axis_mask"].i, node.attr["ellipsis_mask"].i
        begin_mask, end_mask = node.attr["begin_mask"].i, node.attr["end_mask"].i
        entries = len(begin)
        new_entries = [i for i in range(entries) if new_axis >> i & 1]
        ellipses = [i for i in range(entries) if ellipsis >> i & 1]
        whole = len(ellipses) <= 1
        for i in range(entries):
            if i in new_entries or i in ellipses:
                continue
            if not ((begin_mask >> i & 1 or begin[i] == 0) and end_mask >> i & 1
                    and strides[i] == 1):
                whole = False
        if not whole:
            continue
        output_rank = len(input_shape) + len(new_entries)
        if ellipses:
            after = entries - ellipses[0] - 1  # entries after the ellipsis, each one dim
            axes = sorted(i if i < ellipses[0] else output_rank - after + (i - ellipses[0] - 1)
                          for i in new_entries)
        else:
            axes = sorted(new_entries)
        source = node.input[0]
        controls = [name for name in node.input if name.startswith("^")]
        for step, axis in enumerate(axes):
            axis_name = f"{node.name}/expand_axis_{step}"
            _add_const(graph_def, axis_name, np.array(axis, np.int32))
            name = node.name if step == len(axes) - 1 else f"{node.name}/expand_{step}"
            expand = node_def_pb2.NodeDef(name=name, op="ExpandDims")
            expand.input.extend([source, axis_name] + (controls if step == 0 else []))
            expand.attr["T"].CopyFrom(node.attr["T"])
            expand.attr["Tdim"].type = types_pb2.DT_INT32
            if name == node.name:
                node.CopyFrom(expand)
            else:
                graph_def.node.append(expand)
            source = name
        count += 1
    return [f"{count} new-axis StridedSlice -> ExpandDims"] if count else []


def _tensor_name(name: str) -> str:
    return name if ":" in name else name + ":0"


def _add_const(graph_def, name: str, value: np.ndarray):
    from tensorflow.python.framework import tensor_util

    node = graph_def.node.add(name=name, op="Const")
    node.attr["dtype"].type = tensor_util.make_tensor_proto(value).dtype
    node.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(value))
    return node


def _shape_proto(dims):
    from tensorflow.core.framework import tensor_shape_pb2

    proto = tensor_shape_pb2.TensorShapeProto()
    for dim in dims:
        proto.dim.add(size=int(dim))
    return proto


def rewrite_for_conversion(graph_def, target: str):
    """A copy of `graph_def` the `target` ("onnx" or "tflite") can hold; and the rewrites."""
    from tensorflow.core.framework import graph_pb2

    rewritten = graph_pb2.GraphDef()
    rewritten.CopyFrom(graph_def)
    rewrites = _replace_rfft(rewritten, _static_shapes(rewritten))
    if target == "tflite":
        rewrites += _demote_float64(rewritten)
        rewrites += _pin_conv_channels(rewritten, _static_shapes(rewritten))
        rewrites += _new_axis_slices_to_expand_dims(rewritten, _static_shapes(rewritten))
    return rewritten, rewrites


# --------------------------------------------------------------------------- #
# Converters
# --------------------------------------------------------------------------- #
def _serving_function(graph: ServingGraph, graph_def, batch_size=None, num_samples=None):
    """A tf.function (waveform, lengths) -> {"embedding"} running `graph_def`."""
    tf = _tf()

    if set(graph.inputs) != {"waveform", "lengths"} or "embedding" not in graph.outputs:
        raise ConversionError(
            f"expected a serving_default signature (waveform, lengths) -> embedding, got "
            f"inputs {sorted(graph.inputs)} and outputs {sorted(graph.outputs)}")

    @tf.function(input_signature=[
        tf.TensorSpec([batch_size, num_samples], tf.float32, name="waveform"),
        tf.TensorSpec([batch_size], tf.int32, name="lengths")])
    def serve(waveform, lengths):
        embedding, = tf.graph_util.import_graph_def(
            graph_def, input_map={graph.inputs["waveform"]: waveform,
                                  graph.inputs["lengths"]: lengths},
            return_elements=[graph.outputs["embedding"]], name="serving")
        return {"embedding": tf.identity(embedding, name="embedding")}

    return serve


_SELECT_OPS = re.compile(r"TF Select ops: ([A-Za-z0-9_, ]+)")
_NOT_BUILTIN = re.compile(r"'tf\.([A-Za-z0-9_]+)' op is neither a custom op nor a flex op")
_NOT_LEGAL = re.compile(r"failed to legalize operation 'tf\.([A-Za-z0-9_]+)'")


def _tflite_error(error: Exception) -> ConversionError:
    """The converter's error as UnsupportedOpError naming the ops (or ConversionError)."""
    message = str(error)
    ops = set()
    for match in _SELECT_OPS.finditer(message):
        ops.update(op.strip() for op in match.group(1).split(",") if op.strip())
    ops.update(_NOT_BUILTIN.findall(message))
    ops.update(_NOT_LEGAL.findall(message))
    if not ops:
        tail = " ".join(message.strip().splitlines()[-3:])
        return ConversionError(f"TFLite conversion failed: {tail[-600:]}")
    details = [line.strip() for line in message.splitlines()
               if re.match(r"\s*tf\.[A-Za-z0-9_]+\(", line)]
    reason = ("no TFLite builtin kernel for these ops as used here (they would need "
              "SELECT_TF_OPS / Flex, which ai_edge_litert's interpreter cannot run)")
    if details:
        reason += "; " + "; ".join(sorted(set(details))[:6])
    return UnsupportedOpError(ops, "TFLite", reason)


def to_tflite_bytes(graph: ServingGraph, batch_size=None, num_samples=None):
    """(flatbuffer bytes, rewrites) of the serving graph, builtin ops only."""
    tf = _tf()

    graph_def, rewrites = rewrite_for_conversion(graph.graph_def, "tflite")
    serve = _serving_function(graph, graph_def, batch_size, num_samples)
    module = tf.Module()
    module.serve = serve
    with tempfile.TemporaryDirectory() as directory:
        # A SavedModel of the rewritten graph, so the flatbuffer gets the signature
        # (names waveform, lengths -> embedding) the way from_saved_model makes it.
        tf.saved_model.save(module, directory,
                            signatures={SIGNATURE: serve.get_concrete_function()})
        converter = tf.lite.TFLiteConverter.from_saved_model(directory, [SIGNATURE])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            flatbuffer = converter.convert()
        except Exception as error:  # ConverterError and friends: say which ops
            raise _tflite_error(error) from None
    return flatbuffer, rewrites


class _Tf2OnnxLog:
    """Collects tf2onnx's error messages (it logs unconvertible nodes, then goes on)."""

    def __init__(self):
        import logging

        self.records = []
        outer = self

        class Handler(logging.Handler):
            def emit(self, record):
                outer.records.append(record.getMessage())

        self.handler = Handler(level=logging.ERROR)
        self.logger = logging.getLogger("tf2onnx")

    def __enter__(self):
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)


def _rename_onnx(model, renames: dict):
    """Renames graph inputs/outputs (and every reference) in an ONNX ModelProto."""
    graph = model.graph
    for value in list(graph.input) + list(graph.output):
        value.name = renames.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    return model


def _nan_safe_selects(g, ops):
    """tf2onnx rewriter: keep Select/SelectV2 as ONNX Where.

    By default tf2onnx lowers a float select to `cond * x + (1 - cond) * y`, which turns
    NaN/Inf in the branch not taken into NaN: the export zeroes each row's padding with
    a select, so a NaN in the padding would reach the embedding.
    """
    for op in ops:
        if op.type in ("Select", "SelectV2"):
            op.set_attr("handles_nan", True)
    return ops


def to_onnx_model(graph: ServingGraph, opset: int = DEFAULT_OPSET):
    """(onnx.ModelProto, rewrites) of the serving graph, dynamic batch and time."""
    from tfspk import extras

    onnx = extras.require("onnx", "onnx", "ONNX conversion")
    tf2onnx = extras.require("tf2onnx", "onnx", "ONNX conversion")

    graph_def, rewrites = rewrite_for_conversion(graph.graph_def, "onnx")
    names = ["waveform", "lengths"]
    with _Tf2OnnxLog() as log:
        try:
            model, _ = tf2onnx.convert.from_graph_def(
                graph_def, input_names=[graph.inputs[n] for n in names],
                output_names=[graph.outputs["embedding"]], opset=opset,
                custom_rewriter=[_nan_safe_selects])
        except Exception as error:
            raise ConversionError(f"ONNX conversion failed: "
                                  f"{type(error).__name__}: {str(error)[-600:]}") from None
    unknown = {}
    for node in model.graph.node:
        if not onnx.defs.has(node.op_type, node.domain or ""):
            unknown.setdefault(node.op_type, []).append(node.name)
    if unknown:
        reasons = [message.split("\n")[0][:300] for message in log.records
                   if any(name in message for names_ in unknown.values()
                          for name in names_)
                   or "make_sure failure" in message]
        reason = (f"tf2onnx (opset {opset}) has no ONNX equivalent for them "
                  f"(nodes: {', '.join(sorted(n for v in unknown.values() for n in v))[:400]})")
        if reasons:
            reason += "; tf2onnx: " + " | ".join(dict.fromkeys(reasons))[:800]
        raise UnsupportedOpError(unknown, "ONNX", reason)
    _rename_onnx(model, {graph.inputs["waveform"]: "waveform",
                         graph.inputs["lengths"]: "lengths",
                         graph.outputs["embedding"]: "embedding"})
    onnx.checker.check_model(model)
    return model, rewrites


# --------------------------------------------------------------------------- #
# Running a converted model
# --------------------------------------------------------------------------- #
class ConvertedModel:
    """An ONNX or TFLite conversion with its metadata JSON: `embed(waveforms)`.

    The converted graphs do not hold the SavedModel's input checks (see the module
    docstring), so `embed` raises ValueError for what the SavedModel would have
    refused with InvalidArgument: lengths below `min_samples`, above the row width or
    (TFLite with fixed shapes) above `num_samples`, NaN/Inf in a row's valid part.
    """

    def __init__(self, path: str, metadata: dict, num_threads: int | None = None):
        self.path = path
        self.metadata = metadata
        self.format = metadata["format"]
        self.min_samples = int(metadata["geometry"]["min_samples"])
        self.sample_rate = int(metadata["geometry"]["sample_rate"])
        self.batch_size = metadata["inputs"]["waveform"]["shape"][0]
        self.num_samples = metadata["inputs"]["waveform"]["shape"][1]
        if self.format == "onnx":
            from tfspk import extras

            onnxruntime = extras.require("onnxruntime", "onnx", "running an ONNX model")
            options = onnxruntime.SessionOptions()
            if num_threads:
                options.intra_op_num_threads = num_threads
            self._session = onnxruntime.InferenceSession(
                path, options, providers=["CPUExecutionProvider"])
        elif self.format == "tflite":
            from tfspk import extras

            interpreter = extras.require("ai_edge_litert.interpreter", "tflite",
                                         "running a TFLite model")

            self._interpreter = interpreter.Interpreter(model_path=path,
                                                        num_threads=num_threads)
            self._runner = self._interpreter.get_signature_runner(SIGNATURE)
        else:
            raise ValueError(f"{path}: unknown format {self.format!r} in its metadata")

    @classmethod
    def load(cls, path: str, num_threads: int | None = None) -> "ConvertedModel":
        metadata_path = path + METADATA_SUFFIX
        if not os.path.isfile(metadata_path):
            raise FileNotFoundError(f"{metadata_path}: missing; convert with "
                                    "tfspk.convert, which writes it beside the model")
        with open(metadata_path, encoding="utf-8") as stream:
            return cls(path, json.load(stream), num_threads)

    def run(self, waveform: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The raw graph on one batch (no checks, no reshaping)."""
        waveform = np.ascontiguousarray(waveform, np.float32)
        lengths = np.ascontiguousarray(lengths, np.int32)
        if self.format == "onnx":
            return self._session.run(["embedding"], {"waveform": waveform,
                                                     "lengths": lengths})[0]
        return self._runner(waveform=waveform, lengths=lengths)["embedding"]

    def embed(self, waveform, lengths=None) -> np.ndarray:
        """Embeddings [batch, D] of a padded batch [batch, samples] (+ lengths) or of a
        list of 1-D waveforms."""
        if isinstance(waveform, (list, tuple)):
            from tfspk.serving import pad_batch

            if lengths is not None:
                raise ValueError("lengths are implied by a list of waveforms")
            waveform, lengths = pad_batch([np.asarray(w, np.float32) for w in waveform])
        waveform = np.asarray(waveform, np.float32)
        if waveform.ndim != 2:
            raise ValueError(f"waveform must be [batch, samples], got shape {waveform.shape}")
        if lengths is None:
            lengths = np.full([len(waveform)], waveform.shape[1], np.int32)
        lengths = np.asarray(lengths, np.int32).reshape(-1)
        self._check(waveform, lengths)
        if self.num_samples is not None and waveform.shape[1] != self.num_samples:
            padded = np.zeros((len(waveform), self.num_samples), np.float32)
            width = min(waveform.shape[1], self.num_samples)
            padded[:, :width] = waveform[:, :width]
            waveform = padded
        if self.batch_size is None:
            return self.run(waveform, lengths)
        rows = []
        for start in range(0, len(waveform), self.batch_size):
            chunk, chunk_lengths = waveform[start:start + self.batch_size], \
                lengths[start:start + self.batch_size]
            fill = self.batch_size - len(chunk)
            if fill:  # repeat the last row; its outputs are dropped
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], fill, 0)])
                chunk_lengths = np.concatenate([chunk_lengths,
                                                np.repeat(chunk_lengths[-1:], fill)])
            rows.append(self.run(chunk, chunk_lengths)[:self.batch_size - fill])
        if not rows:
            raise ValueError("an empty batch")
        return np.concatenate(rows)

    def _check(self, waveform, lengths):
        if len(lengths) != len(waveform):
            raise ValueError(f"lengths has {len(lengths)} entries for {len(waveform)} rows")
        width = waveform.shape[1]
        checks = [(lengths < self.min_samples,
                   f"utterance shorter than the model minimum of {self.min_samples} samples"),
                  (lengths > width, "lengths exceed the waveform width of the batch")]
        if self.num_samples is not None:
            checks.append((lengths > self.num_samples,
                           f"longer than the {self.num_samples} samples this TFLite model "
                           "was converted for (--num_samples)"))
        valid = np.arange(width)[None, :] < lengths[:, None]
        checks.append((~np.all(np.isfinite(waveform) | ~valid, axis=1),
                       "waveform contains NaN or Inf"))
        for bad, message in checks:
            if bad.any():
                raise ValueError(f"{self.path}: {message}; rows {np.flatnonzero(bad).tolist()}")


# --------------------------------------------------------------------------- #
# Export -> file + metadata
# --------------------------------------------------------------------------- #
def check_signal(num_samples: int, seed: int = 0) -> np.ndarray:
    """A deterministic test waveform: noise shaped by a slow envelope, 0.1 peak."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / 16000.0
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 3 * t)) ** 2
    signal = envelope * rng.standard_normal(num_samples) + 0.2 * np.sin(2 * np.pi * 180 * t)
    return (0.1 * signal / np.abs(signal).max()).astype(np.float32)


def _check_lengths(geometry: dict, num_samples: int | None) -> list[int]:
    rate = int(geometry["sample_rate"])
    if num_samples is not None:
        return sorted({num_samples, max(geometry["min_samples"], (2 * num_samples) // 3)})
    return [max(geometry["min_samples"], int(1.0 * rate)), int(2.3 * rate)]


def convert(model: str, format: str, output: str, *, num_samples: int | None = None,
            batch_size: int | None = None, opset: int = DEFAULT_OPSET,
            tolerance: float | None = DEFAULT_TOLERANCE, num_threads: int | None = None) -> dict:
    """Converts the export `model` to `output` (+ `output.json`); returns the metadata.

    `num_samples` / `batch_size` fix the TFLite input shape (ONNX is always dynamic).
    With `tolerance`, the converted model is run beside the SavedModel on check
    signals and ConversionMismatchError is raised (and nothing written) when any
    embedding differs by more than `tolerance`; the difference goes into the metadata.
    """
    tf = _tf()

    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if format == "onnx" and (num_samples is not None or batch_size is not None):
        raise ValueError("num_samples / batch_size apply to TFLite only; ONNX keeps the "
                         "batch and time dimensions dynamic")
    export_path = resolve_export(model)
    geometry = read_geometry(export_path)
    if num_samples is not None:
        if num_samples < geometry["min_samples"]:
            raise ValueError(f"num_samples={num_samples} is below the model minimum of "
                             f"{geometry['min_samples']} samples")
        batch_size = batch_size or 1
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    graph = load_serving_graph(export_path)
    if format == "onnx":
        onnx_model, rewrites = to_onnx_model(graph, opset)
        payload = onnx_model.SerializeToString()
    else:
        payload, rewrites = to_tflite_bytes(graph, batch_size, num_samples)

    metadata = {
        "format": format, "source": os.path.abspath(export_path), "signature": SIGNATURE,
        "inputs": {
            "waveform": {"dtype": "float32", "shape": [batch_size, num_samples],
                         "description": "[batch, samples] in [-1, 1], rows right-padded"},
            "lengths": {"dtype": "int32", "shape": [batch_size],
                        "description": "valid samples per row"}},
        "outputs": {"embedding": {"dtype": "float32", "shape": [batch_size, None]}},
        "geometry": geometry, "rewrites": rewrites,
        "input_validation": "none in the graph (Assert dropped); ConvertedModel.embed "
                            "checks lengths and NaN/Inf",
        "tensorflow": tf.__version__,
    }
    if format == "onnx":
        metadata["opset"] = opset
    directory = os.path.dirname(os.path.abspath(output))
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(output)[1] or f".{format}"
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        staged = os.path.join(scratch, "model" + suffix)
        with open(staged, "wb") as stream:
            stream.write(payload)
        check = _compare(export_path, staged, metadata, geometry, num_samples, num_threads)
        metadata["outputs"]["embedding"]["shape"][1] = check.pop("dimension")
        metadata["check"] = check
        if tolerance is not None and check["max_abs_diff"] > tolerance:
            raise ConversionMismatchError(
                f"{format} conversion of {export_path}: embeddings differ from the "
                f"SavedModel's by up to {check['max_abs_diff']:.3g} (> {tolerance:g}) on "
                f"the check signals")
        os.replace(staged, output)
    with open(output + METADATA_SUFFIX, "w", encoding="utf-8") as stream:
        json.dump(metadata, stream, indent=2)
        stream.write("\n")
    return metadata


def _compare(export_path, path, metadata, geometry, num_samples, num_threads) -> dict:
    """Runs the converted model and the SavedModel on check signals, row by row."""
    tf = _tf()

    serve = tf.saved_model.load(export_path).signatures[SIGNATURE]
    converted = ConvertedModel(path, metadata, num_threads)
    lengths = _check_lengths(geometry, num_samples)
    waveforms = [check_signal(n, seed=i) for i, n in enumerate(lengths)]
    reference = np.concatenate([
        serve(waveform=tf.constant(w[None]), lengths=tf.constant([len(w)], tf.int32))
        ["embedding"].numpy() for w in waveforms])
    got = converted.embed(waveforms)
    return {"lengths": lengths, "max_abs_diff": float(np.abs(got - reference).max()),
            "max_abs_reference": float(np.abs(reference).max()),
            "dimension": int(reference.shape[1])}


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #
def define_flags(flag_values=None):
    """CLI flags; defined on demand so importing this library module defines none."""
    from absl import flags

    flag_values = flag_values if flag_values is not None else flags.FLAGS
    flags.DEFINE_string("model", None, "Export: a version directory or BASE/NAME (its "
                        "highest version).", flag_values=flag_values)
    flags.DEFINE_enum("format", None, list(FORMATS), "Target format.",
                      flag_values=flag_values)
    flags.DEFINE_string("output", None, "Output file (.onnx / .tflite); metadata goes "
                        "to OUTPUT.json.", flag_values=flag_values)
    flags.DEFINE_integer("num_samples", None, "TFLite only: fix the waveform width "
                         "(samples); default: dynamic.", lower_bound=1,
                         flag_values=flag_values)
    flags.DEFINE_integer("batch_size", None, "TFLite only: fix the batch size (default 1 "
                         "with --num_samples, else dynamic).", lower_bound=1,
                         flag_values=flag_values)
    flags.DEFINE_integer("opset", DEFAULT_OPSET, "ONNX opset.", lower_bound=13,
                         flag_values=flag_values)
    flags.DEFINE_float("tolerance", DEFAULT_TOLERANCE, "Largest embedding difference "
                       "from the SavedModel accepted on the check signals; negative: "
                       "do not check the result.", flag_values=flag_values)
    flags.mark_flags_as_required(["model", "format", "output"], flag_values=flag_values)


def convert_from_flags(flag_values) -> dict:
    """What the CLI does, for parsed `flag_values` (see `define_flags`)."""
    from absl import app

    if flag_values.format == "onnx" and (flag_values.num_samples is not None
                                         or flag_values.batch_size is not None):
        raise app.UsageError("--num_samples / --batch_size apply to --format=tflite only")
    tolerance = flag_values.tolerance if flag_values.tolerance >= 0 else None
    return convert(flag_values.model, flag_values.format, flag_values.output,
                   num_samples=flag_values.num_samples, batch_size=flag_values.batch_size,
                   opset=flag_values.opset, tolerance=tolerance)


def main(argv):
    from absl import app, flags, logging

    logging.set_verbosity(logging.WARNING)  # tf2onnx and SavedModel writing log at INFO
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        metadata = convert_from_flags(flags.FLAGS)
    except (ConversionError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}") from None
    print(f"{flags.FLAGS.output}: {metadata['format']}, inputs "
          f"{ {k: v['shape'] for k, v in metadata['inputs'].items()} }, embedding "
          f"{metadata['outputs']['embedding']['shape']}; max |diff| from the SavedModel "
          f"{metadata['check']['max_abs_diff']:.2g}")
    for rewrite in metadata["rewrites"]:
        print(f"  rewrite: {rewrite}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from absl import app as _app, flags as _flags

    from tfspk import flagfiles  # a binary --flagfile is a flag error, not a traceback

    define_flags(_flags.FLAGS)
    _app.run(main, flags_parser=flagfiles.parse_flags_with_usage)
