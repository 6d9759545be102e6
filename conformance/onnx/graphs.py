"""The ONNX graph of each exportable component: its named inputs and outputs, their dynamic axes, and
how the canonical inputs and outputs of components/contract.py map onto them (docs/onnx.md).

============================  ============================================  =========================
component                     graph inputs (dynamic axes)                   graph outputs
============================  ============================================  =========================
position.sine                 mask bool [batch, height, width]              pos [batch, 2F, height, width]
masks.resize                  mask bool [batch, height, width],             resized_mask bool [batch, h, w]
                              feature [batch, channels, h, w] (its shape)
transformer.encoder           src [batch, length, E], pos [batch, length,   memory [batch, length, E]
                              E], key_padding_mask bool [batch, length]
transformer.decoder           tgt [batch, queries, E], memory, pos          hidden [layers, batch,
                              [batch, length, E], query_pos [batch,         queries, E]
                              queries, E], memory_key_padding_mask bool
heads.detr                    hidden [d0, ..., queries, E]                  logits [..., K], boxes [..., 4]
heads.yolov8_decode           box_0 .. box_{L-1} [batch, 4 R, h_l, w_l]     boxes [batch, anchors, 4]
============================  ============================================  =========================

Optional canonical inputs are fed as their neutral value (no ``pos``: zeros, no padding mask: all
False), which the reference treats identically (``x + 0 == x``; no key blocked). ``structural``
config keys change the graph (they are fixed at export); other keys do not occur for these
components. Weighted components carry their weights as initializers named after the canonical
weight names (``weights/<name>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from components.canonical import dotted_keys

from ..adapters.base import NotProvided


@dataclass(frozen=True)
class GraphInput:
    name: str
    dynamic: tuple[tuple[int, str], ...]  # (axis, symbolic name)
    boolean: bool = False


@dataclass(frozen=True)
class GraphSpec:
    component: str
    inputs: tuple[GraphInput, ...]
    outputs: tuple[tuple[str, tuple[int, ...]], ...]  # (name, axes that must stay symbolic)
    structural: tuple[str, ...] = ()
    weighted: bool = False


def _axes(*names: str) -> tuple[tuple[int, str], ...]:
    return tuple((i, n) for i, n in enumerate(names) if n)


SPECS: dict[str, GraphSpec] = {s.component: s for s in [
    GraphSpec("position.sine", (GraphInput("mask", _axes("batch", "height", "width"), boolean=True),),
              (("pos", (0, 2, 3)),), structural=("num_feats",)),
    GraphSpec("masks.resize", (GraphInput("mask", _axes("batch", "height", "width"), boolean=True),
                               GraphInput("feature", _axes("batch", "", "out_height", "out_width"))),
              (("resized_mask", (0, 1, 2)),)),
    GraphSpec("transformer.encoder", (GraphInput("src", _axes("batch", "length")),
                                      GraphInput("pos", _axes("batch", "length")),
                                      GraphInput("key_padding_mask", _axes("batch", "length"), boolean=True)),
              (("memory", (0, 1)),), structural=("num_layers", "num_heads"), weighted=True),
    GraphSpec("transformer.decoder", (GraphInput("tgt", _axes("batch", "queries")),
                                      GraphInput("memory", _axes("batch", "length")),
                                      GraphInput("pos", _axes("batch", "length")),
                                      GraphInput("query_pos", _axes("batch", "queries")),
                                      GraphInput("memory_key_padding_mask", _axes("batch", "length"), boolean=True)),
              (("hidden", (1, 2)),), structural=("num_layers", "num_heads", "return_intermediate"), weighted=True),
    # heads.detr and heads.yolov8_decode get their inputs from the case (rank, levels): see graph_inputs.
    GraphSpec("heads.detr", (), (("logits", ()), ("boxes", ())), structural=("num_reg_fcs",), weighted=True),
    GraphSpec("heads.yolov8_decode", (), (("boxes", (0, 1)),), structural=("strides", "fmt", "offset")),
]}

STRUCTURAL_DEFAULTS = {"heads.detr": {"num_reg_fcs": 2}, "heads.yolov8_decode": {"fmt": "cxcywh", "offset": 0.5},
                       "transformer.decoder": {"return_intermediate": True}}


def graph_inputs(component: str, inputs: Mapping[str, Any]) -> tuple[GraphInput, ...]:
    """The graph inputs for a case (the DETR head's rank and YOLOv8's number of levels come from it)."""
    if component == "heads.detr":
        rank = inputs["hidden"].dim()
        return (GraphInput("hidden", tuple((i, f"d{i}") for i in range(rank - 2)) + ((rank - 2, "queries"),)),)
    if component == "heads.yolov8_decode":
        return tuple(GraphInput(f"box_{i}", _axes("batch", "", f"height_{i}", f"width_{i}"))
                     for i in range(len(inputs["box_maps"])))
    return SPECS[component].inputs


def output_axes(component: str, inputs: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Per graph output, the axes that must stay symbolic in the exported graph."""
    if component == "heads.detr":
        rank = inputs["hidden"].dim()
        return {"logits": tuple(range(rank - 1)), "boxes": tuple(range(rank - 1))}
    return dict(SPECS[component].outputs)


