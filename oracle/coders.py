"""Box coders in float64: delta-xywh (mmdet, torchvision), distance ltrb (ultralytics), DFL decode.

**Delta-xywh** (R-CNN parameterisation). For an anchor ``(px, py, pw, ph)`` (centre, size) and a
box ``(gx, gy, gw, gh)``::

    d = ((gx - px) / pw, (gy - py) / ph, log(gw / pw), log(gh / ph)),   deltas = (d - means) / stds

and decoding inverts it with the size deltas clamped to ``|log(wh_ratio_clip)|`` (both sides in mmdet,
from above only in torchvision), optional centre clamp (mmdet ``add_ctr_clamp``) and optional
clipping to the image ``[0, W] x [0, H]`` (mmdet ``clip_border`` with ``max_shape``). torchvision's
``BoxCoder(weights)`` is the same code with ``stds = 1 / weights`` and no means; it computes centres
as ``x1 + 0.5 * w`` and multiplies by the weights, so it differs from the reference by float64
rounding only. mmdet's ``bbox2delta`` casts to float32; the reference does not.

**Distances** (ultralytics): a point ``(x, y)`` and a box give ``(l, t, r, b) = (x - x1, y - y1, x2 - x, y2 - y)``.

**DFL decode**: each side is predicted as ``reg_max`` logits over the bins ``0 .. reg_max - 1``; the
distance is the expectation under their softmax.

Upstream: mmdet/models/task_modules/coders/delta_xywh_bbox_coder.py (``bbox2delta``, ``delta2bbox``),
torchvision/models/detection/_utils.py (``BoxCoder``, ``encode_boxes``, ``decode_single``),
ultralytics/utils/tal.py (``dist2bbox``, ``bbox2dist``), ultralytics/utils/loss.py
(``v8DetectionLoss.bbox_decode``, ``BboxLoss``: ``bbox2dist(..., self.reg_max - 1)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from ._checks import (TensorLike, as_float64, check_choice, check_finite, check_last_dim, check_magnitude, check_rank,
                      check_same_shape, check_scalar, fail)
from .box_formats import COORDINATE_BOUND, cxcywh_to_xyxy_formula, validate_boxes, xyxy_to_cxcywh_formula


def _four(name: str, values: object, *, positive: bool) -> tuple[float, float, float, float]:
    if not isinstance(values, (tuple, list)) or len(values) != 4:
        raise fail(name, "four numbers (x, y, w, h)", repr(values))
    return tuple(check_scalar(f"{name}[{i}]", v, low=0.0 if positive else None, low_open=positive)
                 for i, v in enumerate(values))  # type: ignore[return-value]


def _centres_and_sizes(b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(centres [N, 2], sizes [N, 2])`` of xyxy boxes ``[N, 4]``, as mmdet: ``(x1 + x2) * 0.5``, ``x2 - x1``."""
    cxcywh = xyxy_to_cxcywh_formula(b)
    return cxcywh[:, :2], cxcywh[:, 2:]


def _positive_extent(name: str, b: torch.Tensor) -> None:
    """Encoding divides by the anchor's size and takes the log of the target's: both must be > 0."""
    bad = ((b[:, 2] - b[:, 0]) <= 0) | ((b[:, 3] - b[:, 1]) <= 0)
    if bool(bad.any()):
        i = int(torch.nonzero(bad)[0])
        raise fail(name, "boxes of positive width and height (the delta encoding divides by and takes "
                   "logs of sizes)", f"box {b[i].tolist()} at index {i}")


