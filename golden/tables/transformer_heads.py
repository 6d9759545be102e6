"""Golden cases of the DETR transformer and the heads (``transformer.*``, ``heads.*``;
conformance/test_transformer_heads.py)."""

from __future__ import annotations

import numpy as np
import torch

from components.canonical import canonical_keys
from oracle import conventions as conv
from oracle import masks as M
from oracle import params as P
from oracle.position import sine_position_encoding

from ..case import Case, f64


def _detr_cases() -> list[Case]:
    cases = []

    def encoder_inputs(rng, sizes, padded, e=16, heads=2, layers=2, seed=830):
        mask = M.padding_mask(sizes, padded)
        b = len(sizes)
        pos = sine_position_encoding(mask, convention=conv.SinePEConvention(num_feats=e // 2))
        return {"src": f64(rng.standard_normal((b, padded[0] * padded[1], e))),
                "pos": pos.flatten(2).transpose(1, 2).contiguous(), "key_padding_mask": mask.flatten(1),
                "weights": canonical_keys(P.encoder_weights(e, 2 * e, layers, seed))}
    cases += [
        Case("transformer.encoder/random-padded", "transformer.encoder", "detr", {"num_layers": 2, "num_heads": 2}, 830,
             ("random",), lambda rng: encoder_inputs(rng, [(3, 4), (2, 5)], (3, 5))),
        Case("transformer.encoder/edge-fully-padded-image", "transformer.encoder", "detr",
             {"num_layers": 1, "num_heads": 2}, 831, ("edge:fully-padded-rows",),
             lambda rng: {**encoder_inputs(rng, [(2, 3)], (2, 3), layers=1),
                          "key_padding_mask": torch.ones(1, 6, dtype=torch.bool)}),
    ]

    def decoder_inputs(rng, b=2, q=4, mem=6, e=16, layers=3, pad=None):
        out = {"tgt": f64(np.zeros((b, q, e))), "memory": f64(rng.standard_normal((b, mem, e))),
               "pos": f64(rng.standard_normal((b, mem, e))), "query_pos": f64(rng.standard_normal((b, q, e))),
               "weights": canonical_keys(P.decoder_weights(e, 2 * e, layers, 840))}
        if pad is not None:
            out["memory_key_padding_mask"] = pad
        return out
    cases += [
        Case("transformer.decoder/random-intermediate", "transformer.decoder", "detr",
             {"num_layers": 3, "num_heads": 4}, 840, ("random",),
             lambda rng: decoder_inputs(rng, pad=torch.tensor([[False] * 6, [False] * 4 + [True] * 2]))),
        Case("transformer.decoder/edge-all-memory-padded", "transformer.decoder", "detr",
             {"num_layers": 2, "num_heads": 2, "return_intermediate": False}, 841, ("edge:fully-padded-rows",),
             lambda rng: decoder_inputs(rng, b=1, layers=2, pad=torch.ones(1, 6, dtype=torch.bool))),
        Case("heads.detr/random", "heads.detr", "detr", {"num_reg_fcs": 2}, 850, ("random",),
             lambda rng: {"hidden": f64(rng.standard_normal((3, 2, 5, 16))),
                          "weights": canonical_keys(P.detr_head_weights(16, 6, 850))}),
        Case("heads.detr/edge-saturated", "heads.detr", "detr", {"num_reg_fcs": 2}, 851, ("edge:saturated-logits",),
             lambda rng: {"hidden": f64(rng.standard_normal((1, 1, 3, 16)) * 40.0),
                          "weights": canonical_keys(P.detr_head_weights(16, 6, 851))}),
    ]
    return cases


def _yolov8_decode_cases() -> list[Case]:
    return [
        Case("heads.yolov8_decode/random-3-levels-xywh", "heads.yolov8_decode", "ultralytics",
             {"strides": [8, 16, 32], "fmt": "cxcywh"}, 1114, ("random",),
             lambda rng: {"box_maps": [f64(rng.standard_normal((2, 64, h, w)) * 3)
                                       for h, w in ((6, 8), (3, 4), (2, 2))]}),
        Case("heads.yolov8_decode/edge-one-cell-levels-xyxy-rectangular", "heads.yolov8_decode", "ultralytics",
             {"strides": [8, 32], "fmt": "xyxy", "offset": 0.5}, 1115, ("edge:one-cell-level",),
             lambda rng: {"box_maps": [f64(rng.standard_normal((1, 64, 1, 5)) * 3),
                                       f64(rng.standard_normal((1, 64, 1, 1)) * 3)]}),
    ]


def cases() -> list[Case]:
    return _detr_cases() + _yolov8_decode_cases()