def structural_config(component: str, config: Mapping[str, Any], profile: str) -> dict[str, Any]:
    """The config keys fixed in an exported graph, with their defaults (the profile's ``num_feats``)."""
    spec = SPECS[component]
    defaults = dict(STRUCTURAL_DEFAULTS.get(component, {}))
    if component == "position.sine":
        from oracle.conventions import get_profile
        defaults["num_feats"] = get_profile(profile).position.num_feats
    full = {**defaults, **config}
    return {k: full[k] for k in spec.structural if k in full}


def canonical_tensors(component: str, inputs: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """``{graph input name: tensor}`` for a canonical call (optional inputs at their neutral value)."""
    if component == "position.sine":
        mask = inputs.get("mask")
        if mask is None:
            mask = torch.zeros(tuple(config["shape"]), dtype=torch.bool)
        return {"mask": mask}
    if component == "masks.resize":
        mask = inputs["mask"]
        if mask.dim() != 3 or mask.dtype != torch.bool:
            raise NotProvided("the exported mask resize takes a bool padding mask [B, H, W]")
        h, w = config["size"]
        return {"mask": mask, "feature": torch.zeros(mask.shape[0], 1, h, w, dtype=torch.float32)}
    if component == "transformer.encoder":
        src = inputs["src"]
        return {"src": src, "pos": _or_zeros(inputs.get("pos"), src),
                "key_padding_mask": _or_false(inputs.get("key_padding_mask"), src.shape[:2])}
    if component == "transformer.decoder":
        tgt, memory = inputs["tgt"], inputs["memory"]
        return {"tgt": tgt, "memory": memory, "pos": _or_zeros(inputs.get("pos"), memory),
                "query_pos": _or_zeros(inputs.get("query_pos"), tgt),
                "memory_key_padding_mask": _or_false(inputs.get("memory_key_padding_mask"), memory.shape[:2])}
    if component == "heads.detr":
        return {"hidden": inputs["hidden"]}
    if component == "heads.yolov8_decode":
        return {f"box_{i}": m for i, m in enumerate(inputs["box_maps"])}
    raise KeyError(component)


def weight_tensors(inputs: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The canonical weights of a case by their dotted names, ``{name: tensor}`` (components/canonical.py)."""
    return dotted_keys(inputs.get("weights", {}))


#: Graph output names that differ from the canonical output (an ONNX graph cannot reuse an input's name).
CANONICAL_OUTPUTS = {"masks.resize": {"resized_mask": "mask"}}


def canonical_outputs(component: str, values: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """``{canonical output: tensor}`` from ``{graph output: array}``."""
    rename = CANONICAL_OUTPUTS.get(component, {})
    return {rename.get(name, name): torch.from_numpy(np.ascontiguousarray(v)) for name, v in values.items()}


def _or_zeros(x: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if x is None else x


def _or_false(x: torch.Tensor | None, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.zeros(shape, dtype=torch.bool) if x is None else x
