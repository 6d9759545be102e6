"""The IoU family (IoU, IoF, GIoU, DIoU, CIoU) in float64, with the box formats, their conversion and
area (:mod:`oracle.box_formats`, re-exported here: ``"xyxy"``, ``"cxcywh"``, ``"xywh"``).

Every overlap function is either pairwise (``boxes1`` ``[N, 4]``, ``boxes2`` ``[M, 4]`` give
``[N, M]``) or, with ``aligned=True``, element-wise (both ``[N, 4]``, giving ``[N]``). How the
denominators are guarded is an :class:`~oracle.conventions.IoUConvention`; under the default
(no eps, as DETR and torchvision) a zero denominator is undefined and raises
:class:`~oracle.errors.OracleInputError` naming the pair.

Upstream: torchvision/ops/boxes.py (``box_convert``, ``box_area``, ``box_iou``,
``generalized_box_iou``, ``distance_box_iou``, ``complete_box_iou``), torchvision/ops/*_loss.py,
facebookresearch/detr util/box_ops.py, IDEA-Research/DINO util/box_ops.py,
mmdet/structures/bbox/bbox_overlaps.py, mmdet/models/losses/iou_loss.py (``ciou_loss``),
ultralytics/utils/metrics.py (``bbox_iou``). CIoU follows Zheng et al., arXiv:1911.08287.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from ._checks import TensorLike, check_choice, fail
from .box_formats import (FORMATS, BoxFormat, area, convert, cxcywh_to_xyxy_formula, format_arg,
                          from_xyxy_formula, to_xyxy_formula, validate_boxes, xyxy_to_cxcywh_formula)
from .conventions import IOU_EXACT, IoUConvention
from .errors import OracleInputError

__all__ = ["FORMATS", "BoxFormat", "area", "ciou", "convert", "cxcywh_to_xyxy_formula", "diou", "from_xyxy_formula",
           "giou", "iou", "to_xyxy_formula", "validate_boxes", "xyxy_to_cxcywh_formula"]


# --------------------------------------------------------------------------- shared geometry

@dataclass(frozen=True)
class _PairGeometry:
    """Quantities of box pairs, broadcast to ``[N, M]`` (pairwise) or ``[N]`` (aligned)."""

    inter: torch.Tensor
    area1: torch.Tensor  # with the convention's area_height_eps
    area2: torch.Tensor
    enclose_w: torch.Tensor
    enclose_h: torch.Tensor
    center_dist2: torch.Tensor  # squared distance between the centres
    w1: torch.Tensor
    h1: torch.Tensor
    w2: torch.Tensor
    h2: torch.Tensor
    aligned: bool
    names: tuple[str, str]  # the caller's names of the two box arguments, for error messages

    def pair(self, flat_index: int) -> tuple[int, ...]:
        """The (i,) or (i, j) index of a flat position, for error messages."""
        shape = self.inter.shape
        if self.aligned:
            return (flat_index,)
        return (flat_index // shape[1], flat_index % shape[1])


def _geometry(boxes1: TensorLike, boxes2: TensorLike, *, aligned: bool, fmt: str, conv: IoUConvention,
              names: tuple[str, str]) -> _PairGeometry:
    fmt = format_arg("fmt", fmt)
    if not isinstance(conv, IoUConvention):
        raise fail("convention", "an IoUConvention", type(conv).__name__)
    if not isinstance(aligned, bool):
        raise fail("aligned", "a bool", repr(aligned))
    b1 = to_xyxy_formula(validate_boxes(names[0], boxes1, fmt, rank=2), fmt)
    b2 = to_xyxy_formula(validate_boxes(names[1], boxes2, fmt, rank=2), fmt)
    if aligned:
        if b1.shape[0] != b2.shape[0]:
            raise fail(names[1], f"as many boxes as {names[0]} ({b1.shape[0]}) with aligned=True", f"{b2.shape[0]}")
    else:
        b1, b2 = b1[:, None, :], b2[None, :, :]
    w1, h1 = b1[..., 2] - b1[..., 0], b1[..., 3] - b1[..., 1]
    w2, h2 = b2[..., 2] - b2[..., 0], b2[..., 3] - b2[..., 1]
    iw = torch.minimum(b1[..., 2], b2[..., 2]) - torch.maximum(b1[..., 0], b2[..., 0])
    ih = torch.minimum(b1[..., 3], b2[..., 3]) - torch.maximum(b1[..., 1], b2[..., 1])
    if conv.intersection == "strict":  # torchvision _loss_inter_union: no gradient where boxes only touch
        overlapping = (iw > 0) & (ih > 0)
        inter = torch.where(overlapping, iw * ih, torch.zeros_like(iw))
    else:
        inter = iw.clamp(min=0) * ih.clamp(min=0)
    ew = torch.maximum(b1[..., 2], b2[..., 2]) - torch.minimum(b1[..., 0], b2[..., 0])
    eh = torch.maximum(b1[..., 3], b2[..., 3]) - torch.minimum(b1[..., 1], b2[..., 1])
    # Centre distance from corner sums, ((x1+x2) - (x1'+x2'))^2 / 4, as every upstream writes it.
    dx = (b2[..., 0] + b2[..., 2]) - (b1[..., 0] + b1[..., 2])
    dy = (b2[..., 1] + b2[..., 3]) - (b1[..., 1] + b1[..., 3])
    he = conv.area_height_eps
    return _PairGeometry(
        inter=inter,
        area1=w1 * (h1 + he) if he else w1 * h1,
        area2=w2 * (h2 + he) if he else w2 * h2,
        enclose_w=ew, enclose_h=eh, center_dist2=(dx * dx + dy * dy) / 4,
        w1=w1, h1=h1, w2=w2, h2=h2, aligned=aligned, names=names,
    )


def _guard(den: torch.Tensor, conv: IoUConvention, geo: _PairGeometry, what: str) -> torch.Tensor:
    """Apply the convention's eps to a denominator; refuse a zero one under ``eps_mode='none'``."""
    if conv.eps_mode == "add":
        return den + conv.eps
    if conv.eps_mode == "clamp":
        return den.clamp(min=conv.eps)
    zero = den.detach() == 0
    if bool(zero.any()):
        pair = geo.pair(int(torch.nonzero(zero.flatten())[0]))
        raise OracleInputError(
            f"{geo.names[0]}/{geo.names[1]}: {what} is 0 for the pair at {pair}, so the ratio is undefined (0/0) under "
            f"eps_mode='none'; upstreams without eps return NaN here. Pass a convention with an eps "
            f"(IoUConvention(eps_mode='add' or 'clamp', eps=...)) to get the value that upstream defines."
        )
    return den


