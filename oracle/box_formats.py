"""Box formats: validation, conversion and area, in float64.

Formats (coordinates in any one unit, normalised or pixel):

- ``"xyxy"``: ``(x1, y1, x2, y2)``, corners, ``x2 >= x1`` and ``y2 >= y1``.
- ``"cxcywh"``: ``(cx, cy, w, h)``, centre and size (what ultralytics calls ``xywh``).
- ``"xywh"``: ``(x1, y1, w, h)``, top-left corner and size (torchvision's and COCO's ``xywh``).

This module depends on no convention, so that the coders and the anchor generators, which the
convention registry (:mod:`oracle.conventions`) names, can use it; :mod:`oracle.boxes` re-exports it
beside the IoU family.

Upstream: torchvision/ops/boxes.py (``box_convert``, ``box_area``, ``_box_cxcywh_to_xyxy``),
mmdet/structures/bbox/transforms.py (``bbox_cxcywh_to_xyxy``, ``bbox_xyxy_to_cxcywh``).
"""

from __future__ import annotations

from typing import Literal

import torch

from ._checks import (TensorLike, as_float64, check_choice, check_finite, check_last_dim, check_magnitude, check_rank,
                      fail)

BoxFormat = Literal["xyxy", "cxcywh", "xywh"]
FORMATS: tuple[str, ...] = ("xyxy", "cxcywh", "xywh")

#: The largest box coordinate (or size) accepted: the IoU family squares sums of two coordinates
#: (``(2e150)^2 + (2e150)^2 < 1.8e308``), so larger finite boxes would overflow float64 there.
COORDINATE_BOUND = 1e150


# --------------------------------------------------------------------------- validation

def _check_box_values(name: str, boxes: torch.Tensor, fmt: str) -> None:
    """Finite, at most :data:`COORDINATE_BOUND` in magnitude, and of non-negative extent: ``x2 >= x1, y2 >= y1``
    (xyxy) or ``w, h >= 0``."""
    check_finite(name, boxes)
    check_magnitude(name, boxes, COORDINATE_BOUND, "box areas and squared distances", "coordinates")
    d = boxes.detach()
    if fmt == "xyxy":
        bad = (d[..., 2] < d[..., 0]) | (d[..., 3] < d[..., 1])
        what = "x2 >= x1 and y2 >= y1 (xyxy)"
    else:
        bad = (d[..., 2] < 0) | (d[..., 3] < 0)
        what = f"non-negative width and height ({fmt})"
    if bool(bad.any()):
        idx = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise fail(name, what, f"box {d[idx].tolist()} at index {idx}")


def validate_boxes(name: str, boxes: TensorLike, fmt: BoxFormat, *, rank: int | None = None) -> torch.Tensor:
    """Boxes ``[..., 4]`` (or of the given rank) in ``fmt`` as float64, or an error naming ``name``.

    Refuses a wrong last dimension or rank, NaN/inf, coordinates above :data:`COORDINATE_BOUND` (1e150) in
    magnitude, and negative extents (``x2 < x1``/``y2 < y1`` for xyxy, ``w < 0``/``h < 0`` otherwise).
    Zero-area boxes are legal.
    """
    fmt = format_arg("fmt", fmt)
    t = as_float64(name, boxes)
    check_last_dim(name, t, 4, f"([..., 4] {fmt} boxes)")
    if rank is not None:
        check_rank(name, t, rank, f"([N, 4] {fmt} boxes)")
    _check_box_values(name, t, fmt)
    return t


def format_arg(name: str, fmt: object) -> str:
    """``fmt`` if it is one of :data:`FORMATS`, else an error naming ``name``."""
    return check_choice(name, fmt, FORMATS)


# --------------------------------------------------------------------------- formats and area

def cxcywh_to_xyxy_formula(boxes: torch.Tensor) -> torch.Tensor:
    """``[..., 4]`` cxcywh -> xyxy, ``(cx - w/2, cy - h/2, cx + w/2, cy + h/2)`` as torchvision
    ``_box_cxcywh_to_xyxy`` and mmdet ``bbox_cxcywh_to_xyxy``; unchecked, in the input's dtype (for callers
    that validated their boxes otherwise, or keep what validation refuses, such as crossed corners)."""
    centre, size = boxes[..., :2], boxes[..., 2:]
    return torch.cat((centre - 0.5 * size, centre + 0.5 * size), dim=-1)


def xyxy_to_cxcywh_formula(boxes: torch.Tensor) -> torch.Tensor:
    """``[..., 4]`` xyxy -> cxcywh, ``((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)``; unchecked, in the
    input's dtype (see :func:`cxcywh_to_xyxy_formula`)."""
    low, high = boxes[..., :2], boxes[..., 2:]
    return torch.cat(((low + high) / 2, high - low), dim=-1)


def to_xyxy_formula(b: torch.Tensor, fmt: str) -> torch.Tensor:
    """``[..., 4]`` boxes in ``fmt`` -> xyxy; unchecked, in the input's dtype (``b`` itself for xyxy)."""
    if fmt == "xyxy":
        return b
    if fmt == "cxcywh":
        return cxcywh_to_xyxy_formula(b)
    return torch.cat((b[..., :2], b[..., :2] + b[..., 2:]), dim=-1)


def from_xyxy_formula(b: torch.Tensor, fmt: str) -> torch.Tensor:
    """``[..., 4]`` xyxy boxes -> ``fmt``; unchecked, in the input's dtype (``b`` itself for xyxy)."""
    if fmt == "xyxy":
        return b
    if fmt == "cxcywh":
        return xyxy_to_cxcywh_formula(b)
    return torch.cat((b[..., :2], b[..., 2:] - b[..., :2]), dim=-1)


def convert(boxes: TensorLike, src: BoxFormat, dst: BoxFormat) -> torch.Tensor:
    """Boxes ``[..., 4]`` from format ``src`` to ``dst`` (float64; a new tensor even if src == dst).

    Conversions go through xyxy, with ``cx ± w/2`` as torchvision ``_box_cxcywh_to_xyxy`` and
    mmdet ``bbox_cxcywh_to_xyxy`` compute it. Refuses non-finite values and negative extents.
    """
    src = format_arg("src", src)
    dst = format_arg("dst", dst)
    b = validate_boxes("boxes", boxes, src, rank=None)
    if src == dst:
        return b.clone()
    return from_xyxy_formula(to_xyxy_formula(b, src), dst)


def area(boxes: TensorLike, fmt: BoxFormat = "xyxy") -> torch.Tensor:
    """Areas ``[...]`` of boxes ``[..., 4]`` (torchvision ``box_area``): ``(x2 - x1) * (y2 - y1)``."""
    fmt = format_arg("fmt", fmt)
    b = to_xyxy_formula(validate_boxes("boxes", boxes, fmt, rank=None), fmt)
    return (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
