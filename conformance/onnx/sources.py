"""Where the module under export comes from: ``--onnx-source=NAME`` (docs/onnx.md, "Libraries' own heads").

- ``reference`` (default): the reference's own formulas (conformance/onnx/modules.py), exported with
  ``torch.onnx.export(dynamo=True)`` at ``--onnx-opset``.
- ``ultralytics``: ultralytics' ``Detect`` head in its export mode (``export=True``, ``dynamic=True``,
  ``format="onnx"``: anchors and strides made in the graph from the feature maps' shapes, as its
  ``Exporter`` sets them), exported by ultralytics' own ``utils/export/engine.py::torch2onnx``
  (``torch.onnx.export(dynamo=False)`` with ``dynamic_axes``) at the opset its exporter picks
  (``best_onnx_opset``), unless ``--onnx-opset`` asks for another. ``--dtype=float16`` checks its half export
  (``quantize=16`` on the CPU: the float32 graph converted to float16 inside, float32 inputs and outputs).
- ``transformers`` (``torch.onnx.export(dynamo=True)``: it has no exporter of its own for these modules) and
  ``mmdet`` (as mmdeploy exports: ``torch.onnx.export(dynamo=False)``, constant folding; ``--dtype=float16`` converts
  the graph as mmdeploy's onnxruntime fp16 backend does).

A source provides a component where its library's adapter does (the same ``supports``: a convention
the library lacks is not provided here either). Each source keeps its own known differences
(``known_differences/onnx.toml`` for the reference, ``onnx-<source>.toml`` for a library's).
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from .export import Graph, export_graph, opset_of
from .graphs import GraphInput
from .modules import reference_module


@dataclass(frozen=True)
class Source:
    """A source of exportable modules. ``build(component, structural, profile, weights, dtype)`` returns the module
    (forward: the graph inputs in order -> the graph outputs); ``export(module, graph_inputs, output_axes, example,
    opset, optimize)`` (``output_axes``: each graph output -> its symbolic axes) returns its :class:`Graph`;
    ``library`` is the adapter whose ``supports`` applies (None: every component of conformance/onnx/graphs.py),
    ``version()`` its version."""

    name: str
    components: frozenset[str] | None  # None: every component of conformance/onnx/graphs.py
    build: Callable[..., torch.nn.Module]
    export: Callable[..., Graph]
    exporter: str  # how the export is made, for the report's version line
    library: str | None = None
    default_opset: Callable[[], int] | None = None  # the library exporter's own choice
    version: Callable[[], str] = lambda: ""
    #: The library exporter's float16 graph (``--dtype=float16``): the float32 export converted as it converts it.
    half: Callable[[Any], Any] | None = None
    #: ``weights(component, canonical weights)``: the values of the module's ``initializers`` keys (its parameters
    #: by the library's names), which the adapter swaps into an export of the same graph.
    weights: Callable[[str, Mapping[str, torch.Tensor]], dict[str, torch.Tensor]] = lambda component, w: dict(w)
    #: Whether a weighted graph keeps each parameter as one initializer (exported unoptimized), so that a case's
    #: weights are swapped in; otherwise (an exporter that folds constants, as mmdeploy's does) each case's weights
    #: get their own export.
    swaps_weights: bool = True


def _dynamo_export(module, graph_inputs, output_axes, example, opset, optimize) -> Graph:
    return export_graph(module, graph_inputs, list(output_axes), example, opset, optimize=optimize)


# --------------------------------------------------------------------------- ultralytics

class UltralyticsDetectDecode(torch.nn.Module):
    """box_0 .. box_{L-1} [B, 4 R, h_l, w_l] -> boxes [B, anchors, 4] pixels: ultralytics' ``Detect`` decode
    (``_get_decode_boxes``: ``make_anchors`` from the maps' shapes, DFL expectation, ``dist2bbox``, times the strides)
    with the head in the export mode its ``Exporter`` sets (``export``, ``dynamic``, ``format="onnx"``)."""

    def __init__(self, strides: Sequence[float], fmt: str, reg_max: int, dtype: torch.dtype):
        super().__init__()
        from ultralytics.nn.modules.head import Detect
        self.head = Detect(nc=1, reg_max=reg_max, ch=(1,) * len(strides)).to(dtype).eval()
        self.head.stride = torch.tensor([float(s) for s in strides])
        self.head.xyxy = fmt == "xyxy"
        self.head.export, self.head.dynamic, self.head.format = True, True, "onnx"

    def forward(self, *box_maps: torch.Tensor) -> torch.Tensor:
        b, channels = box_maps[0].shape[:2]
        preds = {"boxes": torch.cat([m.reshape(b, channels, -1) for m in box_maps], 2), "feats": list(box_maps)}
        return self.head._get_decode_boxes(preds).transpose(1, 2)


def _ultralytics_build(component: str, structural: Mapping[str, Any], profile: str,
                       weights: Mapping[str, torch.Tensor], dtype: torch.dtype, tensors: Mapping[str, Any]):
    if component != "heads.yolov8_decode":
        raise KeyError(f"ultralytics exports no {component}")
    channels = tensors["box_0"].shape[1]
    return UltralyticsDetectDecode(structural["strides"], structural["fmt"], channels // 4, dtype)


def _torchscript_export(module, graph_inputs: Sequence[GraphInput], output_axes: Mapping[str, Sequence[int]], example,
                        opset, optimize) -> Graph:
    """ultralytics' ``torch2onnx`` (``torch.onnx.export(dynamo=False)``), every graph input's dynamic axis declared
    in ``dynamic_axes`` and each output's symbolic axes named, as ultralytics' ``Exporter`` does with ``dynamic``."""
    import onnx
    from ultralytics.utils.export.engine import torch2onnx
    dynamic = {gi.name: {axis: name for axis, name in gi.dynamic} for gi in graph_inputs}
    for name, axes in output_axes.items():
        dynamic[name] = {axis: f"{name}_{axis}" for axis in axes}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer chatter
        with torch.no_grad():
            module(*example)  # the Exporter's dry run before it exports (Detect caches its anchors there)
        path = torch2onnx(module, tuple(example), Path(tmp) / "model.onnx", opset=opset,
                          input_names=[gi.name for gi in graph_inputs], output_names=list(output_axes),
                          dynamic=dynamic)
        model = onnx.load(path)
    return Graph(model=model, inputs={gi.name: gi.name for gi in graph_inputs},
                 outputs={n: n for n in output_axes}, opset=opset_of(model), seconds=time.perf_counter() - start)


# --------------------------------------------------------------------------- transformers

class TransformersSine(torch.nn.Module):
    """mask [B, H, W] bool -> pos [B, 2F, H, W]: ``DetrSinePositionEmbedding`` (or Deformable-DETR's) called as
    ``DetrModel`` calls it, with the pixel mask (1 = valid) as int64."""

    def __init__(self, profile: str, num_feats: int, dtype: torch.dtype):
        super().__init__()
        from ..adapters.transformers import sine_position_module
        self.embedding, self.num_feats, self.dtype = sine_position_module(profile, num_feats), num_feats, dtype

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        b, h, w = mask.shape
        return self.embedding((b, 2 * self.num_feats, h, w), mask.device, self.dtype, mask=(~mask).to(torch.int64))


class TransformersEncoder(torch.nn.Module):
    """src, pos [B, L, E], key_padding_mask bool [B, L] -> memory [B, L, E]: ``DetrEncoder`` (attention_mask 1 = valid,
    ``spatial_position_embeddings``)."""

    def __init__(self, weights, structural, dtype):
        super().__init__()
        from ..adapters.transformers import transformer_module
        self.encoder = transformer_module(weights, structural, dtype, encoder=True)
        self.initializers = {name: f"encoder.{name}" for name in self.encoder.state_dict()}

    def forward(self, src, pos, key_padding_mask):
        return self.encoder(inputs_embeds=src, attention_mask=(~key_padding_mask).to(torch.int64),
                            spatial_position_embeddings=pos).last_hidden_state


class TransformersDecoder(torch.nn.Module):
    """tgt, query_pos [B, Q, E], memory, pos [B, L, E], memory_key_padding_mask bool [B, L] -> hidden [layers, B, Q, E]:
    ``DetrDecoder`` (``intermediate_hidden_states`` with ``auxiliary_loss``, else the last hidden state)."""

    def __init__(self, weights, structural, dtype):
        super().__init__()
        from ..adapters.transformers import transformer_module
        self.decoder = transformer_module(weights, structural, dtype, encoder=False)
        self.intermediate = structural.get("return_intermediate", True)
        self.initializers = {name: f"decoder.{name}" for name in self.decoder.state_dict()}

    def forward(self, tgt, memory, pos, query_pos, memory_key_padding_mask):
        out = self.decoder(inputs_embeds=tgt, encoder_hidden_states=memory,
                           encoder_attention_mask=(~memory_key_padding_mask).to(torch.int64),
                           spatial_position_embeddings=pos, object_queries_position_embeddings=query_pos)
        return out.intermediate_hidden_states if self.intermediate else out.last_hidden_state[None]


class TransformersDetrHead(torch.nn.Module):
    """hidden [..., Q, E] -> logits [..., Q, K], boxes [..., Q, 4]: ``DetrForObjectDetection``'s
    ``class_labels_classifier`` and ``bbox_predictor(...).sigmoid()``."""

    def __init__(self, weights, dtype):
        super().__init__()
        from ..adapters.transformers import HEAD_NAMES, detr_head_modules
        self.classifier, self.mlp = detr_head_modules(weights, dtype)
        self.initializers = {name: name for name in HEAD_NAMES}

    def forward(self, hidden):
        return self.classifier(hidden), self.mlp(hidden).sigmoid()


def _transformers_build(component: str, structural: Mapping[str, Any], profile: str,
                        weights: Mapping[str, torch.Tensor], dtype: torch.dtype, tensors: Mapping[str, Any]):
    if component == "position.sine":
        from oracle.conventions import get_profile
        return TransformersSine(profile, structural.get("num_feats", get_profile(profile).position.num_feats), dtype)
    if component == "transformer.encoder":
        return TransformersEncoder(weights, structural, dtype)
    if component == "transformer.decoder":
        return TransformersDecoder(weights, structural, dtype)
    if component == "heads.detr":
        if structural.get("num_reg_fcs", 2) != 2:
            from ..adapters.base import NotProvided
            raise NotProvided("transformers' DETR box head has exactly two hidden layers")
        return TransformersDetrHead(weights, dtype)
    raise KeyError(f"transformers exports no {component}")


def _transformers_weights(component: str, weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The canonical weights by the transformers module's parameter names (``initializers`` keys)."""
    from ..adapters.transformers import HEAD_NAMES, hf_state_dict
    if component == "heads.detr":
        return {name: weights[canonical] for name, canonical in HEAD_NAMES.items()}
    return hf_state_dict(weights, "encoder" if component == "transformer.encoder" else "decoder")


# --------------------------------------------------------------------------- mmdet

class MmdetSine(torch.nn.Module):
    """mask [B, H, W] bool (True = padding) -> pos [B, 2F, H, W]: ``SinePositionalEncoding(mask)``."""

    def __init__(self, profile: str, num_feats: int | None):
        super().__init__()
        from ..adapters.mmdet import sine_position_module
        self.encoding = sine_position_module(profile, num_feats)

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        return self.encoding(mask)


class MmdetEncoder(torch.nn.Module):
    """src, pos [B, L, E], key_padding_mask bool [B, L] -> memory: ``DetrTransformerEncoder(query, query_pos,
    key_padding_mask)``."""

    def __init__(self, weights, structural, dtype):
        super().__init__()
        from ..adapters.mmdet import transformer_module
        self.encoder = transformer_module(weights, structural, dtype, encoder=True)

    def forward(self, src, pos, key_padding_mask):
        return self.encoder(query=src, query_pos=pos, key_padding_mask=key_padding_mask)


class MmdetDecoder(torch.nn.Module):
    """tgt, query_pos [B, Q, E], memory, pos [B, L, E], memory_key_padding_mask bool [B, L] -> hidden
    [layers, B, Q, E]: ``DetrTransformerDecoder(query, key=value=memory, query_pos, key_pos, key_padding_mask)``."""

    def __init__(self, weights, structural, dtype):
        super().__init__()
        from ..adapters.mmdet import transformer_module
        self.decoder = transformer_module(weights, structural, dtype, encoder=False)

    def forward(self, tgt, memory, pos, query_pos, memory_key_padding_mask):
        return self.decoder(query=tgt, key=memory, value=memory, query_pos=query_pos, key_pos=pos,
                            key_padding_mask=memory_key_padding_mask)


class MmdetDetrHead(torch.nn.Module):
    """hidden [..., Q, E] -> logits, boxes: ``DETRHead.forward``."""

    def __init__(self, weights, num_reg_fcs: int, dtype):
        super().__init__()
        from ..adapters.mmdet import detr_head_module
        self.head = detr_head_module(weights, num_reg_fcs, dtype)

    def forward(self, hidden):
        return self.head(hidden)


def _mmdet_build(component: str, structural: Mapping[str, Any], profile: str,
                 weights: Mapping[str, torch.Tensor], dtype: torch.dtype, tensors: Mapping[str, Any]):
    if component == "position.sine":
        return MmdetSine(profile, structural.get("num_feats"))
    if component == "transformer.encoder":
        return MmdetEncoder(weights, structural, dtype)
    if component == "transformer.decoder":
        return MmdetDecoder(weights, structural, dtype)
    if component == "heads.detr":
        return MmdetDetrHead(weights, structural.get("num_reg_fcs", 2), dtype)
    raise KeyError(f"mmdet exports no {component}")


def _mmdeploy_style_export(module, graph_inputs: Sequence[GraphInput], output_axes: Mapping[str, Sequence[int]],
                           example, opset, optimize) -> Graph:
    """``torch.onnx.export(dynamo=False)`` with ``dynamic_axes``, the call mmdeploy makes for mmdet models
    (mmdeploy/apis/onnx/export.py: export_params, constant folding, initializers not inputs), without the function
    rewriters mmdeploy applies around it (mmdeploy is not a dependency); each weighted case exported with its own
    weights (constant folding merges them into other constants)."""
    import onnx
    dynamic = {gi.name: {axis: name for axis, name in gi.dynamic} for gi in graph_inputs}
    for name, axes in output_axes.items():
        dynamic[name] = {axis: f"{name}_{axis}" for axis in axes}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(tmp) / "model.onnx"
        torch.onnx.export(module, tuple(example), str(path), dynamo=False, export_params=True, opset_version=opset,
                          input_names=[gi.name for gi in graph_inputs], output_names=list(output_axes),
                          dynamic_axes=dynamic, keep_initializers_as_inputs=False)
        model = onnx.load(str(path))
    return Graph(model=model, inputs={gi.name: gi.name for gi in graph_inputs},
                 outputs={n: n for n in output_axes}, opset=opset_of(model), seconds=time.perf_counter() - start)


def _mmdeploy_half(model):
    """mmdeploy's onnxruntime fp16 backend (configs/_base_/backends/onnxruntime-fp16.py: precision fp16,
    min_positive_val 1e-7, max_finite_val 1e4, keep_io_types False): the float32 graph converted by the float16
    converter (onnxconverter-common's, vendored in onnxruntime as ``transformers.float16``): float16 inputs, outputs
    and computation."""
    from onnxruntime.transformers import float16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float16.convert_float_to_float16(model, min_positive_val=1e-7, max_finite_val=1e4, keep_io_types=False,
                                                disable_shape_infer=False)


def _mmdet_version() -> str:
    import mmdet
    return mmdet.__version__


def _transformers_version() -> str:
    import transformers
    return transformers.__version__


def _ultralytics_opset() -> int:
    import onnx
    from ultralytics.utils.export.engine import best_onnx_opset
    return int(best_onnx_opset(onnx))


def _ultralytics_half(model):
    """ultralytics' ``quantize=16`` ONNX export on the CPU (engine/exporter.py, export_onnx): the float32 graph
    converted by onnxruntime's ``float16.convert_float_to_float16(keep_io_types=True)``: float16 inside, float32
    inputs and outputs."""
    from onnxruntime.transformers import float16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float16.convert_float_to_float16(model, keep_io_types=True)


def _ultralytics_version() -> str:
    import ultralytics
    return ultralytics.__version__


SOURCES: dict[str, Source] = {
    "reference": Source("reference", None, lambda c, s, p, w, d, t: reference_module(c, s, p, w, d),
                        _dynamo_export, "torch.onnx.export(dynamo=True)"),
    "ultralytics": Source("ultralytics", frozenset({"heads.yolov8_decode"}), _ultralytics_build, _torchscript_export,
                          "ultralytics torch2onnx: torch.onnx.export(dynamo=False)", library="ultralytics",
                          default_opset=_ultralytics_opset, version=_ultralytics_version, half=_ultralytics_half),
    # transformers has no exporter of its own for these modules (its docs point to torch.onnx.export, or optimum):
    # torch.onnx.export(dynamo=True) at --onnx-opset, every batch, length and spatial axis dynamic.
    "transformers": Source("transformers", frozenset({"position.sine", "transformer.encoder", "transformer.decoder",
                                                      "heads.detr"}),
                           _transformers_build, _dynamo_export, "torch.onnx.export(dynamo=True)",
                           library="transformers", version=_transformers_version, weights=_transformers_weights),
    # mmdet deploys through mmdeploy, which exports with torch.onnx.export(dynamo=False) and dynamic_axes (its base
    # config's opset is 11, below the suite's 17: the exports here are made at 17).
    "mmdet": Source("mmdet", frozenset({"position.sine", "transformer.encoder", "transformer.decoder", "heads.detr"}),
                    _mmdet_build, _mmdeploy_style_export, "mmdeploy-style torch.onnx.export(dynamo=False)",
                    library="mmdet", default_opset=lambda: 17, version=_mmdet_version, swaps_weights=False,
                    half=_mmdeploy_half),
}

