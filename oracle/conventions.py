"""Conventions on which detection libraries legitimately differ, as data (DESIGN §4).

Every detail where two upstreams compute "the same" quantity differently is a field of a frozen
dataclass here; a library's choices together form a named :class:`Profile`. The reference takes
these objects as arguments and never makes such a choice silently. The source of each value is
cited next to it; ``../shared/reference/upstream_sources.md`` §F surveys the differences.

Profiles defined so far: ``detr``, ``hf_detr``, ``deformable_detr``, ``hf_deformable_detr``,
``dino``, ``mmdet``, ``torchvision``, ``ultralytics``. Later components extend the dataclasses.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from ._checks import check_choice, check_scalar, fail
from .errors import OracleInputError

#: ``torch.finfo(torch.float32).eps``: mmdet's ``weight_reduce_loss`` adds it to ``avg_factor``
#: even for float64 losses (mmdet/models/losses/utils.py).
FLT_EPS = 1.1920928955078125e-07

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


@dataclass(frozen=True)
class MatcherConvention:
    """The DETR-family Hungarian matching cost (oracle/assign/hungarian.py).

    ``cost = weight_class * class_cost + weight_bbox * L1(cxcywh) + weight_giou * (giou_cost_offset - GIoU)``

    - ``class_cost``: ``"softmax"`` is ``-softmax(logits)[:, label]`` (DETR ``models/matcher.py``,
      transformers ``HungarianMatcher``, mmdet ``ClassificationCost``); ``"focal"`` is
      ``alpha (1-p)^gamma (-log(p + eps)) - (1-alpha) p^gamma (-log(1 - p + eps))`` with
      ``p = sigmoid(logit)`` (DINO/Deformable-DETR ``models/*/matcher.py`` eps 1e-8; mmdet
      ``FocalLossCost`` eps 1e-12). With ``focal_eps = 0`` the logs are computed as log-sigmoid.
    - ``giou``: the GIoU convention of the box cost; if its ``units`` are ``"pixel"`` the boxes
      are scaled by the image size first, as mmdet's ``IoUCost`` does.
    - ``giou_cost_offset``: 0 (``-GIoU``: DETR, transformers, mmdet) or 1 (``1 - GIoU``: ultralytics
      ``models/utils/ops.py``). It shifts every cost by a constant, so the matching is the same but
      the total cost differs.
    """

    class_cost: Literal["softmax", "focal"] = "softmax"
    weight_class: float = 1.0
    weight_bbox: float = 5.0
    weight_giou: float = 2.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    focal_eps: float = 1e-8
    giou: IoUConvention = IOU_EXACT
    giou_cost_offset: float = 0.0

    def __post_init__(self) -> None:
        check_choice("MatcherConvention.class_cost", self.class_cost, ("softmax", "focal"))
        weights = [check_scalar(f"MatcherConvention.{n}", getattr(self, n), low=0.0)
                   for n in ("weight_class", "weight_bbox", "weight_giou")]
        if not any(weights):
            # facebookresearch/detr models/matcher.py asserts the same.
            raise fail("MatcherConvention", "at least one non-zero cost weight", "all weights 0")
        check_scalar("MatcherConvention.focal_alpha", self.focal_alpha, low=0.0, high=1.0)
        check_scalar("MatcherConvention.focal_gamma", self.focal_gamma, low=0.0)
        check_scalar("MatcherConvention.focal_eps", self.focal_eps, low=0.0)
        check_scalar("MatcherConvention.giou_cost_offset", self.giou_cost_offset)
        if not isinstance(self.giou, IoUConvention):
            raise fail("MatcherConvention.giou", "an IoUConvention", type(self.giou).__name__)


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

    Multi-process ``reduce_mean`` (``sync_cls_avg_factor``) is the identity on one process, which
    is what the reference models.
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

    def __post_init__(self) -> None:
        check_choice("MMDetDETRHeadConvention.classification", self.classification, ("softmax", "focal"))
        check_choice("MMDetDETRHeadConvention.enc_targets", self.enc_targets, ("binary", "real"))
        if self.classification == "focal" and self.bg_cls_weight != 0:
            raise fail("MMDetDETRHeadConvention.bg_cls_weight", "0 with focal classification (mmdet sets it so)",
                       str(self.bg_cls_weight))
        for name in ("bg_cls_weight", "loss_weight_cls", "loss_weight_bbox", "loss_weight_iou", "avg_factor_eps"):
            check_scalar(f"MMDetDETRHeadConvention.{name}", getattr(self, name), low=0.0)


_MMDET_FOCAL_COST = MatcherConvention(class_cost="focal", weight_class=2.0, weight_bbox=5.0, weight_giou=2.0,
                                      focal_alpha=0.25, focal_gamma=2.0, focal_eps=1e-12, giou=IOU_MMDET)
#: mmdet DETRHead, configs/detr/detr_r50_8xb2-150e_coco.py.
MMDET_DETR_HEAD = MMDetDETRHeadConvention(
    classification="softmax", bg_cls_weight=0.1, loss_weight_cls=1.0,
    matcher=MatcherConvention(class_cost="softmax", weight_class=1.0, weight_bbox=5.0, weight_giou=2.0,
                              giou=IOU_MMDET))
#: mmdet DeformableDETRHead, configs/deformable_detr/deformable-detr_r50_16xb2-50e_coco.py.
MMDET_DEFORMABLE_DETR_HEAD = MMDetDETRHeadConvention(classification="focal", loss_weight_cls=2.0,
                                                     matcher=_MMDET_FOCAL_COST, enc_targets="binary")
#: mmdet DINOHead, configs/dino/dino-4scale_r50_8xb2-12e_coco.py.
MMDET_DINO_HEAD = MMDetDETRHeadConvention(classification="focal", loss_weight_cls=1.0,
                                          matcher=_MMDET_FOCAL_COST, enc_targets="real")


@dataclass(frozen=True)
class SinePEConvention:
    """Sine positional encoding (oracle/position.py).

    ``temperature``: one value, or ``(temperature_y, temperature_x)`` (DINO's
    ``PositionEmbeddingSineHW``, 20 and 20); ``normalize`` divides the cumulative position by the last
    valid one (plus ``eps``), after adding ``offset`` (0 for DETR and DINO, -0.5 for Deformable-DETR;
    mmdet's ``offset`` is applied before the division the same way), then multiplies by ``scale``.
    Upstream: detr models/position_encoding.py, Deformable-DETR models/position_encoding.py, DINO
    models/dino/position_encoding.py, mmdet models/layers/positional_encoding.py, transformers
    DetrSinePositionEmbedding / DeformableDetrSinePositionEmbedding.
    """

    num_feats: int = 128
    temperature: float | tuple[float, float] = 10000.0
    normalize: bool = True
    scale: float = 2 * 3.141592653589793
    eps: float = 1e-6
    offset: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.num_feats, int) or isinstance(self.num_feats, bool) or self.num_feats < 2 \
                or self.num_feats % 2:
            raise fail("SinePEConvention.num_feats", "an even int >= 2 (sin/cos pairs)", repr(self.num_feats))
        temps = self.temperature if isinstance(self.temperature, tuple) else (self.temperature,)
        if len(temps) not in (1, 2):
            raise fail("SinePEConvention.temperature", "a number or a (y, x) pair", repr(self.temperature))
        for t in temps:
            check_scalar("SinePEConvention.temperature", t, low=0.0, low_open=True)
        check_scalar("SinePEConvention.scale", self.scale, low=0.0, low_open=True)
        check_scalar("SinePEConvention.eps", self.eps, low=0.0)
        check_scalar("SinePEConvention.offset", self.offset)


#: DETR build_position_encoding: PositionEmbeddingSine(hidden_dim // 2, normalize=True).
PE_DETR = SinePEConvention()
#: Deformable-DETR: (y - 0.5) / (y_last + eps) * 2 pi.
PE_DEFORMABLE_DETR = SinePEConvention(offset=-0.5)
#: DINO DINO_4scale.py: pe_temperatureH = pe_temperatureW = 20.
PE_DINO = SinePEConvention(temperature=(20.0, 20.0))


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
    - ``upstream``: the files these values were read from.
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
    notes: tuple[str, ...] = field(default=())


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
            box_iou=IOU_EXACT, iou_loss=IOU_EXACT, matcher=_DETR_MATCHER, background_weight=0.1,
            criterion=SetCriterionConvention(classification="softmax", eos_coef=0.1, class_error=False),
            position=PE_DETR,
            notes=("generalized_box_iou raises ValueError on x1<x0 or y1<y0 (the reference raises OracleInputError)",
                   "the matcher replaces NaN/inf costs by finfo.max; the reference refuses non-finite input"),
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
            # DeformableDetrConfig defaults class_cost=1 (the original repository uses 2).
            matcher=dataclasses.replace(_DEFORMABLE_MATCHER, weight_class=1.0),
            criterion=SetCriterionConvention(classification="focal", cardinality="sigmoid_max_gt_half",
                                             class_error=False, weight_ce=1.0),
            position=PE_DEFORMABLE_DETR,
            notes=("DeformableDetrForObjectDetectionLoss has no two-stage (enc) term",),
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
                     "task_modules/assigners/match_cost.py, configs/detr/detr_r50_8xb2-150e_coco.py",
            box_iou=IOU_MMDET, iou_loss=IOU_MMDET,
            matcher=MatcherConvention(class_cost="softmax", weight_class=1.0, weight_bbox=5.0, weight_giou=2.0,
                                      focal_eps=1e-12, giou=IOU_MMDET),
            avg_factor_eps=FLT_EPS, background_weight=0.1, mmdet_head=MMDET_DETR_HEAD, position=PE_DETR,
            notes=("DETRHead's matcher; Deformable-DETR/DINO heads use FocalLossCost(weight=2, eps=1e-12)",
                   "ciou_loss has its own convention: IOU_MMDET_CIOU_LOSS"),
        ),
        Profile(
            name="torchvision",
            upstream="torchvision 0.28.0 ops/boxes.py, ops/{giou,diou,ciou}_loss.py, ops/focal_loss.py",
            box_iou=IOU_TORCHVISION_PAIRWISE, iou_loss=IOU_TORCHVISION_LOSS, matcher=None,
            notes=("complete_box_iou_loss does not forward its eps to the DIoU part (always 1e-7)",),
        ),
        Profile(
            name="ultralytics",
            upstream="ultralytics 8.4.190 utils/metrics.py (bbox_iou), models/utils/ops.py (HungarianMatcher), "
                     "models/utils/loss.py (DETRLoss)",
            box_iou=IOU_ULTRALYTICS_XYXY, iou_loss=IOU_ULTRALYTICS_XYXY,
            matcher=MatcherConvention(class_cost="focal", weight_class=2.0, weight_bbox=5.0, weight_giou=2.0,
                                      focal_alpha=0.25, focal_gamma=2.0, focal_eps=1e-8, giou=IOU_ULTRALYTICS_XYWH,
                                      giou_cost_offset=1.0),
            focal_gamma=1.5,
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
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        raise OracleInputError(f"profile: expected one of {', '.join(sorted(PROFILES))}, got {name!r}") from None


def _iou_summary(c: IoUConvention) -> str:
    parts = ["no eps" if c.eps_mode == "none" else f"{c.eps_mode} {c.eps:g}"]
    if c.units != "any":
        parts.append(c.units)
    for label, value in (("diag", c.diag_eps), ("area h", c.area_height_eps), ("aspect h", c.aspect_height_eps),
                         ("alpha", c.ciou_alpha_eps)):
        if value:
            parts.append(f"{label} +{value:g}")
    if c.ciou_alpha_min_iou is not None:
        parts.append(f"alpha if iou>{c.ciou_alpha_min_iou:g}")
    if c.ciou_clamp:
        parts.append("clamp [-1,1]")
    return ", ".join(parts)


def _criterion_summary(p: Profile) -> str:
    if p.criterion is not None:
        c = p.criterion
        parts = [f"{c.classification}" + (f" eos {c.eos_coef:g}" if c.classification == "softmax" else ""),
                 f"weights ({c.weight_ce:g}, {c.weight_bbox:g}, {c.weight_giou:g})"]
        if c.keys == "ultralytics":  # its keys have no cardinality_error or class_error
            parts += [f"α{c.focal_alpha:g} γ{c.focal_gamma:g}", f"num_boxes {c.num_boxes}",
                      "ultralytics keys (gained, *_aux summed)"]
        else:
            parts.append(f"cardinality {c.cardinality}")
            if not c.class_error:
                parts.append("no class_error")
        if c.box_diagnostics:
            parts.append("loss_xy/loss_hw")
        return ", ".join(parts)
    if p.mmdet_head is not None:
        h = p.mmdet_head
        return (f"mmdet head: {h.classification}, bg {h.bg_cls_weight:g}, "
                f"weights ({h.loss_weight_cls:g}, {h.loss_weight_bbox:g}, {h.loss_weight_iou:g})")
    return "—"


def profiles_markdown() -> str:
    """A markdown table of every profile's conventions (docs/conventions.md embeds it)."""
    rows = ["| profile | box overlaps | IoU losses | matcher class cost (w_class, w_bbox, w_giou) | avg_factor eps | "
            "background weight | set criterion |",
            "|---|---|---|---|---|---|---|"]
    for p in PROFILES.values():
        m = p.matcher
        if m is None:
            matcher = "—"
        else:
            kind = "softmax" if m.class_cost == "softmax" else f"focal α{m.focal_alpha:g} γ{m.focal_gamma:g} eps {m.focal_eps:g}"
            matcher = f"{kind} ({m.weight_class:g}, {m.weight_bbox:g}, {m.weight_giou:g})"
            if m.giou_cost_offset:
                matcher += f", {m.giou_cost_offset:g} − GIoU"
        bg = "—" if p.background_weight is None else f"{p.background_weight:g}"
        rows.append(f"| `{p.name}` | {_iou_summary(p.box_iou)} | {_iou_summary(p.iou_loss)} | {matcher} | "
                    f"{p.avg_factor_eps:g} | {bg} | {_criterion_summary(p)} |")
    return "\n".join(rows) + "\n"


@dataclass(frozen=True)
class MaxIoUConvention:
    """Which prior learns from which ground-truth box, by IoU (oracle/assign/max_iou.py).

    mmdet ``MaxIoUAssigner`` (mmdet/models/task_modules/assigners/max_iou_assigner.py) and, as a
    variant, torchvision ``Matcher`` (torchvision/models/detection/_utils.py). For each prior, ``best``
    is its largest overlap over the ground truths (the lowest GT index among ties). In order:

    1. every prior starts ignored;
    2. negative where ``best`` lies in the negative range: a number ``t`` gives ``0 <= best < t``, a
       pair ``(lo, hi)`` gives ``lo <= best < hi`` (``neg_iou_thr``). mmdet tests
       ``isinstance(neg_iou_thr, float)`` / ``isinstance(neg_iou_thr, tuple)``, so an int or a list
       silently assigns no negatives there; the reference refuses both. torchvision's negatives are
       ``best < low_threshold`` without the floor at 0: the same on IoU values, which are >= 0;
    3. positive (of its best GT) where ``best >= pos_iou_thr``;
    4. with ``match_low_quality``, for each GT whose own best overlap is ``>= min_pos_iou``: the priors
       tied at that best overlap (all of them with ``gt_max_assign_all``, else the first) become
       positive. ``low_quality_gt`` says of which GT: ``"overwrite"`` (mmdet) of this GT, GTs taken in
       index order so that a later GT overwrites an earlier one (and step 3's choice); ``"own_argmax"``
       (torchvision ``set_low_quality_matches_``) of the prior's own best GT.

    Quirk (mmdet, RetinaNet's ``min_pos_iou=0``): a GT whose best overlap is 0 makes **every** prior
    with overlap 0 to it positive for it. Between the thresholds a prior stays ignored (torchvision's
    ``BETWEEN_THRESHOLDS``).

    Ignore regions: where ``ignore_iof_thr > 0`` and ignore boxes are given, a prior whose largest IoF
    with them is ``> ignore_iof_thr`` gets overlap -1 with every GT (never negative, never positive).
    The IoF is over the prior's area (``ignore_wrt_candidates``) or over the ignore box's area.
    ``iou`` is the convention of these overlaps (mmdet ``BboxOverlaps2D``: clamp 1e-6 in pixels;
    torchvision ``box_iou``: no eps).
    """

    pos_iou_thr: float
    neg_iou_thr: float | tuple[float, float]
    min_pos_iou: float = 0.0
    gt_max_assign_all: bool = True
    match_low_quality: bool = True
    low_quality_gt: Literal["overwrite", "own_argmax"] = "overwrite"
    ignore_iof_thr: float = -1.0
    ignore_wrt_candidates: bool = True
    iou: IoUConvention = IOU_MMDET

    def __post_init__(self) -> None:
        name = "MaxIoUConvention"
        check_choice(f"{name}.low_quality_gt", self.low_quality_gt, ("overwrite", "own_argmax"))
        pos = check_scalar(f"{name}.pos_iou_thr", self.pos_iou_thr, low=0.0, high=1.0)
        lo, hi = self.negative_range
        if self.low_quality_gt == "own_argmax" and not isinstance(self.neg_iou_thr, tuple) and hi > pos:
            raise fail(f"{name}.neg_iou_thr", f"<= pos_iou_thr ({pos}) for the torchvision variant (Matcher asserts "
                       "low_threshold <= high_threshold)", str(hi))
        check_scalar(f"{name}.min_pos_iou", self.min_pos_iou, low=0.0, high=1.0)
        check_scalar(f"{name}.ignore_iof_thr", self.ignore_iof_thr)
        for flag in ("gt_max_assign_all", "match_low_quality", "ignore_wrt_candidates"):
            if not isinstance(getattr(self, flag), bool):
                raise fail(f"{name}.{flag}", "a bool", repr(getattr(self, flag)))
        if not isinstance(self.iou, IoUConvention):
            raise fail(f"{name}.iou", "an IoUConvention", type(self.iou).__name__)

    @property
    def negative_range(self) -> tuple[float, float]:
        """``[lo, hi)`` of the best overlap that makes a prior negative."""
        thr = self.neg_iou_thr
        name = "MaxIoUConvention.neg_iou_thr"
        if isinstance(thr, tuple):
            if len(thr) != 2 or not all(isinstance(v, float) for v in thr):
                raise fail(name, "a float or a (lo, hi) tuple of floats", repr(thr))
            lo = check_scalar(f"{name}[0]", thr[0], low=0.0, high=1.0)
            hi = check_scalar(f"{name}[1]", thr[1], low=0.0, high=1.0)
            if lo > hi:
                raise fail(name, "lo <= hi", repr(thr))
            return lo, hi
        if not isinstance(thr, float):
            raise fail(name, "a float or a (lo, hi) tuple of floats (mmdet assigns no negatives for an int or a "
                       "list: it tests isinstance(neg_iou_thr, float) and isinstance(neg_iou_thr, tuple))",
                       f"{type(thr).__name__} {thr!r}")
        return 0.0, check_scalar(name, thr, low=0.0, high=1.0)


#: mmdet RetinaNet train_cfg (configs/_base_/models/retinanet_r50_fpn.py).
MAX_IOU_RETINANET_MMDET = MaxIoUConvention(pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0.0, ignore_iof_thr=-1.0)
#: mmdet RPN train_cfg (configs/_base_/models/faster-rcnn_r50_fpn.py, ``rpn.assigner``).
MAX_IOU_RPN_MMDET = MaxIoUConvention(pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3, ignore_iof_thr=-1.0)
#: torchvision RetinaNet: ``Matcher(0.5, 0.4, allow_low_quality_matches=True)`` on ``box_iou``
#: (torchvision/models/detection/retinanet.py). Every prior tied at a GT's best IoU gets its own best GT.
MAX_IOU_RETINANET_TORCHVISION = MaxIoUConvention(pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0.0,
                                                 low_quality_gt="own_argmax", iou=IOU_TORCHVISION_PAIRWISE)


@dataclass(frozen=True)
class TaskAlignedConvention:
    """One library's task-aligned assigner (see the module docstring for each step).

    - ``topk``, ``alpha``, ``beta``: top-k size and metric exponents. ultralytics' class defaults are
      13 / 1.0 / 6.0, but ``v8DetectionLoss`` builds it with ``tal_topk=10``, ``alpha=0.5``, ``beta=6``;
      mmdet's TOOD config uses ``topk=13`` and ``assign(alpha=1, beta=6)``.
    - ``overlap``: ``"ciou"`` (clamped at 0) or ``"iou"``, under the IoU convention ``iou``.
    - ``centre_margin``: the strict margin of the centre test (ultralytics 1e-9, mmdet 0.01), pixels.
    - ``enlarge_small_gts``: ultralytics 8.4 enlarges GT sides ``< stride_val`` to ``stride_val`` for
      the centre test only (pass ``stride_val``; :func:`ultralytics_stride_val`).
    - ``selection``: ``"topk_in_box"`` (ultralytics) or ``"topk_then_filter"`` (mmdet).
    - ``clip_topk``: mmdet takes ``min(topk, A)``; ultralytics' ``torch.topk`` raises when
      ``topk > A`` (or ``topk2 > A``), and so does the reference without it.
    - ``resolve``: ``"max_overlap_any_gt"`` (ultralytics) or ``"max_overlap_candidate_gt"`` (mmdet).
    - ``topk2``: ultralytics' second top-k after resolution; None (or equal to ``topk``, which
      ultralytics skips with ``if self.topk2 != self.topk``) disables it.
    - ``normalise_scores``, ``norm_eps``: ultralytics' target-score normalisation (eps 1e-9).
    """

    topk: int = 10
    alpha: float = 0.5
    beta: float = 6.0
    overlap: Literal["ciou", "iou"] = "ciou"
    iou: IoUConvention = IOU_ULTRALYTICS_XYXY
    centre_margin: float = 1e-9
    enlarge_small_gts: bool = True
    selection: Literal["topk_in_box", "topk_then_filter"] = "topk_in_box"
    clip_topk: bool = False
    resolve: Literal["max_overlap_any_gt", "max_overlap_candidate_gt"] = "max_overlap_any_gt"
    topk2: int | None = None
    normalise_scores: bool = True
    norm_eps: float = 1e-9

    def __post_init__(self) -> None:
        for name in ("topk", "topk2"):
            k = getattr(self, name)
            if name == "topk2" and k is None:
                continue
            if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                raise fail(f"TaskAlignedConvention.{name}", "an int >= 1", repr(k))
        check_scalar("TaskAlignedConvention.alpha", self.alpha, low=0.0)
        check_scalar("TaskAlignedConvention.beta", self.beta, low=0.0)
        check_choice("TaskAlignedConvention.overlap", self.overlap, ("ciou", "iou"))
        if not isinstance(self.iou, IoUConvention):
            raise fail("TaskAlignedConvention.iou", "an IoUConvention", type(self.iou).__name__)
        check_scalar("TaskAlignedConvention.centre_margin", self.centre_margin, low=0.0)
        check_choice("TaskAlignedConvention.selection", self.selection, ("topk_in_box", "topk_then_filter"))
        check_choice("TaskAlignedConvention.resolve", self.resolve, ("max_overlap_any_gt", "max_overlap_candidate_gt"))
        # A GT whose positives all have metric 0 would give 0 / 0 without the eps.
        check_scalar("TaskAlignedConvention.norm_eps", self.norm_eps, low=0.0, low_open=self.normalise_scores)

    @property
    def second_topk(self) -> int | None:
        """``topk2`` where it applies (ultralytics skips it when equal to ``topk``)."""
        return None if self.topk2 is None or self.topk2 == self.topk else self.topk2


#: ultralytics 8.4.190 as ``v8DetectionLoss`` builds it (tal_topk=10, alpha=0.5, beta=6.0, eps=1e-9).
TAL_ULTRALYTICS = TaskAlignedConvention()
#: YOLOv8 up to ultralytics 8.2: the same without the small-GT enlargement of the centre test.
TAL_ULTRALYTICS_LEGACY = TaskAlignedConvention(enlarge_small_gts=False)
#: mmdet 3.3.0 ``TaskAlignedAssigner(topk=13)`` with ``assign(alpha=1, beta=6)`` (TOOD config).
TAL_MMDET = TaskAlignedConvention(topk=13, alpha=1.0, beta=6.0, overlap="iou", iou=IOU_MMDET, centre_margin=0.01,
                                  enlarge_small_gts=False, selection="topk_then_filter", clip_topk=True,
                                  resolve="max_overlap_candidate_gt", normalise_scores=False)
