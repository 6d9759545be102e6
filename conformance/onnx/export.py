"""Export a component to ONNX, check the graph, and swap a case's weights into its initializers.

- :func:`export_graph`: ``torch.onnx.export(dynamo=True)`` of a module at example inputs whose
  dynamic axes have sizes unlike any check's (so a size baked into the graph shows), with named
  inputs and outputs and every dynamic axis declared; ``optimize=False`` for weighted modules, so
  each weight stays one initializer named after its buffer (onnxruntime folds constants itself when
  it builds a session). Exports are cached per process by everything that changes the graph, so
  the weights of each case are swapped in rather than re-exported (:func:`with_weights`): the
  traced graph of these modules does not depend on the weights' values.
- :func:`graph_problems`: what is wrong with a graph before it runs: a ``CumSum`` over bool (the
  classic failure of exporting DETR's sine encoding), a declared-dynamic input axis fixed to a
  number, an output axis that ONNX shape inference resolves to a number although the inputs'
  axes are symbolic (a size baked into a Reshape or Expand).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .graphs import GraphInput

#: Example sizes of the dynamic axes at export: primes unlike the sizes of golden cases and draws.
EXAMPLE_SIZES = {"batch": 3, "height": 7, "width": 11, "out_height": 5, "out_width": 13, "length": 17,
                 "queries": 6}


def newest_opset() -> int:
    """The newest opset the installed torch exporter writes (torch 2.13: 23)."""
    try:
        from torch.onnx._constants import ONNX_MAX_OPSET
        return int(ONNX_MAX_OPSET)
    except (ImportError, AttributeError):  # a private constant: fall back to the default opset
        from torch.onnx._constants import ONNX_DEFAULT_OPSET
        return int(ONNX_DEFAULT_OPSET)


@dataclass
class Graph:
    """An ONNX model of a component with the names the adapter needs."""

    model: object  # onnx.ModelProto
    inputs: dict[str, str]  # canonical graph input -> the model's input name
    outputs: dict[str, str]  # canonical graph output -> the model's output name
    initializers: dict[str, str] = field(default_factory=dict)  # canonical weight -> initializer name
    problems: list[str] = field(default_factory=list)
    opset: int = 0
    seconds: float = 0.0


def example_size(name: str) -> int:
    if name in EXAMPLE_SIZES:
        return EXAMPLE_SIZES[name]
    if name.startswith(("height_", "width_")):  # YOLOv8 levels: distinct sizes per level
        level = int(name.rsplit("_", 1)[1])
        return (5 if name.startswith("height") else 9) + 2 * level
    if name.startswith("d"):  # leading axes of the DETR head's hidden states
        return 4 + int(name[1:])
    raise KeyError(name)


def example_inputs(graph_inputs: Sequence[GraphInput], tensors: Mapping[str, torch.Tensor],
                   dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """Inputs shaped like ``tensors`` with every dynamic axis at its :data:`EXAMPLE_SIZES` size."""
    generator = torch.Generator().manual_seed(0)
    out = []
    for gi in graph_inputs:
        shape = list(tensors[gi.name].shape)
        for axis, name in gi.dynamic:
            shape[axis] = example_size(name)
        if gi.boolean:
            x = torch.rand(shape, generator=generator) > 0.7
            if x.dim() >= 2:
                x[..., 0] = False  # keep one valid column (and key) per row: an ordinary padded batch
        else:
            x = torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)
        out.append(x)
    return tuple(out)


def export_graph(module: torch.nn.Module, graph_inputs: Sequence[GraphInput], output_names: Sequence[str],
                 example: tuple[torch.Tensor, ...], opset: int, *, optimize: bool) -> Graph:
    """Export ``module`` with ``torch.onnx.export(dynamo=True)``; see the module docstring."""
    dims: dict[str, object] = {}
    dynamic_shapes = []
    for gi in graph_inputs:
        axes = {}
        for axis, name in gi.dynamic:
            if name not in dims:
                dims[name] = torch.export.Dim(name, min=1)
            axes[axis] = dims[name]
        dynamic_shapes.append(axes)
    if getattr(module, "takes_list", False):  # one list argument: the dynamic shapes nest the same way
        example, dynamic_shapes = (list(example),), [list(dynamic_shapes)]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's progress and deprecation chatter
        program = torch.onnx.export(module, example, None, dynamo=True, opset_version=opset,
                                    input_names=[gi.name for gi in graph_inputs], output_names=list(output_names),
                                    dynamic_shapes=tuple(dynamic_shapes), optimize=optimize, verbose=False)
    model = program.model_proto
    names = {i.name for i in model.graph.initializer}
    # An optimized graph folds weights into other constants: its weights cannot be swapped, only re-exported.
    initializers = {} if optimize else dict(getattr(module, "initializers", {}))
    missing = sorted(b for b in initializers.values() if b not in names)
    if missing:
        raise RuntimeError(f"the export folded weights {missing[:3]} into other constants; export with "
                           f"optimize=False")
    return Graph(model=model, inputs={gi.name: gi.name for gi in graph_inputs},
                 outputs={n: n for n in output_names}, initializers=initializers, opset=opset_of(model),
                 seconds=time.perf_counter() - start)


def opset_of(model) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def graph_problems(model, dynamic_inputs: Mapping[str, Sequence[tuple[int, str]]],
                   dynamic_outputs: Mapping[str, Sequence[int]]) -> list[str]:
    """Problems of ``model`` (an onnx.ModelProto) before it runs (module docstring).

    ``dynamic_inputs``: the model's input name -> its (axis, name) pairs that must be symbolic;
    ``dynamic_outputs``: the model's output name -> axes that must stay symbolic.
    """
    import onnx
    from onnx import TensorProto
    problems = []
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as err:  # noqa: BLE001 - a model ONNX cannot infer still runs; say so and go on
        problems.append(f"ONNX shape inference failed: {err}")
        inferred = model
    types = {v.name: v.type.tensor_type for v in
             list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)}
    for node in inferred.graph.node:
        if node.op_type == "CumSum" and node.input and types.get(node.input[0]) is not None \
                and types[node.input[0]].elem_type == TensorProto.BOOL:
            problems.append(f"node {node.name or '(unnamed)'}: CumSum over a bool tensor ({node.input[0]}); "
                            f"onnxruntime has no such kernel: cast the mask to float before the cumulative sum")
    for name, axis, axis_name, size in _fixed_axes(inferred.graph.input, {n: dict(a) for n, a in
                                                                          dynamic_inputs.items()}):
        problems.append(f"input {name!r}: axis {axis} ({axis_name}) is fixed at {size}; the model cannot take "
                        f"another {axis_name} (declare it dynamic at export)")
    for name, axis, _, size in _fixed_axes(inferred.graph.output, {n: {a: "" for a in axes} for n, axes in
                                                                   dynamic_outputs.items()}):
        problems.append(f"output {name!r}: axis {axis} is the constant {size} in the graph although the inputs' "
                        f"axes are dynamic (a size baked into a Reshape, Expand or constant)")
    return problems


def _fixed_axes(values, wanted: Mapping[str, Mapping[int, str]]):
    """``(name, axis, axis name, size)`` for each wanted axis of ``values`` (graph inputs or outputs) that has a
    fixed size."""
    for value in values:
        dims = value.type.tensor_type.shape.dim
        for axis, axis_name in wanted.get(value.name, {}).items():
            if axis < len(dims) and dims[axis].HasField("dim_value"):
                yield value.name, axis, axis_name, dims[axis].dim_value


def with_weights(model, initializers: Mapping[str, str], weights: Mapping[str, torch.Tensor]):
    """A copy of ``model`` whose initializers hold ``weights`` (canonical name -> tensor), each cast to the
    initializer's dtype; every mapped initializer must receive a weight of its own shape."""
    import onnx
    from onnx import numpy_helper
    missing = sorted(set(initializers) - set(weights))
    if missing:
        raise ValueError(f"the case has no weights {missing[:4]} for the model's initializers")
    by_name = {init.name: i for i, init in enumerate(model.graph.initializer)}
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for canonical, init_name in initializers.items():
        if init_name not in by_name:
            raise ValueError(f"the model has no initializer {init_name!r} (mapped from weight {canonical!r})")
        old = copy.graph.initializer[by_name[init_name]]
        value = weights[canonical].detach().cpu().numpy()
        if tuple(old.dims) != value.shape:
            raise ValueError(f"initializer {init_name!r} has shape {tuple(old.dims)}, but weight {canonical!r} "
                             f"has shape {value.shape}")
        dtype = onnx.helper.tensor_dtype_to_np_dtype(old.data_type)
        old.CopyFrom(numpy_helper.from_array(np.asarray(value, dtype=dtype), init_name))
    return copy
