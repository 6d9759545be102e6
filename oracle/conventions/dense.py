"""Dense-detector conventions: the anchor head's loss configuration (oracle/criteria/anchor_head.py) and
the YOLOv8 loss configuration (oracle/criteria/yolov8.py), with the coder and anchor-generator presets
they are built from (oracle/coders.py, oracle/anchors.py, re-exported here so that the registry names
every preset). The max-IoU and task-aligned assigner conventions are in :mod:`oracle.conventions.matching`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .._checks import check_choice, check_scalar, fail
from ..anchors import ANCHOR_HEAD_ANCHOR_GENERATOR, RETINANET_ANCHOR_GENERATOR, AnchorGenerator
from ..coders import CODER_MMDET, CODER_TORCHVISION_RCNN, CODER_TORCHVISION_RETINANET, DeltaXYWHCoder
from .iou import IOU_MMDET, IOU_ULTRALYTICS_XYXY, IoUConvention
from .matching import (MAX_IOU_RETINANET_MMDET, MAX_IOU_RPN_MMDET, TAL_ULTRALYTICS, TAL_ULTRALYTICS_LEGACY,
                       MaxIoUConvention, TaskAlignedConvention)
from .reduction import FLT_EPS

__all__ = ["ANCHOR_HEAD_ANCHOR_GENERATOR", "ANCHOR_HEAD_MMDET", "CODER_MMDET", "CODER_TORCHVISION_RCNN",
           "CODER_TORCHVISION_RETINANET", "RETINANET_ANCHOR_GENERATOR", "RETINANET_HEAD_MMDET", "YOLOV8_ULTRALYTICS",
           "YOLOV8_ULTRALYTICS_LEGACY", "AnchorGenerator", "AnchorHeadConfig", "DeltaXYWHCoder", "YOLOv8LossConfig"]

Classification = Literal["sigmoid_focal", "sigmoid_ce", "softmax_ce"]
Regression = Literal["smooth_l1", "l1", "giou"]


@dataclass(frozen=True)
class AnchorHeadConfig:
    """An ``AnchorHead``'s loss configuration (constructor arguments plus ``train_cfg``;
    oracle/criteria/anchor_head.py).

    - ``anchor_generator``, ``coder`` (``bbox_coder``), ``assigner`` (``train_cfg.assigner``).
    - ``classification``: ``"sigmoid_focal"`` (``FocalLoss``), ``"sigmoid_ce"``
      (``CrossEntropyLoss(use_sigmoid=True)``) or ``"softmax_ce"`` (``CrossEntropyLoss()``, whose head
      has ``num_classes + 1`` outputs per anchor).
    - ``regression``: ``"smooth_l1"`` (``SmoothL1Loss(beta)``), ``"l1"`` (``L1Loss``) or ``"giou"``
      (``GIoULoss(eps=1e-6)``: ``giou`` convention; needs ``reg_decoded_bbox``).
    - ``sampler``: ``"pseudo"`` or ``"random"`` (sampled indices given; see the module docstring).
    - ``allowed_border``, ``pos_weight``: ``train_cfg`` (``< 0``: no border test; ``<= 0``: weight 1).
    - ``avg_factor_eps``: ``weight_reduce_loss``'s FLT_EPS.
    """

    anchor_generator: AnchorGenerator
    assigner: MaxIoUConvention
    classification: Classification
    regression: Regression
    coder: DeltaXYWHCoder = CODER_MMDET
    reg_decoded_bbox: bool = False
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    smooth_l1_beta: float = 1.0
    loss_weight_cls: float = 1.0
    loss_weight_bbox: float = 1.0
    giou: IoUConvention = IOU_MMDET
    sampler: Literal["pseudo", "random"] = "pseudo"
    allowed_border: float = -1.0
    pos_weight: float = -1.0
    avg_factor_eps: float = FLT_EPS

    def __post_init__(self) -> None:
        name = "AnchorHeadConfig"
        for attr, kind in (("anchor_generator", AnchorGenerator), ("assigner", MaxIoUConvention),
                           ("coder", DeltaXYWHCoder), ("giou", IoUConvention)):
            if not isinstance(getattr(self, attr), kind):
                raise fail(f"{name}.{attr}", f"a {kind.__name__}", type(getattr(self, attr)).__name__)
        check_choice(f"{name}.classification", self.classification, ("sigmoid_focal", "sigmoid_ce", "softmax_ce"))
        check_choice(f"{name}.regression", self.regression, ("smooth_l1", "l1", "giou"))
        check_choice(f"{name}.sampler", self.sampler, ("pseudo", "random"))
        if not isinstance(self.reg_decoded_bbox, bool):
            raise fail(f"{name}.reg_decoded_bbox", "a bool", repr(self.reg_decoded_bbox))
        if self.regression == "giou" and not self.reg_decoded_bbox:
            raise fail(f"{name}.reg_decoded_bbox", "True with regression='giou' (GIoU compares boxes, not deltas; "
                       "mmdet's AnchorHead docstring requires it)", "False")
        check_scalar(f"{name}.focal_alpha", self.focal_alpha, low=0.0, high=1.0)
        check_scalar(f"{name}.focal_gamma", self.focal_gamma, low=0.0)
        check_scalar(f"{name}.smooth_l1_beta", self.smooth_l1_beta, low=0.0, low_open=True)  # mmdet asserts beta > 0
        for attr in ("loss_weight_cls", "loss_weight_bbox", "avg_factor_eps"):
            check_scalar(f"{name}.{attr}", getattr(self, attr), low=0.0)
        check_scalar(f"{name}.allowed_border", self.allowed_border)
        check_scalar(f"{name}.pos_weight", self.pos_weight)

    def cls_out_channels(self, num_classes: int) -> int:
        """Classification outputs per anchor: ``num_classes``, or ``num_classes + 1`` for softmax."""
        return num_classes + 1 if self.classification == "softmax_ce" else num_classes


#: mmdet RetinaNet (configs/_base_/models/retinanet_r50_fpn.py): FocalLoss(gamma 2, alpha 0.25) + L1Loss,
#: MaxIoUAssigner(0.5, 0.4, min_pos_iou=0), PseudoSampler, allowed_border -1, pos_weight -1.
RETINANET_HEAD_MMDET = AnchorHeadConfig(anchor_generator=RETINANET_ANCHOR_GENERATOR, assigner=MAX_IOU_RETINANET_MMDET,
                                        classification="sigmoid_focal", regression="l1")
#: mmdet ``AnchorHead``'s constructor defaults (anchors scales 8/16/32 on strides 4..64, sigmoid
#: CrossEntropyLoss, SmoothL1Loss(beta=1/9)). AnchorHead has no default ``train_cfg``; this preset takes
#: the RPN assigner (MaxIoUAssigner(0.7, 0.3, min_pos_iou=0.3)) with the PseudoSampler that AnchorHead
#: uses when ``train_cfg`` names no sampler.
ANCHOR_HEAD_MMDET = AnchorHeadConfig(anchor_generator=ANCHOR_HEAD_ANCHOR_GENERATOR, assigner=MAX_IOU_RPN_MMDET,
                                     classification="sigmoid_ce", regression="smooth_l1", smooth_l1_beta=1.0 / 9.0)


@dataclass(frozen=True)
class YOLOv8LossConfig:
    """The YOLOv8 loss's settings and conventions (oracle/criteria/yolov8.py's module docstring).

    - ``reg_max``: DFL bins per side (>= 2).
    - ``box_gain``, ``cls_gain``, ``dfl_gain``: ultralytics ``hyp.box/cls/dfl``; the seg gain is ``box_gain``.
    - ``assigner``: the task-aligned assigner's convention (its small-GT side is
      :func:`~oracle.assign.task_aligned.ultralytics_stride_val` of the strides).
    - ``box_iou``: the CIoU convention of the box loss (ultralytics ``bbox_iou(xywh=False)``).
    - ``drop_nonpositive_gts``: ultralytics' ``mask_gt = gt_bboxes.sum(2) > 0`` quirk.
    - ``overlap_mask``: the format of ``masks`` (index maps or per-target masks).
    - ``mask_resize``: ``"upsample_proto"`` (8.4) or ``"downsample_masks"`` (older releases).
    """

    reg_max: int = 16
    box_gain: float = 7.5
    cls_gain: float = 0.5
    dfl_gain: float = 1.5
    assigner: TaskAlignedConvention = TAL_ULTRALYTICS
    box_iou: IoUConvention = IOU_ULTRALYTICS_XYXY
    drop_nonpositive_gts: bool = True
    overlap_mask: bool = True
    mask_resize: Literal["upsample_proto", "downsample_masks"] = "upsample_proto"

    def __post_init__(self) -> None:
        if isinstance(self.reg_max, bool) or not isinstance(self.reg_max, int) or self.reg_max < 2:
            raise fail("YOLOv8LossConfig.reg_max", "an int >= 2 (DFL bins; the reg_max <= 1 L1 path is not modelled)",
                       repr(self.reg_max))
        for name in ("box_gain", "cls_gain", "dfl_gain"):
            check_scalar(f"YOLOv8LossConfig.{name}", getattr(self, name), low=0.0)
        if not isinstance(self.assigner, TaskAlignedConvention):
            raise fail("YOLOv8LossConfig.assigner", "a TaskAlignedConvention", type(self.assigner).__name__)
        if not isinstance(self.box_iou, IoUConvention):
            raise fail("YOLOv8LossConfig.box_iou", "an IoUConvention", type(self.box_iou).__name__)
        check_choice("YOLOv8LossConfig.mask_resize", self.mask_resize, ("upsample_proto", "downsample_masks"))


#: ultralytics 8.4.190 ``v8DetectionLoss`` / ``v8SegmentationLoss`` with cfg/default.yaml.
YOLOV8_ULTRALYTICS = YOLOv8LossConfig()
#: Older YOLOv8 releases: no small-GT enlargement in the assigner (<= 8.2) and nearest-downsampled
#: masks (8.0.x, commit 3acead7).
YOLOV8_ULTRALYTICS_LEGACY = YOLOv8LossConfig(assigner=TAL_ULTRALYTICS_LEGACY, mask_resize="downsample_masks")