@dataclass(frozen=True)
class DeltaXYWHCoder:
    """The delta-xywh coder's configuration (mmdet ``DeltaXYWHBBoxCoder``).

    - ``means``, ``stds``: delta normalisation, ``deltas = (d - means) / stds``.
    - ``wh_ratio_clip``: size deltas are clamped to ``±|log(wh_ratio_clip)|`` (16/1000: 4.1352).
    - ``wh_clamp``: ``"both"`` (mmdet) or ``"upper"`` (torchvision ``bbox_xform_clip``, no lower clamp).
    - ``clip_border``: clip decoded boxes to ``[0, W] x [0, H]`` when a ``max_shape`` is given.
    - ``add_ctr_clamp``, ``ctr_clamp``: clamp the centre shift ``pw * dx`` to ``±ctr_clamp`` pixels; mmdet
      then clamps the size deltas from above only.
    """

    means: tuple = (0.0, 0.0, 0.0, 0.0)
    stds: tuple = (1.0, 1.0, 1.0, 1.0)
    wh_ratio_clip: float = 16 / 1000
    wh_clamp: Literal["both", "upper"] = "both"
    clip_border: bool = True
    add_ctr_clamp: bool = False
    ctr_clamp: float = 32.0

    def __post_init__(self) -> None:
        _four("means", self.means, positive=False)
        _four("stds", self.stds, positive=True)
        check_scalar("wh_ratio_clip", self.wh_ratio_clip, low=0.0, low_open=True)
        check_choice("wh_clamp", self.wh_clamp, ("both", "upper"))
        check_scalar("ctr_clamp", self.ctr_clamp, low=0.0)

    def _norm(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.tensor(self.means, dtype=torch.float64), torch.tensor(self.stds, dtype=torch.float64))

    def encode(self, anchors: TensorLike, gt: TensorLike) -> torch.Tensor:
        """Deltas ``[N, 4]`` taking ``anchors`` ``[N, 4]`` to ``gt`` ``[N, 4]`` (both xyxy, positive sizes).

        mmdet ``encode(bboxes=anchors, gt_bboxes=gt)``; torchvision's ``encode_single(gt, anchors)``
        takes them in the other order.
        """
        a = validate_boxes("anchors", anchors, "xyxy", rank=2)
        g = validate_boxes("gt", gt, "xyxy", rank=2)
        check_same_shape("gt", g, "anchors", a)
        _positive_extent("anchors", a)
        _positive_extent("gt", g)
        (pxy, pwh), (gxy, gwh) = _centres_and_sizes(a), _centres_and_sizes(g)
        d = torch.cat(((gxy - pxy) / pwh, torch.log(gwh / pwh)), dim=-1)
        means, stds = self._norm()
        return (d - means) / stds

    def decode(self, anchors: TensorLike, deltas: TensorLike, max_shape: Sequence[int] | None = None) -> torch.Tensor:
        """Boxes ``[N, 4]`` xyxy from ``anchors`` ``[N, 4]`` xyxy and ``deltas`` ``[N, 4]``.

        ``max_shape`` is ``(H, W)``; with ``clip_border`` the boxes are clipped to ``[0, W] x [0, H]``
        (mmdet clips to W and H, not W - 1). Zero-size anchors decode to zero-size boxes.
        """
        a = validate_boxes("anchors", anchors, "xyxy", rank=2)
        d = as_float64("deltas", deltas)
        check_rank("deltas", d, 2, "([N, 4] deltas)")
        check_last_dim("deltas", d, 4, "([N, 4] deltas)")
        check_same_shape("deltas", d, "anchors", a)
        check_finite("deltas", d)
        means, stds = self._norm()
        d = d * stds + means
        pxy, pwh = _centres_and_sizes(a)
        shift = pwh * d[:, :2]
        dwh = d[:, 2:]
        max_ratio = abs(math.log(self.wh_ratio_clip))
        if self.add_ctr_clamp:
            shift = shift.clamp(min=-self.ctr_clamp, max=self.ctr_clamp)
            dwh = dwh.clamp(max=max_ratio)
        elif self.wh_clamp == "both":
            dwh = dwh.clamp(min=-max_ratio, max=max_ratio)
        else:
            dwh = dwh.clamp(max=max_ratio)
        gxy = pxy + shift
        gwh = pwh * torch.exp(dwh)
        boxes = cxcywh_to_xyxy_formula(torch.cat((gxy, gwh), dim=-1))
        if self.clip_border and max_shape is not None:
            h, w = (check_scalar(f"max_shape[{i}]", v, low=0.0) for i, v in enumerate(_pair("max_shape", max_shape)))
            upper = torch.tensor([w, h, w, h], dtype=torch.float64)
            # mmdet's delta2bbox (mmdet/models/task_modules/coders/delta_xywh_bbox_coder.py) clips with
            # torch.where(x > max, max, x): a corner exactly on the border keeps its whole gradient, as clamp's
            # lower side does (torch.minimum would split it in half with the border).
            boxes = boxes.clamp(min=0.0)
            boxes = torch.where(boxes > upper, upper, boxes)
        return boxes


def _pair(name: str, value: object) -> tuple:
    if not isinstance(value, (tuple, list, torch.Size)) or len(value) != 2:
        raise fail(name, "an (H, W) pair", repr(value))
    return tuple(value)


#: mmdet ``DeltaXYWHBBoxCoder()`` defaults (RetinaNet, AnchorHead).
CODER_MMDET = DeltaXYWHCoder()
#: torchvision RetinaNet: ``BoxCoder(weights=(1, 1, 1, 1))``, ``bbox_xform_clip = log(1000 / 16)``.
CODER_TORCHVISION_RETINANET = DeltaXYWHCoder(wh_clamp="upper", clip_border=False)
#: torchvision Faster R-CNN box head: ``BoxCoder(weights=(10, 10, 5, 5))``.
CODER_TORCHVISION_RCNN = DeltaXYWHCoder(stds=(0.1, 0.1, 0.2, 0.2), wh_clamp="upper", clip_border=False)


def _points_and_last(name: str, x: TensorLike, size: int, doc: str) -> torch.Tensor:
    """A finite ``[..., size]`` float64 tensor of coordinates at most 1e150 in magnitude (the box bound)."""
    t = as_float64(name, x)
    check_last_dim(name, t, size, doc)
    check_finite(name, t)
    check_magnitude(name, t, COORDINATE_BOUND, "box coordinates", "values")
    return t


