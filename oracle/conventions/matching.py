"""Assigner conventions: which prediction learns from which target, by Hungarian matching
(oracle/assign/hungarian.py), by maximum IoU (oracle/assign/max_iou.py) and by task alignment
(oracle/assign/task_aligned.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .._checks import check_choice, check_scalar, fail
from .iou import IOU_EXACT, IOU_MMDET, IOU_TORCHVISION_PAIRWISE, IOU_ULTRALYTICS_XYXY, IoUConvention


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

    - ``non_finite_cost``: what a non-finite prediction (a NaN or ±inf logit or box coordinate) does. ``"raise"``
      (DETR, DINO, Deformable-DETR, mmdet: scipy's ``linear_sum_assignment`` raises "matrix contains invalid numeric
      entries"; the reference raises OracleInputError). ``"max"`` (transformers 5.23.0
      ``loss/loss_for_object_detection.py``, ``loss_deformable_detr.py``, ``loss_rt_detr.py``: ``torch.nan_to_num``
      to ``finfo(cost.dtype).max`` before the solver): every cost entry that comes out non-finite is avoided
      wherever a matching can avoid it, and the finite entries are matched optimally; the reference puts the big-M
      ``(2 min(Q, T) + 1) * max(1, max |finite entry|)`` there (oracle/assign/hungarian.py). ``"zero"``
      (ultralytics 8.4.190 ``models/utils/ops.py`` ``HungarianMatcher``: ``C[C.isnan() | C.isinf()] = 0.0``):
      those entries cost 0. Targets stay finite under every policy.

    The three weights are in ``[0, 1e100]`` (not all 0) and ``|giou_cost_offset| <= 1e100``, so that the cost of
    bounded inputs stays finite.
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
    non_finite_cost: Literal["raise", "max", "zero"] = "raise"

    def __post_init__(self) -> None:
        check_choice("MatcherConvention.class_cost", self.class_cost, ("softmax", "focal"))
        check_choice("MatcherConvention.non_finite_cost", self.non_finite_cost, ("raise", "max", "zero"))
        # Bounded so that a weighted cost of bounded inputs stays finite (oracle/assign/hungarian.py LOGIT_BOUND).
        weights = [check_scalar(f"MatcherConvention.{n}", getattr(self, n), low=0.0, high=1e100)
                   for n in ("weight_class", "weight_bbox", "weight_giou")]
        if not any(weights):
            # facebookresearch/detr models/matcher.py asserts the same.
            raise fail("MatcherConvention", "at least one non-zero cost weight", "all weights 0")
        check_scalar("MatcherConvention.focal_alpha", self.focal_alpha, low=0.0, high=1.0)
        check_scalar("MatcherConvention.focal_gamma", self.focal_gamma, low=0.0)
        check_scalar("MatcherConvention.focal_eps", self.focal_eps, low=0.0)
        check_scalar("MatcherConvention.giou_cost_offset", self.giou_cost_offset, low=-1e100, high=1e100)
        if not isinstance(self.giou, IoUConvention):
            raise fail("MatcherConvention.giou", "an IoUConvention", type(self.giou).__name__)


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
