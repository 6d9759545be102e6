"""Profiles: one library's conventions together, by name; an adapter declares the profile it follows."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..coders import CODER_MMDET, CODER_TORCHVISION_RETINANET, DeltaXYWHCoder
from .._checks import check_scalar
from ..errors import OracleInputError
from .dense import RETINANET_HEAD_MMDET, YOLOV8_ULTRALYTICS, AnchorHeadConfig, YOLOv8LossConfig
from .detr_criteria import MMDET_DETR_HEAD, MMDetDETRHeadConvention, SetCriterionConvention
from .iou import (IOU_DINO, IOU_EXACT, IOU_MMDET, IOU_TORCHVISION_LOSS, IOU_TORCHVISION_PAIRWISE, IOU_ULTRALYTICS_XYWH,
                  IOU_ULTRALYTICS_XYXY, IoUConvention)
from .matching import (MAX_IOU_RETINANET_MMDET, MAX_IOU_RETINANET_TORCHVISION, TAL_MMDET, TAL_ULTRALYTICS,
                       MatcherConvention, MaxIoUConvention, TaskAlignedConvention)
from .position import PE_DEFORMABLE_DETR, PE_DETR, PE_DINO, SinePEConvention
from .reduction import FLT_EPS


@dataclass(frozen=True)
class Profile:
    """One library's choices, by name. An adapter declares the profile it follows.

    - ``box_iou``: the convention of the library's pairwise box-overlap functions.
    - ``iou_loss``: the convention of its IoU-family losses (GIoU loss, CIoU loss).
    - ``matcher``: its Hungarian matching cost, or None where the library has no such matcher.
    - ``avg_factor_eps``: added to a loss normaliser (``sum / (avg_factor + eps)``): 0 for the DETR
      family's ``/ num_boxes``, ``FLT_EPS`` for mmdet's ``weight_reduce_loss``.
    - ``background_weight``: weight of the no-object class in softmax cross-entropy (DETR
      ``eos_coef``, mmdet ``bg_cls_weight``), None where the library has no such class.
    - ``focal_alpha`` / ``focal_gamma``: the sigmoid focal loss parameters it uses by default.
    - ``criterion``: its DETR-family set criterion, where it has one.
    - ``mmdet_head``: its mmdet-style DETR head loss, where it has one.
    - ``position``: its sine positional encoding, where it has one.
    - ``max_iou``, ``task_aligned``: its max-IoU and task-aligned assigners, where it has them.
    - ``coder``: its delta-xywh box coder, ``anchor_head``: its anchor-head loss, ``yolov8``: its YOLOv8 loss,
      where it has one.
    - ``upstream``: the files these values were read from.

    A library with several configurations of a component (mmdet's RetinaNet and RPN assigners, say)
    names here the one its reference configuration uses; the others are presets in the registry
    (:func:`oracle.conventions.named`), which a case or a caller names directly.
    """

    name: str
    upstream: str
    box_iou: IoUConvention
    iou_loss: IoUConvention
    matcher: MatcherConvention | None
    avg_factor_eps: float = 0.0
    background_weight: float | None = None
    focal_alpha: float | None = 0.25
    focal_gamma: float = 2.0
    criterion: SetCriterionConvention | None = None
    mmdet_head: MMDetDETRHeadConvention | None = None
    position: SinePEConvention | None = None
    max_iou: MaxIoUConvention | None = None
    task_aligned: TaskAlignedConvention | None = None
    coder: DeltaXYWHCoder | None = None
    anchor_head: AnchorHeadConfig | None = None
    yolov8: YOLOv8LossConfig | None = None
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        check_scalar("Profile.avg_factor_eps", self.avg_factor_eps, low=0.0)
        if self.background_weight is not None:
            check_scalar("Profile.background_weight", self.background_weight, low=0.0)
        if self.focal_alpha is not None:
            check_scalar("Profile.focal_alpha", self.focal_alpha, low=0.0, high=1.0)
        check_scalar("Profile.focal_gamma", self.focal_gamma, low=0.0)


_DETR_MATCHER = MatcherConvention(class_cost="softmax", weight_class=1.0, weight_bbox=5.0, weight_giou=2.0)
_DEFORMABLE_MATCHER = MatcherConvention(class_cost="focal", weight_class=2.0, weight_bbox=5.0, weight_giou=2.0,
                                        focal_alpha=0.25, focal_gamma=2.0, focal_eps=1e-8)

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="detr",
            upstream="facebookresearch/detr models/matcher.py, models/detr.py, util/box_ops.py (29901c51)",
            box_iou=IOU_EXACT, iou_loss=IOU_EXACT, matcher=_DETR_MATCHER, background_weight=0.1,
            criterion=SetCriterionConvention(classification="softmax", eos_coef=0.1), position=PE_DETR,
        ),
        Profile(
            name="hf_detr",
            upstream="transformers 5.23.0 loss/loss_for_object_detection.py (HungarianMatcher, ImageLoss)",
            # HungarianMatcher.forward: nan_to_num(cost, nan/posinf/neginf=finfo(cost.dtype).max) before the solver.
            box_iou=IOU_EXACT, iou_loss=IOU_EXACT,
            matcher=dataclasses.replace(_DETR_MATCHER, non_finite_cost="max"), background_weight=0.1,
            criterion=SetCriterionConvention(classification="softmax", eos_coef=0.1, class_error=False),
            position=PE_DETR,
            notes=("generalized_box_iou raises ValueError on x1<x0 or y1<y0 (the reference raises OracleInputError)",),
        ),
        Profile(
            name="deformable_detr",
            upstream="fundamentalvision/Deformable-DETR models/matcher.py, models/deformable_detr.py (11169a60)",
            box_iou=IOU_EXACT, iou_loss=IOU_EXACT, matcher=_DEFORMABLE_MATCHER,
            criterion=SetCriterionConvention(classification="focal", weight_ce=2.0), position=PE_DEFORMABLE_DETR,
            notes=("the matcher hard-codes alpha=0.25, gamma=2",),
        ),
        Profile(
            name="hf_deformable_detr",
            upstream="transformers 5.23.0 loss/loss_deformable_detr.py (DeformableDetrHungarianMatcher), "
                     "models/deformable_detr/configuration_deformable_detr.py",
            box_iou=IOU_EXACT, iou_loss=IOU_EXACT,
            # DeformableDetrConfig defaults class_cost=1 (the original repository uses 2); the matcher replaces
            # NaN/inf costs by finfo(cost.dtype).max (DeformableDetrHungarianMatcher.forward, nan_to_num).
            matcher=dataclasses.replace(_DEFORMABLE_MATCHER, weight_class=1.0, non_finite_cost="max"),
            criterion=SetCriterionConvention(classification="focal", cardinality="sigmoid_max_gt_half",
                                             class_error=False, weight_ce=1.0),
            position=PE_DEFORMABLE_DETR,
            notes=("DeformableDetrForObjectDetectionLoss has no two-stage (enc) term though the two_stage model gives "
                   "the encoder proposals: an upstream bug, not a convention (the reference keeps the _enc terms; "
                   "conformance/adapters/known_differences/transformers.toml)",),
        ),
        Profile(
            name="dino",
            upstream="IDEA-Research/DINO models/dino/matcher.py, models/dino/dino.py, util/box_ops.py (faa8520f)",
            box_iou=IOU_DINO, iou_loss=IOU_DINO,
            matcher=MatcherConvention(class_cost="focal", weight_class=2.0, weight_bbox=5.0, weight_giou=2.0,
                                      focal_alpha=0.25, focal_gamma=2.0, focal_eps=1e-8, giou=IOU_DINO),
            criterion=SetCriterionConvention(classification="focal", box_diagnostics=True, giou=IOU_DINO,
                                             weight_ce=1.0, interm_coef=1.0),
            position=PE_DINO,
        ),
        Profile(
            name="mmdet",
            upstream="mmdet 3.3.0 structures/bbox/bbox_overlaps.py, models/losses/{iou_loss,utils}.py, "
                     "task_modules/assigners/match_cost.py, configs/detr/detr_r50_8xb2-150e_coco.py, "
                     "configs/_base_/models/retinanet_r50_fpn.py, configs/tood/tood_r50_fpn_1x_coco.py",
            box_iou=IOU_MMDET, iou_loss=IOU_MMDET,
            matcher=MatcherConvention(class_cost="softmax", weight_class=1.0, weight_bbox=5.0, weight_giou=2.0,
                                      focal_eps=1e-12, giou=IOU_MMDET),
            avg_factor_eps=FLT_EPS, background_weight=0.1, mmdet_head=MMDET_DETR_HEAD, position=PE_DETR,
            # configs/_base_/models/retinanet_r50_fpn.py; the TOOD config's TaskAlignedAssigner.
            max_iou=MAX_IOU_RETINANET_MMDET, task_aligned=TAL_MMDET, coder=CODER_MMDET,
            anchor_head=RETINANET_HEAD_MMDET,
            notes=("DETRHead's matcher; Deformable-DETR/DINO heads use FocalLossCost(weight=2, eps=1e-12)",
                   "ciou_loss has its own convention: IOU_MMDET_CIOU_LOSS"),
        ),
        Profile(
            name="torchvision",
            upstream="torchvision 0.28.0 ops/boxes.py, ops/{giou,diou,ciou}_loss.py, ops/focal_loss.py, "
                     "models/detection/retinanet.py",
            box_iou=IOU_TORCHVISION_PAIRWISE, iou_loss=IOU_TORCHVISION_LOSS, matcher=None,
            # models/detection/retinanet.py: Matcher(0.5, 0.4, allow_low_quality_matches=True), BoxCoder((1, 1, 1, 1)).
            max_iou=MAX_IOU_RETINANET_TORCHVISION, coder=CODER_TORCHVISION_RETINANET,
            notes=("complete_box_iou_loss does not forward its eps to the DIoU part (always 1e-7)",),
        ),
        Profile(
            name="ultralytics",
            upstream="ultralytics 8.4.190 utils/metrics.py (bbox_iou), models/utils/ops.py (HungarianMatcher), "
                     "models/utils/loss.py (DETRLoss), utils/tal.py, utils/loss.py (v8DetectionLoss)",
            box_iou=IOU_ULTRALYTICS_XYXY, iou_loss=IOU_ULTRALYTICS_XYXY,
            matcher=MatcherConvention(class_cost="focal", weight_class=2.0, weight_bbox=5.0, weight_giou=2.0,
                                      focal_alpha=0.25, focal_gamma=2.0, focal_eps=1e-8, giou=IOU_ULTRALYTICS_XYWH,
                                      giou_cost_offset=1.0, non_finite_cost="zero"),
            focal_gamma=1.5, task_aligned=TAL_ULTRALYTICS, yolov8=YOLOV8_ULTRALYTICS,
            # RTDETRDetectionLoss(nc, use_vfl=True) (nn/tasks.py:1043): DETRLoss's defaults gamma 1.5, alpha 0.25
            # and loss_gain class 1, bbox 5, giou 2 (models/utils/loss.py:44-45, 66).
            criterion=SetCriterionConvention(classification="varifocal", focal_alpha=0.25, focal_gamma=1.5,
                                             num_boxes="matched", class_error=False, giou=IOU_ULTRALYTICS_XYWH,
                                             weight_ce=1.0, weight_bbox=5.0, weight_giou=2.0, keys="ultralytics"),
            notes=("bbox_iou(xywh=True) has no height eps: IOU_ULTRALYTICS_XYWH",
                   "DETRLoss hard-codes the matcher gains class 2, bbox 5, giou 2; FocalLoss gamma 1.5"),
        ),
    )
}


def get_profile(name: str) -> Profile:
    """The named profile; an unknown name raises :class:`OracleInputError` listing the known ones."""
    return _get_profile(name, "name")


def _get_profile(name: object, arg: str) -> Profile:
    """:func:`get_profile`, calling the name ``arg`` in its errors."""
    try:
        return PROFILES[name]  # type: ignore[index]
    except (KeyError, TypeError):
        raise OracleInputError(f"{arg}: expected one of {', '.join(sorted(PROFILES))}, got {name!r}") from None
