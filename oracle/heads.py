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

from ._checks import TensorLike, as_float64, check_finite, fail


def detr_head(hidden: TensorLike, weights: Mapping[str, object], *,
              num_reg_fcs: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
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
    checked = {"cls.weight": w_cls, "cls.bias": get("cls.bias", w_cls.shape[0]),
               "reg.out.weight": get("reg.out.weight", 4), "reg.out.bias": get("reg.out.bias", 4)}
    for i in range(num_reg_fcs):
        checked.update({f"reg.{i}.weight": get(f"reg.{i}.weight", e), f"reg.{i}.bias": get(f"reg.{i}.bias", e)})
    return detr_head_formula(h, checked, num_reg_fcs=num_reg_fcs)


def detr_head_formula(hidden: torch.Tensor, weights: Mapping[str, torch.Tensor], *,
                      num_reg_fcs: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`detr_head` without input checks, in the dtype of its inputs, in a form ``torch.onnx.export``
    traces (``weights`` as in the module docstring, already checked)."""
    logits = hidden @ weights["cls.weight"].T + weights["cls.bias"]
    x = hidden
    for i in range(num_reg_fcs):
        x = torch.relu(x @ weights[f"reg.{i}.weight"].T + weights[f"reg.{i}.bias"])
    boxes = torch.sigmoid(x @ weights["reg.out.weight"].T + weights["reg.out.bias"])
    return logits, boxes
