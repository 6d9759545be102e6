"""Torch modules that the ONNX adapter exports: the reference's own formulas (the ``*_formula`` cores
of oracle/, the same code the float64 reference runs after its input checks) in the export dtype,
with a case's weights as buffers.

Each module's ``forward`` takes the graph inputs of conformance/onnx/graphs.py in order and returns
the graph outputs. Weights are buffers named ``weights__<canonical name with __ for .>``;
``module.initializers`` maps each canonical weight name to that buffer's name, which the exporter
keeps as the initializer's name (export with ``optimize=False``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch

from oracle import conventions as conv
from oracle.box_decode import yolov8_box_decode_formula
from oracle.heads import detr_head_formula
from oracle.masks import nearest_source_index_formula
from oracle.position import sine_encoding_formula
from oracle.transformer import decoder_formula, encoder_formula


class _Weighted(torch.nn.Module):
    def __init__(self, weights: Mapping[str, torch.Tensor], dtype: torch.dtype):
        super().__init__()
        self.initializers: dict[str, str] = {}
        for name, value in sorted(weights.items()):
            buffer = "weights__" + name.replace(".", "__")
            self.register_buffer(buffer, value.detach().to(device="cpu", dtype=dtype).clone())
            self.initializers[name] = buffer

    def weights(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, buffer) for name, buffer in self.initializers.items()}


class SinePosition(torch.nn.Module):
    """mask [B, H, W] bool -> pos [B, 2F, H, W] (oracle.position.sine_encoding_formula)."""

    def __init__(self, convention: conv.SinePEConvention, dtype: torch.dtype):
        super().__init__()
        self.convention, self.dtype = convention, dtype

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        # The cast comes before the cumulative sums: a CumSum over bool is what breaks DETR's export.
        return sine_encoding_formula((~mask).to(self.dtype), self.convention)


class MaskResize(torch.nn.Module):
    """mask [B, H, W] bool, feature [B, C, h, w] -> mask [B, h, w] (PyTorch's nearest rule)."""

    def forward(self, mask: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        rows = nearest_source_index_formula(mask.shape[1], feature.shape[2])
        cols = nearest_source_index_formula(mask.shape[2], feature.shape[3])
        return mask[:, rows][:, :, cols]


class Encoder(_Weighted):
    def __init__(self, weights, dtype, num_layers: int, num_heads: int):
        super().__init__(weights, dtype)
        self.num_layers, self.num_heads = num_layers, num_heads

    def forward(self, src, pos, key_padding_mask):
        return encoder_formula(src, self.weights(), self.num_layers, self.num_heads, pos=pos,
                               key_padding_mask=key_padding_mask)


class Decoder(_Weighted):
    def __init__(self, weights, dtype, num_layers: int, num_heads: int, return_intermediate: bool):
        super().__init__(weights, dtype)
        self.num_layers, self.num_heads, self.return_intermediate = num_layers, num_heads, return_intermediate

    def forward(self, tgt, memory, pos, query_pos, memory_key_padding_mask):
        return decoder_formula(tgt, memory, self.weights(), self.num_layers, self.num_heads, pos=pos,
                               query_pos=query_pos, memory_key_padding_mask=memory_key_padding_mask,
                               return_intermediate=self.return_intermediate)


class DetrHead(_Weighted):
    def __init__(self, weights, dtype, num_reg_fcs: int):
        super().__init__(weights, dtype)
        self.num_reg_fcs = num_reg_fcs

    def forward(self, hidden):
        return detr_head_formula(hidden, self.weights(), num_reg_fcs=self.num_reg_fcs)


class YOLOv8Decode(torch.nn.Module):
    takes_list = True

    def __init__(self, strides: list[float], fmt: str, offset: float):
        super().__init__()
        self.strides, self.fmt, self.offset = [float(s) for s in strides], fmt, float(offset)

    def forward(self, box_maps: list[torch.Tensor]):
        # One list argument (the exporter flattens it to inputs box_0, box_1, ...).
        return yolov8_box_decode_formula(list(box_maps), self.strides, fmt=self.fmt, offset=self.offset)


def reference_module(component: str, structural: Mapping[str, Any], profile: str,
                     weights: Mapping[str, torch.Tensor], dtype: torch.dtype) -> torch.nn.Module:
    """The reference's formula for ``component`` as a module in ``dtype`` (eval mode)."""
    s = structural
    if component == "position.sine":
        convention = conv.get_profile(profile).position
        if "num_feats" in s:
            convention = dataclasses.replace(convention, num_feats=s["num_feats"])
        module = SinePosition(convention, dtype)
    elif component == "masks.resize":
        module = MaskResize()
    elif component == "transformer.encoder":
        module = Encoder(weights, dtype, s["num_layers"], s["num_heads"])
    elif component == "transformer.decoder":
        module = Decoder(weights, dtype, s["num_layers"], s["num_heads"], s["return_intermediate"])
    elif component == "heads.detr":
        module = DetrHead(weights, dtype, s["num_reg_fcs"])
    elif component == "heads.yolov8_decode":
        module = YOLOv8Decode(s["strides"], s["fmt"], s["offset"])
    else:
        raise KeyError(f"no exportable reference module for {component}")
    return module.eval()
