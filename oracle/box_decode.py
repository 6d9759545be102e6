"""YOLOv8's inference box decode, the part of the Detect head that deployments export.

For per-level box maps ``[B, 4 * R, H_l, W_l]`` (the DFL logits of the head's box branch, side-major:
channel ``s * R + k`` is bin ``k`` of side ``s`` in l, t, r, b order), strides ``s_l`` and ``R`` bins::

    logits[b, a, s, k]  = the maps flattened row-major per level, levels concatenated     (A = sum H_l W_l)
    dist[b, a, s]       = sum_k softmax_k(logits[b, a, s, :]) * k                          (grid units)
    point[a]            = (x + offset, y + offset) of anchor a in its level's grid
    boxes[b, a]         = dist2bbox(dist[b, a], point[a]) * s_l                            (pixels)

in ``cxcywh`` (ultralytics' default ``xywh=True``) or ``xyxy``. Upstream: ultralytics 8.4
nn/modules/head.py (``Detect._get_decode_boxes``: ``decode_bboxes(dfl(boxes), anchors) * strides``),
nn/modules/block.py (``DFL``: softmax over the bins, then a 1x1 convolution with weights ``arange(R)``),
utils/tal.py (``make_anchors``, ``dist2bbox``). Output layout ``[B, A, 4]`` (ultralytics returns
``[B, 4, A]``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ._checks import as_float64, check_choice, check_finite, check_scalar, fail
from .anchors import anchor_points_formula
from .coders import dfl_expectation_formula, dist2bbox_formula


def yolov8_box_decode(box_maps: Sequence[object], strides: Sequence[float], *, fmt: str = "cxcywh",
                      offset: float = 0.5) -> torch.Tensor:
    """Boxes ``[B, A, 4]`` in pixels (``fmt`` cxcywh or xyxy), float64, from ``box_maps`` (one
    ``[B, 4 * R, H_l, W_l]`` per level) and one stride per level."""
    fmt = check_choice("fmt", fmt, ("xyxy", "cxcywh"))
    if not isinstance(box_maps, (list, tuple)) or not box_maps:
        raise fail("box_maps", "a non-empty list of [B, 4 * reg_max, H, W] tensors, one per level",
                   type(box_maps).__name__)
    if not isinstance(strides, (list, tuple)) or len(strides) != len(box_maps):
        raise fail("strides", f"{len(box_maps)} strides (one per level)", repr(strides))
    maps = [as_float64(f"box_maps[{i}]", m) for i, m in enumerate(box_maps)]
    for i, m in enumerate(maps):
        if m.dim() != 4 or m.shape[1] == 0 or m.shape[1] % 4 or min(m.shape) == 0:
            raise fail(f"box_maps[{i}]", "[B, 4 * reg_max, H, W] with B, reg_max, H, W >= 1", f"shape {tuple(m.shape)}")
        if m.shape[:2] != maps[0].shape[:2]:
            raise fail(f"box_maps[{i}]", f"batch and channels {tuple(maps[0].shape[:2])} (those of level 0)",
                       f"shape {tuple(m.shape)}")
        check_finite(f"box_maps[{i}]", m)
    step = [check_scalar(f"strides[{i}]", s, low=0.0, low_open=True) for i, s in enumerate(strides)]
    return yolov8_box_decode_formula(maps, step, fmt=fmt, offset=check_scalar("offset", offset))


def yolov8_box_decode_formula(box_maps: Sequence[torch.Tensor], strides: Sequence[float], *, fmt: str = "cxcywh",
                              offset: float = 0.5) -> torch.Tensor:
    """:func:`yolov8_box_decode` on checked tensors, in their dtype, in a form ``torch.onnx.export`` traces."""
    first = box_maps[0]
    b, channels = first.shape[0], first.shape[1]
    bins = channels // 4
    logits = torch.cat([m.reshape(b, channels, -1) for m in box_maps], dim=2)  # [B, 4R, A]
    logits = logits.reshape(b, 4, bins, -1).permute(0, 3, 1, 2)  # [B, A, 4, R]
    points, stride = anchor_points_formula([tuple(m.shape[2:]) for m in box_maps], strides, offset,
                                           dtype=first.dtype, device=first.device)
    return dist2bbox_formula(dfl_expectation_formula(logits), points, fmt) * stride


__all__ = ["yolov8_box_decode", "yolov8_box_decode_formula"]