def _check_broadcast(name: str, t: torch.Tensor, other_name: str, other: torch.Tensor) -> None:
    """The leading dimensions of ``t`` and ``other`` broadcast together (as the element-wise formulas need)."""
    try:
        torch.broadcast_shapes(t.shape[:-1], other.shape[:-1])
    except RuntimeError:
        raise fail(name, f"leading dimensions that broadcast with those of {other_name} {tuple(other.shape)}",
                   f"shape {tuple(t.shape)}") from None


def dist2bbox(distances: TensorLike, points: TensorLike, *, fmt: Literal["xyxy", "cxcywh"] = "xyxy") -> torch.Tensor:
    """Boxes ``[..., 4]`` (xyxy or cxcywh) from ``distances`` ``[..., 4]`` (l, t, r, b) around ``points`` ``[..., 2]``.

    ``(x1, y1) = point - (l, t)``, ``(x2, y2) = point + (r, b)``, in the units of the inputs
    (ultralytics decodes in grid units). Shapes broadcast as in ultralytics ``dist2bbox``; values are finite and
    at most 1e150 in magnitude (the box coordinate bound).
    """
    fmt = check_choice("fmt", fmt, ("xyxy", "cxcywh"))
    d = _points_and_last("distances", distances, 4, "([..., 4] l, t, r, b distances)")
    p = _points_and_last("points", points, 2, "([..., 2] x, y points)")
    _check_broadcast("points", p, "distances", d)
    return dist2bbox_formula(d, p, fmt)


def dist2bbox_formula(distances: torch.Tensor, points: torch.Tensor, fmt: str) -> torch.Tensor:
    """:func:`dist2bbox` on checked tensors, in their dtype, in a form ``torch.onnx.export`` traces."""
    x1y1, x2y2 = points - distances[..., :2], points + distances[..., 2:]
    if fmt == "xyxy":
        return torch.cat((x1y1, x2y2), dim=-1)
    return xyxy_to_cxcywh_formula(torch.cat((x1y1, x2y2), dim=-1))


def bbox2dist(points: TensorLike, boxes: TensorLike, *, reg_max: int | None = None) -> torch.Tensor:
    """Distances ``[..., 4]`` (l, t, r, b) from ``points`` ``[..., 2]`` to the sides of xyxy ``boxes`` ``[..., 4]``.

    With ``reg_max`` (the number of DFL bins, 16 in YOLOv8) the distances are clamped to
    ``[0, reg_max - 1 - 0.01]``, the range a DFL target may take: ultralytics' ``BboxLoss`` calls
    ``bbox2dist(anchor_points, target_bboxes, self.reg_max - 1)``, which clamps at its argument minus 0.01.
    Without it, points outside the box give negative distances. Leading dimensions broadcast; values are finite
    and at most 1e150 in magnitude (the box coordinate bound).
    """
    p = _points_and_last("points", points, 2, "([..., 2] x, y points)")
    b = validate_boxes("boxes", boxes, "xyxy")
    _check_broadcast("boxes", b, "points", p)
    if reg_max is not None and (isinstance(reg_max, bool) or not isinstance(reg_max, int) or reg_max < 2):
        raise fail("reg_max", "an integer >= 2 (the number of DFL bins)", repr(reg_max))
    dist = torch.cat((p - b[..., :2], b[..., 2:] - p), dim=-1)
    if reg_max is None:
        return dist
    return dist.clamp(min=0.0, max=reg_max - 1 - 0.01)


def dfl_expectation(logits: TensorLike) -> torch.Tensor:
    """Distances ``[..., 4]`` from DFL logits ``[..., 4, reg_max]``: ``sum_k softmax(logits)_k * k``.

    ultralytics ``bbox_decode``: ``pred_dist.view(b, a, 4, reg_max).softmax(3) @ arange(reg_max)``;
    its ``[B, 4 * reg_max, A]`` head output is side-major, so ``permute(0, 2, 1).reshape(B, A, 4, reg_max)``
    gives this layout.
    """
    t = as_float64("logits", logits)
    if t.dim() < 2 or t.shape[-2] != 4 or t.shape[-1] < 1:
        raise fail("logits", "shape [..., 4, reg_max] (l, t, r, b bins)", f"shape {tuple(t.shape)}")
    check_finite("logits", t)
    return dfl_expectation_formula(t)


def dfl_expectation_formula(logits: torch.Tensor) -> torch.Tensor:
    """:func:`dfl_expectation` on a checked tensor, in its dtype, in a form ``torch.onnx.export`` traces."""
    bins = torch.arange(logits.shape[-1], dtype=logits.dtype, device=logits.device)
    return torch.softmax(logits, dim=-1) @ bins