def _iou_and_union(geo: _PairGeometry, conv: IoUConvention) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(iou, union, guarded_union)``."""
    union = geo.area1 + geo.area2 - geo.inter
    guarded = _guard(union, conv, geo, "the union area")
    return geo.inter / guarded, union, guarded


def _center_penalty(geo: _PairGeometry, conv: IoUConvention) -> torch.Tensor:
    """DIoU's ``rho^2 / c^2``: squared centre distance over the squared enclosing diagonal."""
    diag2 = geo.enclose_w ** 2 + geo.enclose_h ** 2 + conv.diag_eps
    if conv.diag_eps == 0:
        diag2 = _guard_exact(diag2, geo, "the enclosing box's squared diagonal")
    return geo.center_dist2 / diag2


def _guard_exact(den: torch.Tensor, geo: _PairGeometry, what: str) -> torch.Tensor:
    return _guard(den, IOU_EXACT, geo, what)


# --------------------------------------------------------------------------- public overlaps

_BOX_NAMES = ("boxes1", "boxes2")


def iou(boxes1: TensorLike, boxes2: TensorLike, *, mode: Literal["iou", "iof"] = "iou", aligned: bool = False,
        fmt: BoxFormat = "xyxy", convention: IoUConvention = IOU_EXACT) -> torch.Tensor:
    """Intersection over union (``mode="iou"``) or over the first box's area (``mode="iof"``).

    boxes1 ``[N, 4]``, boxes2 ``[M, 4]`` in ``fmt`` -> ``[N, M]`` (or ``[N]`` with ``aligned``).
    IoU = ``inter / union``; IoF = ``inter / area1`` (mmdet ``bbox_overlaps(mode='iof')``, used for
    ignore regions). Denominators follow ``convention`` (see :class:`IoUConvention`).
    """
    return _iou(boxes1, boxes2, mode=mode, aligned=aligned, fmt=fmt, convention=convention, names=_BOX_NAMES)


