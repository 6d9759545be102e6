"""Conventions on which detection libraries legitimately differ, as data (DESIGN §4).

Every detail where two upstreams compute "the same" quantity differently is a field of a frozen
dataclass in this package; a library's choices together form a named :class:`Profile`. The reference
takes these objects as arguments and never makes such a choice silently. The source of each value is
cited next to it; ``../shared/reference/upstream_sources.md`` §F surveys the differences.

By area: :mod:`~oracle.conventions.iou` (the IoU family), :mod:`~oracle.conventions.matching`
(Hungarian, max-IoU and task-aligned assigners), :mod:`~oracle.conventions.detr_criteria` (the set
criterion, mmdet's DETR heads), :mod:`~oracle.conventions.position` (sine positional encoding),
:mod:`~oracle.conventions.dense` (anchor head, YOLOv8 loss, coders, anchor generators),
:mod:`~oracle.conventions.reduction` (``FLT_EPS``) and :mod:`~oracle.conventions.profiles`.
Everything is re-exported here, and :func:`named` is the one registry of presets and profiles
(:mod:`~oracle.conventions.registry`).

Profiles: ``detr``, ``hf_detr``, ``deformable_detr``, ``hf_deformable_detr``, ``dino``, ``mmdet``,
``torchvision``, ``ultralytics``.
"""

from __future__ import annotations

from ._render import profiles_markdown
from .dense import (ANCHOR_HEAD_ANCHOR_GENERATOR, ANCHOR_HEAD_MMDET, CODER_MMDET, CODER_TORCHVISION_RCNN,
                    CODER_TORCHVISION_RETINANET, RETINANET_ANCHOR_GENERATOR, RETINANET_HEAD_MMDET,
                    YOLOV8_ULTRALYTICS, YOLOV8_ULTRALYTICS_LEGACY, AnchorGenerator, AnchorHeadConfig,
                    DeltaXYWHCoder, YOLOv8LossConfig)
from .detr_criteria import (MMDET_DEFORMABLE_DETR_HEAD, MMDET_DETR_HEAD, MMDET_DINO_HEAD, MMDetDETRHeadConvention,
                            SetCriterionConvention)
from .iou import (IOU_DINO, IOU_EXACT, IOU_MMDET, IOU_MMDET_CIOU_LOSS, IOU_TORCHVISION_LOSS, IOU_TORCHVISION_PAIRWISE,
                  IOU_ULTRALYTICS_XYWH, IOU_ULTRALYTICS_XYXY, EpsMode, IoUConvention)
from .matching import (MAX_IOU_RETINANET_MMDET, MAX_IOU_RETINANET_TORCHVISION, MAX_IOU_RPN_MMDET, TAL_MMDET,
                       TAL_ULTRALYTICS, TAL_ULTRALYTICS_LEGACY, MatcherConvention, MaxIoUConvention,
                       TaskAlignedConvention)
from .position import PE_DEFORMABLE_DETR, PE_DETR, PE_DINO, SinePEConvention
from .profiles import PROFILES, Profile, get_profile
from .reduction import FLT_EPS
from .registry import PRESETS, PROFILE_FIELDS, lookup, named, presets_of, profiles_with

__all__ = [
    "ANCHOR_HEAD_ANCHOR_GENERATOR", "ANCHOR_HEAD_MMDET", "CODER_MMDET", "CODER_TORCHVISION_RCNN",
    "CODER_TORCHVISION_RETINANET", "FLT_EPS", "IOU_DINO", "IOU_EXACT", "IOU_MMDET", "IOU_MMDET_CIOU_LOSS",
    "IOU_TORCHVISION_LOSS", "IOU_TORCHVISION_PAIRWISE", "IOU_ULTRALYTICS_XYWH", "IOU_ULTRALYTICS_XYXY",
    "MAX_IOU_RETINANET_MMDET", "MAX_IOU_RETINANET_TORCHVISION", "MAX_IOU_RPN_MMDET", "MMDET_DEFORMABLE_DETR_HEAD",
    "MMDET_DETR_HEAD", "MMDET_DINO_HEAD", "PE_DEFORMABLE_DETR", "PE_DETR", "PE_DINO", "PRESETS", "PROFILES",
    "PROFILE_FIELDS", "RETINANET_ANCHOR_GENERATOR", "RETINANET_HEAD_MMDET", "TAL_MMDET", "TAL_ULTRALYTICS",
    "TAL_ULTRALYTICS_LEGACY", "YOLOV8_ULTRALYTICS", "YOLOV8_ULTRALYTICS_LEGACY",
    "AnchorGenerator", "AnchorHeadConfig", "DeltaXYWHCoder", "EpsMode", "IoUConvention", "MMDetDETRHeadConvention",
    "MatcherConvention", "MaxIoUConvention", "Profile", "SetCriterionConvention", "SinePEConvention",
    "TaskAlignedConvention", "YOLOv8LossConfig",
    "get_profile", "lookup", "named", "presets_of", "profiles_markdown", "profiles_with",
]
