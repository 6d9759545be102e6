"""IoU-family conventions: how each library guards the denominators of IoU, GIoU, DIoU and CIoU
(oracle/boxes.py, oracle/losses.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .._checks import check_choice, check_scalar, fail

EpsMode = Literal["none", "add", "clamp"]


@dataclass(frozen=True)
class IoUConvention:
    """How an IoU-family quantity guards its denominators and which quirks it has.

    Denominators are the union (IoU), the first box's area (IoF) and the enclosing box's area
    (GIoU); ``eps_mode`` says what happens to them:

    - ``"none"``: used as is (DETR ``util/box_ops.py``, torchvision ``ops.box_iou`` and
      ``ops.generalized_box_iou``). A zero denominator (two zero-area boxes) is undefined there
      (upstream gives NaN), so the reference raises :class:`OracleInputError`.
    - ``"add"``: ``den + eps``; the GIoU penalty is ``(C - U) / (C + eps)`` with the raw union
      (DINO/detrex ``util/box_ops.py`` 1e-6; torchvision ``ops/giou_loss.py`` 1e-7;
      ultralytics ``utils/metrics.py::bbox_iou`` 1e-7, whose ``c_area - union`` cancels its eps).
    - ``"clamp"``: ``max(den, eps)``; the GIoU penalty uses the clamped union and clamped
      enclosing area, ``(C' - U') / C'`` (mmdet ``structures/bbox/bbox_overlaps.py``, 1e-6).

    The eps is applied in the units of the boxes given (``units`` records which units the
    upstream works in: mmdet's 1e-6 clamp is in pixels, DINO's 1e-6 in normalised units).

    Further fields, all zero/off by default:

    - ``diag_eps``: added to the squared enclosing diagonal in DIoU/CIoU (torchvision
      ``_box_diou_iou``, ultralytics ``bbox_iou``, mmdet ``ciou_loss``: 1e-7). Always additive.
    - ``area_height_eps``: added to each box height when computing its area (ultralytics
      ``bbox_iou`` with ``xywh=False`` adds eps to ``h1``/``h2`` before ``w*h``).
    - ``aspect_height_eps``: added to each height in the CIoU aspect term ``atan(w / h)``
      (ultralytics ``xywh=False`` and mmdet ``ciou_loss``).
    - ``ciou_alpha_eps``: CIoU trade-off ``alpha = v / (1 - iou + v + ciou_alpha_eps)``
      (torchvision 0.28 ``complete_box_iou`` and ultralytics: eps; mmdet: 0).
    - ``ciou_alpha_min_iou``: if set, ``alpha = 0`` where ``iou <= ciou_alpha_min_iou``
      (mmdet ``ciou_loss`` multiplies by ``(ious > 0.5)``, from the CIoU authors' code).
    - ``ciou_clamp``: clamp CIoU to ``[-1, 1]`` (mmdet ``ciou_loss``).
    - ``intersection``: how the overlap's width and height are cut at 0, which decides the gradient
      where two boxes exactly touch: ``"clamp"`` (``(x2' - x1').clamp(min=0)``: the gradient passes at
      0, as DETR, mmdet and torchvision's pairwise ops compute it) or ``"strict"`` (the intersection
      only where both extents are > 0, else 0: torchvision's ``_loss_inter_union`` in its IoU losses).
      Values are identical.

    In every upstream the CIoU alpha is computed without gradient (``torch.no_grad``); the
    reference does the same, so it is not a field.
    """

    eps_mode: EpsMode = "none"
    eps: float = 0.0
    units: Literal["normalized", "pixel", "any"] = "any"
    diag_eps: float = 0.0
    area_height_eps: float = 0.0
    aspect_height_eps: float = 0.0
    ciou_alpha_eps: float = 0.0
    ciou_alpha_min_iou: float | None = None
    ciou_clamp: bool = False
    intersection: Literal["clamp", "strict"] = "clamp"

    def __post_init__(self) -> None:
        check_choice("IoUConvention.eps_mode", self.eps_mode, ("none", "add", "clamp"))
        check_choice("IoUConvention.intersection", self.intersection, ("clamp", "strict"))
        check_choice("IoUConvention.units", self.units, ("normalized", "pixel", "any"))
        eps = check_scalar("IoUConvention.eps", self.eps, low=0.0)
        if self.eps_mode == "none" and eps != 0.0:
            raise fail("IoUConvention.eps", "0 when eps_mode is 'none'", str(eps))
        if self.eps_mode != "none" and eps == 0.0:
            raise fail("IoUConvention.eps", f"a positive eps for eps_mode {self.eps_mode!r}", "0")
        for name in ("diag_eps", "area_height_eps", "aspect_height_eps", "ciou_alpha_eps"):
            check_scalar(f"IoUConvention.{name}", getattr(self, name), low=0.0)
        if self.ciou_alpha_min_iou is not None:
            check_scalar("IoUConvention.ciou_alpha_min_iou", self.ciou_alpha_min_iou, low=0.0, high=1.0)


#: DETR, Deformable-DETR, torchvision ``generalized_box_iou``, transformers: no eps.
IOU_EXACT = IoUConvention()
#: DINO / detrex ``util/box_ops.py``: ``inter / (union + 1e-6)``, ``(C - U) / (C + 1e-6)``.
IOU_DINO = IoUConvention(eps_mode="add", eps=1e-6, units="normalized")
#: mmdet ``bbox_overlaps(eps=1e-6)`` and ``GIoULoss(eps=1e-6)``: clamp, in pixels.
IOU_MMDET = IoUConvention(eps_mode="clamp", eps=1e-6, units="pixel")
#: mmdet ``ciou_loss(eps=1e-7)`` (mmdet/models/losses/iou_loss.py).
IOU_MMDET_CIOU_LOSS = IoUConvention(eps_mode="add", eps=1e-7, units="pixel", diag_eps=1e-7,
                                    aspect_height_eps=1e-7, ciou_alpha_min_iou=0.5, ciou_clamp=True)
#: torchvision ``box_iou``/``generalized_box_iou`` (no eps) with ``distance_box_iou`` and
#: ``complete_box_iou`` (eps=1e-7 on the squared diagonal and in alpha), torchvision/ops/boxes.py.
IOU_TORCHVISION_PAIRWISE = IoUConvention(diag_eps=1e-7, ciou_alpha_eps=1e-7)
#: torchvision ``generalized_box_iou_loss`` / ``distance_box_iou_loss`` / ``complete_box_iou_loss``
#: (eps=1e-7 on the union, the enclosing area, the diagonal and in alpha), torchvision/ops/*_loss.py.
IOU_TORCHVISION_LOSS = IoUConvention(eps_mode="add", eps=1e-7, diag_eps=1e-7, ciou_alpha_eps=1e-7,
                                     intersection="strict")
#: ultralytics ``bbox_iou(..., xywh=False)`` (utils/metrics.py): eps on heights as well.
IOU_ULTRALYTICS_XYXY = IoUConvention(eps_mode="add", eps=1e-7, diag_eps=1e-7, area_height_eps=1e-7,
                                     aspect_height_eps=1e-7, ciou_alpha_eps=1e-7)
#: ultralytics ``bbox_iou(..., xywh=True)``: the same without the height eps.
IOU_ULTRALYTICS_XYWH = IoUConvention(eps_mode="add", eps=1e-7, diag_eps=1e-7, ciou_alpha_eps=1e-7)