def _iou(boxes1: TensorLike, boxes2: TensorLike, *, mode: str, aligned: bool, fmt: str, convention: IoUConvention,
         names: tuple[str, str]) -> torch.Tensor:
    """:func:`iou` with the caller's names of the two box arguments in its errors."""
    mode = check_choice("mode", mode, ("iou", "iof"))
    geo = _geometry(boxes1, boxes2, aligned=aligned, fmt=fmt, conv=convention, names=names)
    if mode == "iof":
        return geo.inter / _guard(geo.area1.expand_as(geo.inter), convention, geo, f"the area of {names[0]}")
    return _iou_and_union(geo, convention)[0]


def giou(boxes1: TensorLike, boxes2: TensorLike, *, aligned: bool = False, fmt: BoxFormat = "xyxy",
         convention: IoUConvention = IOU_EXACT) -> torch.Tensor:
    """Generalised IoU (Rezatofighi et al. 2019): ``iou - (C - U) / C`` with C the enclosing area.

    boxes1 ``[N, 4]``, boxes2 ``[M, 4]`` -> ``[N, M]`` (or ``[N]`` aligned); values in ``[-1, 1]``.
    Under ``eps_mode="add"`` the penalty is ``(C - U) / (C + eps)`` (DINO, torchvision loss,
    ultralytics); under ``"clamp"`` it is ``(C' - U') / C'`` with both clamped (mmdet).
    """
    return _giou(boxes1, boxes2, aligned=aligned, fmt=fmt, convention=convention, names=_BOX_NAMES)


def _giou(boxes1: TensorLike, boxes2: TensorLike, *, aligned: bool, fmt: str, convention: IoUConvention,
          names: tuple[str, str]) -> torch.Tensor:
    """:func:`giou` with the caller's names of the two box arguments in its errors."""
    geo = _geometry(boxes1, boxes2, aligned=aligned, fmt=fmt, conv=convention, names=names)
    value, union, guarded_union = _iou_and_union(geo, convention)
    enclose = geo.enclose_w * geo.enclose_h
    guarded_enclose = _guard(enclose, convention, geo, "the enclosing box's area")
    if convention.eps_mode == "clamp":
        return value - (guarded_enclose - guarded_union) / guarded_enclose
    return value - (enclose - union) / guarded_enclose


def diou(boxes1: TensorLike, boxes2: TensorLike, *, aligned: bool = False, fmt: BoxFormat = "xyxy",
         convention: IoUConvention = IOU_EXACT) -> torch.Tensor:
    """Distance IoU (Zheng et al. 2020): ``iou - rho^2 / c^2``.

    ``rho`` is the distance between the box centres and ``c`` the enclosing box's diagonal
    (``c^2 + diag_eps``). boxes1 ``[N, 4]``, boxes2 ``[M, 4]`` -> ``[N, M]`` (or ``[N]`` aligned).
    """
    return _diou(boxes1, boxes2, aligned=aligned, fmt=fmt, convention=convention, names=_BOX_NAMES)


