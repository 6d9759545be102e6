"""DETR-family loss conventions: the set criterion (oracle/criteria/set_criterion.py) and mmdet's DETR
head losses (oracle/criteria/mmdet_detr_head.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .._checks import check_choice, check_scalar, fail
from .iou import IOU_EXACT, IOU_MMDET, IoUConvention
from .matching import MatcherConvention
from .reduction import FLT_EPS


@dataclass(frozen=True)
class SetCriterionConvention:
    """The DETR-family set criterion (oracle/criteria/set_criterion.py).

    - ``classification``: ``"softmax"``: cross-entropy over ``num_classes + 1`` logits with the
      no-object class last, weighted by ``eos_coef`` (DETR models/detr.py, YOLOS, transformers
      ``ImageLoss``); ``"focal"``: sigmoid focal loss over ``num_classes`` logits against a one-hot
      target without the no-object column, summed over images, queries and classes and divided by
      num_boxes (Deformable-DETR and DINO ``loss_labels``: ``mean(1).sum() / num_boxes * Q``);
      ``"varifocal"``: ultralytics RT-DETR's varifocal loss (``DETRLoss(use_vfl=True)``, as
      ``RTDETRDetectionModel.init_criterion`` builds it, nn/tasks.py:1043), over ``num_classes`` logits
      with the same sum / num_boxes: a matched query's target at its class is the IoU of its detached
      box with its target box (under ``giou``; ultralytics models/utils/loss.py:251-253), and every
      element is weighted ``focal_alpha * sigmoid(x)^focal_gamma`` (negatives) or by its IoU target
      (positives), utils/loss.py:52. Quirk: a layer with no matched pair takes the focal loss instead
      (``if num_gts and self.vfl``, models/utils/loss.py:109-112), whose negatives are weighted
      ``1 - focal_alpha``, not ``focal_alpha``. ``focal_alpha``/``focal_gamma`` serve both, as
      ``DETRLoss`` passes one ``gamma``/``alpha`` to ``FocalLoss`` and ``VarifocalLoss`` (loss.py:71-72).
    - ``cardinality``: how ``cardinality_error`` counts predicted objects: ``"argmax_not_last"``
      (DETR's ``argmax != K - 1``, kept unchanged by the original Deformable-DETR and DINO, where the
      last column is a real class) or ``"sigmoid_max_gt_half"`` (transformers' Deformable-DETR).
    - ``num_boxes``: ``"world_mean"``: the target count summed over ranks, divided by the world size,
      clamped to >= 1 (DETR, DINO, transformers); ``"local"``: this rank's count clamped to >= 1
      (ports that drop the all-reduce); ``"matched"``: each layer's own number of matched pairs,
      clamped to >= 1 for the class loss, which is ``min(Q, T_i)`` summed over images (ultralytics
      ``DETRLoss``: ``len(gt_bboxes)`` after indexing by the matching, models/utils/loss.py:245, 256,
      113, 148-150; its denoising part, ``num_dn_group`` times the target count). It differs from the
      target count where an image has more targets than queries. No multi-rank reduction.
    - ``class_error``: whether the last layer logs ``class_error`` (DETR, Deformable-DETR, DINO;
      transformers removed it).
    - ``box_diagnostics``: DINO's unweighted ``loss_xy`` / ``loss_hw``.
    - ``giou``: the IoU convention of ``loss_giou`` (DINO's box_ops add 1e-6), and of the varifocal
      IoU targets (ultralytics: ``bbox_iou(xywh=True)`` for both, IOU_ULTRALYTICS_XYWH).
    - ``weight_*``: the loss coefficients of the weighted total; ``interm_coef`` multiplies DINO's
      ``_interm`` terms. ``class_error``, ``cardinality_error``, ``loss_xy`` and ``loss_hw`` are
      never weighted.
    - ``keys``: the loss dict returned. ``"per_layer"``: unweighted terms per layer with suffixes
      ``_{i}``, ``_enc``, ``_interm``, ``_dn``, ``_dn_{i}`` (DETR, Deformable-DETR, DINO, transformers);
      ``"ultralytics"``: ultralytics ``DETRLoss``'s keys, each term already times its weight
      (``loss_gain``, models/utils/loss.py:117, 148-151): ``loss_class``, ``loss_bbox``, ``loss_giou`` of
      the last layer, ``loss_class_aux``, ``loss_bbox_aux``, ``loss_giou_aux`` summed over every other
      layer (loss.py:178-199; ``_interm`` is RT-DETR's encoder output, which ``RTDETRDetectionModel.loss``
      puts first among them, nn/tasks.py:1080-1081), and with denoising the same six with suffix ``_dn``
      (``loss_class_dn``, ``loss_class_aux_dn``, ...; all 0 without denoising queries,
      ``RTDETRDetectionLoss.forward``, loss.py:331-344). No ``class_error``, ``cardinality_error``, mask
      or two-stage (``_enc``) terms. The total is the plain sum of the values (nn/tasks.py:1087).
    """

    classification: Literal["softmax", "focal", "varifocal"] = "softmax"
    eos_coef: float = 0.1
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    cardinality: Literal["argmax_not_last", "sigmoid_max_gt_half"] = "argmax_not_last"
    num_boxes: Literal["world_mean", "local", "matched"] = "world_mean"
    class_error: bool = True
    box_diagnostics: bool = False
    giou: IoUConvention = IOU_EXACT
    weight_ce: float = 1.0
    weight_bbox: float = 5.0
    weight_giou: float = 2.0
    weight_mask: float = 1.0
    weight_dice: float = 1.0
    interm_coef: float = 1.0
    keys: Literal["per_layer", "ultralytics"] = "per_layer"

    def __post_init__(self) -> None:
        check_choice("SetCriterionConvention.classification", self.classification, ("softmax", "focal", "varifocal"))
        check_choice("SetCriterionConvention.cardinality", self.cardinality, ("argmax_not_last", "sigmoid_max_gt_half"))
        check_choice("SetCriterionConvention.num_boxes", self.num_boxes, ("world_mean", "local", "matched"))
        check_scalar("SetCriterionConvention.eos_coef", self.eos_coef, low=0.0)
        check_scalar("SetCriterionConvention.focal_alpha", self.focal_alpha, low=0.0, high=1.0)
        check_scalar("SetCriterionConvention.focal_gamma", self.focal_gamma, low=0.0)
        for name in ("weight_ce", "weight_bbox", "weight_giou", "weight_mask", "weight_dice", "interm_coef"):
            check_scalar(f"SetCriterionConvention.{name}", getattr(self, name), low=0.0)
        check_choice("SetCriterionConvention.keys", self.keys, ("per_layer", "ultralytics"))
        if self.keys == "ultralytics" and (self.class_error or self.box_diagnostics):
            raise fail("SetCriterionConvention.keys", "'per_layer' with class_error or box_diagnostics ('ultralytics' "
                       "keys have no logged-only terms)", repr(self.keys))


@dataclass(frozen=True)
class MMDetDETRHeadConvention:
    """mmdet 3.3.0's DETR-family head losses (oracle/criteria/mmdet_detr_head.py).

    ``DETRHead.loss_by_feat_single`` (dense_heads/detr_head.py), used by ``DeformableDETRHead``
    and ``DINOHead`` with their own configs:

    - ``classification``: ``"softmax"`` (``CrossEntropyLoss`` over ``num_classes + 1``, the
      background class weighted ``bg_cls_weight``) or ``"focal"`` (``FocalLoss``, no background
      column, ``bg_cls_weight`` 0).
    - ``cls_avg_factor = num_pos + num_neg * bg_cls_weight``, then ``max(., 1)``; every loss is
      ``sum / (avg_factor + avg_factor_eps)`` (``weight_reduce_loss``, FLT_EPS) times its
      ``loss_weight_*``. The box losses' ``avg_factor`` is ``max(num_pos, 1)``, where ``num_pos`` is
      the number of matched queries (not the ground-truth count).
    - ``iou``: ``GIoULoss(eps=1e-6)`` on pixel xyxy boxes (clamp). L1 is on normalised cxcywh.
    - ``enc_targets``: the two-stage encoder loss uses class-agnostic targets (``"binary"``,
      ``DeformableDETRHead``) or the real labels (``"real"``, ``DINOHead``).
    - ``matcher``: the ``HungarianAssigner`` match costs.

    - ``sync_cls_avg_factor``: over the ranks of a process group, ``cls_avg_factor`` is the mean of every
      rank's (``reduce_mean``, before the clamp to 1); otherwise this rank's own. ``num_pos`` for the box
      losses is always the ranks' mean (``torch.clamp(reduce_mean(num_total_pos), min=1)``). On one process
      both are the identity.
    """

    classification: Literal["softmax", "focal"]
    matcher: MatcherConvention
    bg_cls_weight: float = 0.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    loss_weight_cls: float = 1.0
    loss_weight_bbox: float = 5.0
    loss_weight_iou: float = 2.0
    iou: IoUConvention = IOU_MMDET
    avg_factor_eps: float = FLT_EPS
    enc_targets: Literal["binary", "real"] = "real"
    sync_cls_avg_factor: bool = False

    def __post_init__(self) -> None:
        check_choice("MMDetDETRHeadConvention.classification", self.classification, ("softmax", "focal"))
        check_choice("MMDetDETRHeadConvention.enc_targets", self.enc_targets, ("binary", "real"))
        if self.classification == "focal" and self.bg_cls_weight != 0:
            raise fail("MMDetDETRHeadConvention.bg_cls_weight", "0 with focal classification (mmdet sets it so)",
                       str(self.bg_cls_weight))
        for name in ("bg_cls_weight", "loss_weight_cls", "loss_weight_bbox", "loss_weight_iou", "avg_factor_eps"):
            check_scalar(f"MMDetDETRHeadConvention.{name}", getattr(self, name), low=0.0)
        check_scalar("MMDetDETRHeadConvention.focal_alpha", self.focal_alpha, low=0.0, high=1.0)
        check_scalar("MMDetDETRHeadConvention.focal_gamma", self.focal_gamma, low=0.0)


_MMDET_FOCAL_COST = MatcherConvention(class_cost="focal", weight_class=2.0, weight_bbox=5.0, weight_giou=2.0,
                                      focal_alpha=0.25, focal_gamma=2.0, focal_eps=1e-12, giou=IOU_MMDET)
#: mmdet DETRHead, configs/detr/detr_r50_8xb2-150e_coco.py.
MMDET_DETR_HEAD = MMDetDETRHeadConvention(
    classification="softmax", bg_cls_weight=0.1, loss_weight_cls=1.0,
    matcher=MatcherConvention(class_cost="softmax", weight_class=1.0, weight_bbox=5.0, weight_giou=2.0,
                              giou=IOU_MMDET))
#: mmdet DeformableDETRHead, configs/deformable_detr/deformable-detr_r50_16xb2-50e_coco.py.
MMDET_DEFORMABLE_DETR_HEAD = MMDetDETRHeadConvention(classification="focal", loss_weight_cls=2.0,
                                                     matcher=_MMDET_FOCAL_COST, enc_targets="binary",
                                                     sync_cls_avg_factor=True)
#: mmdet DINOHead, configs/dino/dino-4scale_r50_8xb2-12e_coco.py.
MMDET_DINO_HEAD = MMDetDETRHeadConvention(classification="focal", loss_weight_cls=1.0,
                                          matcher=_MMDET_FOCAL_COST, enc_targets="real", sync_cls_avg_factor=True)
