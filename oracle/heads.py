"""The DETR head as a function of explicit weights, in float64.

``hidden`` ``[..., Q, E]`` (e.g. the decoder's ``[L, B, Q, E]``) gives class logits ``[..., Q, K]``
(``cls``: one Linear) and boxes ``[..., Q, 4]`` in normalised cxcywh: ``num_reg_fcs`` x (Linear,
ReLU), then a Linear to 4, then a sigmoid.

Weights: ``cls.weight [K, E]``, ``cls.bias [K]``, ``reg.{i}.weight [E, E]``, ``reg.{i}.bias`` for
``i < num_reg_fcs``, ``reg.out.weight [4, E]``, ``reg.out.bias [4]``. Upstream: mmdet
dense_heads/detr_head.py (``fc_cls``, ``reg_ffn`` with ``num_reg_fcs=2``, ``fc_reg``, sigmoid);
facebookresearch/detr models/detr.py (``class_embed``, ``MLP(hidden, hidden, 4, 3)`` = the same
with two hidden layers).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ._checks import as_float64, check_finite, fail


def detr_head(hidden: object, weights: Mapping[str, object], *, num_reg_fcs: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits [..., Q, K], boxes [..., Q, 4] normalised cxcywh)``."""
    h = as_float64("hidden", hidden)
    if h.dim() < 2:
        raise fail("hidden", "[..., Q, E]", f"shape {tuple(h.shape)}")
    check_finite("hidden", h)
    if not isinstance(num_reg_fcs, int) or num_reg_fcs < 0:
        raise fail("num_reg_fcs", "a non-negative int", repr(num_reg_fcs))
    e = h.shape[-1]

    def get(name: str, rows: int | None) -> torch.Tensor:
        if name not in weights:
            raise fail("weights", f"an entry {name!r}", f"keys {sorted(weights)}")
        t = as_float64(f"weights[{name!r}]", weights[name])
        expected = (rows, e) if name.endswith("weight") else (rows,)
        if rows is None:
            rows = t.shape[0]
            expected = (rows, e) if name.endswith("weight") else (rows,)
        if tuple(t.shape) != expected:
            raise fail(f"weights[{name!r}]", f"shape {expected}", f"shape {tuple(t.shape)}")
        check_finite(f"weights[{name!r}]", t)
        return t
    w_cls = get("cls.weight", None)
    logits = h @ w_cls.T + get("cls.bias", w_cls.shape[0])
    x = h
    for i in range(num_reg_fcs):
        x = torch.relu(x @ get(f"reg.{i}.weight", e).T + get(f"reg.{i}.bias", e))
    boxes = torch.sigmoid(x @ get("reg.out.weight", 4).T + get("reg.out.bias", 4))
    return logits, boxes