def _diou(boxes1: TensorLike, boxes2: TensorLike, *, aligned: bool, fmt: str, convention: IoUConvention,
          names: tuple[str, str]) -> torch.Tensor:
    """:func:`diou` with the caller's names of the two box arguments in its errors."""
    geo = _geometry(boxes1, boxes2, aligned=aligned, fmt=fmt, conv=convention, names=names)
    return _iou_and_union(geo, convention)[0] - _center_penalty(geo, convention)


def _aspect_angle(w: torch.Tensor, h: torch.Tensor, conv: IoUConvention, geo: _PairGeometry,
                  which: str) -> torch.Tensor:
    """``atan(w / (h + aspect_height_eps))``, with ``h = 0 < w`` giving pi/2 as upstream's atan(inf)."""
    h = h + conv.aspect_height_eps
    # Only boxes that take part in a pair count: with no box on the other side the result is empty.
    undefined = ((w.detach() == 0) & (h.detach() == 0)).expand(geo.inter.shape)
    if bool(undefined.any()):
        flat = int(torch.nonzero(undefined.flatten())[0])
        raise OracleInputError(
            f"{which}: the CIoU aspect term atan(w / h) is undefined (0/0) for the zero-size box of the pair "
            f"at {geo.pair(flat)}; upstreams without a height eps return NaN. Use a convention with "
            f"aspect_height_eps > 0 (ultralytics, mmdet) to get the value they define."
        )
    # atan2(w, h) equals atan(w / h) for h > 0 and is pi/2 at h = 0, with a finite gradient.
    return torch.atan2(w, h)


def ciou(boxes1: TensorLike, boxes2: TensorLike, *, aligned: bool = False, fmt: BoxFormat = "xyxy",
         convention: IoUConvention = IOU_EXACT) -> torch.Tensor:
    """Complete IoU (Zheng et al. 2020): ``iou - rho^2 / c^2 - alpha * v``.

    ``v = 4 / pi^2 * (atan(w2 / h2) - atan(w1 / h1))^2`` and
    ``alpha = v / (1 - iou + v + ciou_alpha_eps)`` computed without gradient, as every upstream
    does; where ``v = 0`` the product ``alpha * v`` is 0 (its limit; the formula is 0/0 for
    identical boxes without an eps). With ``ciou_alpha_min_iou`` set, ``alpha = 0`` where
    ``iou <= ciou_alpha_min_iou`` (mmdet); with ``ciou_clamp`` the result is clamped to [-1, 1].
    boxes1 ``[N, 4]``, boxes2 ``[M, 4]`` -> ``[N, M]`` (or ``[N]`` aligned).
    """
    return _ciou(boxes1, boxes2, aligned=aligned, fmt=fmt, convention=convention, names=_BOX_NAMES)


def _ciou(boxes1: TensorLike, boxes2: TensorLike, *, aligned: bool, fmt: str, convention: IoUConvention,
          names: tuple[str, str]) -> torch.Tensor:
    """:func:`ciou` with the caller's names of the two box arguments in its errors."""
    geo = _geometry(boxes1, boxes2, aligned=aligned, fmt=fmt, conv=convention, names=names)
    value = _iou_and_union(geo, convention)[0]
    angle1 = _aspect_angle(geo.w1, geo.h1, convention, geo, names[0])
    angle2 = _aspect_angle(geo.w2, geo.h2, convention, geo, names[1])
    v = (4 / math.pi ** 2) * (angle2 - angle1) ** 2
    with torch.no_grad():
        vd, iou_d = v.detach(), value.detach()
        positive = vd > 0
        alpha = torch.where(positive, vd / torch.where(positive, 1 - iou_d + vd + convention.ciou_alpha_eps, 1.0),
                            torch.zeros_like(vd))
        if convention.ciou_alpha_min_iou is not None:
            alpha = alpha * (iou_d > convention.ciou_alpha_min_iou)
    result = value - _center_penalty(geo, convention) - alpha * v
    if convention.ciou_clamp:
        result = result.clamp(min=-1.0, max=1.0)
    return result
