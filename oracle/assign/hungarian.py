"""The DETR-family Hungarian matcher in float64, and a checker for a candidate matching.

Cost per image (``Q`` predictions x ``T`` targets)::

    C = w_class * class_cost + w_bbox * L1(pred_cxcywh, gt_cxcywh) + w_giou * (offset - GIoU(pred_xyxy, gt_xyxy))

with the class cost ``-softmax(logits)[:, label]`` or the focal cost of
:class:`~oracle.conventions.MatcherConvention`, solved with
``scipy.optimize.linear_sum_assignment`` on the float64 matrix. Boxes are normalised cxcywh; where
the GIoU convention works in pixels (mmdet ``IoUCost``) the boxes are scaled by the target's
``image_size`` first.

Non-finite predictions follow ``MatcherConvention.non_finite_cost``: ``"raise"`` refuses them; otherwise the cost
is computed in float64 with NaN and inf propagating (a prediction with a non-finite box coordinate: its whole row,
the L1 term being non-finite for every target; a non-finite class cost: its entries), and every entry that comes out
non-finite becomes :func:`poison_value` (``"max"``) or 0 (``"zero"``). Under ``"max"`` that big-M,
``M = (2K + 1) * max(1, m)`` with ``K = min(Q, T)`` and ``m`` the largest finite ``|entry|``, makes the solver
minimise the number of poisoned pairs first and the finite cost second, exactly: two matchings' finite parts differ
by at most ``2Km < M``, so one more poisoned pair always costs more. transformers' ``finfo(cost.dtype).max`` aims at
the same, and sums of several such entries stay finite here, as :func:`evaluate_matching` needs.

Tie-break: where several matchings have the optimal cost, the one scipy's
``linear_sum_assignment`` returns on the float64 matrix is the reference's. Co-optimal matchings are
equally correct; :func:`evaluate_matching` tells them apart from wrong ones by cost (DESIGN §6).

Upstream: facebookresearch/detr models/matcher.py, IDEA-Research/DINO models/dino/matcher.py,
fundamentalvision/Deformable-DETR models/matcher.py, transformers loss/loss_for_object_detection.py
(``HungarianMatcher``), mmdet models/task_modules/assigners/{hungarian_assigner,match_cost}.py,
ultralytics models/utils/ops.py (``HungarianMatcher``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from .. import boxes as box_ops
from ..box_formats import COORDINATE_BOUND
from .._checks import (TensorLike, as_float64, as_index, check_finite, check_labels, check_magnitude, check_rank,
                       check_scalar, fail)
from .._targets import target_arg
from ..conventions import MatcherConvention


@dataclass(frozen=True)
class Matching:
    """One image's matching.

    - ``pred_idx``, ``gt_idx``: int64 ``[K]``, ``K = min(Q, T)``, sorted by ``pred_idx``.
    - ``cost_matrix``: float64 ``[Q, T]``.
    - ``total_cost``: ``cost_matrix[pred_idx, gt_idx].sum()`` as a float.
    """

    pred_idx: torch.Tensor
    gt_idx: torch.Tensor
    cost_matrix: torch.Tensor
    total_cost: float


@dataclass(frozen=True)
class MatchingEvaluation:
    """A candidate matching judged against a cost matrix (DESIGN §6, tiers 1 and 2).

    - ``valid``: one-to-one, indices in range, exactly ``min(Q, T)`` pairs.
    - ``problems``: why it is not valid (empty when valid).
    - ``total_cost``: the candidate's cost under the matrix (None if an index is out of range).
    - ``optimal_cost``: the minimum over all valid matchings.
    - ``gap``: ``total_cost - optimal_cost`` (None when total_cost is None); >= 0 up to rounding.
    """

    valid: bool
    problems: tuple[str, ...]
    total_cost: float | None
    optimal_cost: float
    gap: float | None


# --------------------------------------------------------------------------- class costs

#: The largest logit magnitude the matcher accepts: the focal cost grows linearly with the logit (``-logsigmoid``)
#: and is multiplied by a cost weight (at most ``1e100``, :class:`MatcherConvention`), so the cost stays finite.
LOGIT_BOUND = 1e150


def _check_logits(name: str, x: torch.Tensor, conv: MatcherConvention | None) -> None:
    """Finite logits of magnitude at most :data:`LOGIT_BOUND`; non-finite ones pass where ``conv`` lets them."""
    if conv is None or conv.non_finite_cost == "raise":
        check_finite(name, x)
        check_magnitude(name, x, LOGIT_BOUND, "the focal matching cost")
    else:
        check_magnitude(name, x[torch.isfinite(x)], LOGIT_BOUND, "the focal matching cost")


def _class_cost_args(logits: TensorLike, labels: TensorLike) -> tuple[torch.Tensor, torch.Tensor]:
    x = as_float64("logits", logits)
    check_rank("logits", x, 2, "([Q, K])")
    _check_logits("logits", x, None)
    y = as_index("labels", labels)
    check_rank("labels", y, 1, "([T])")
    check_labels("labels", y, x.shape[1])
    return x, y


def softmax_class_cost(logits: TensorLike, labels: TensorLike) -> torch.Tensor:
    """``-softmax(logits)[:, labels]``: logits ``[Q, K]`` (finite, ``|logit| <= 1e150``), labels int ``[T]`` in
    ``[0, K)`` -> ``[Q, T]`` (DETR)."""
    return _softmax_class_cost(*_class_cost_args(logits, labels))


def _softmax_class_cost(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return -torch.softmax(logits, dim=-1)[:, labels]


def focal_class_cost(logits: TensorLike, labels: TensorLike, *, alpha: float, gamma: float,
                     eps: float) -> torch.Tensor:
    """Focal matching cost ``pos[:, labels] - neg[:, labels]``: logits ``[Q, K]``, labels ``[T]`` -> ``[Q, T]``.

    ``pos = alpha (1-p)^gamma (-log(p + eps))``, ``neg = (1-alpha) p^gamma (-log(1 - p + eps))``,
    ``p = sigmoid(logits)`` (DINO / Deformable-DETR eps 1e-8, mmdet ``FocalLossCost`` eps 1e-12).
    With ``eps = 0`` the logs are ``logsigmoid(±x)``, exact for saturated logits. logits ``[Q, K]`` finite with
    ``|logit| <= 1e150`` (:data:`LOGIT_BOUND`), labels int ``[T]`` in ``[0, K)``, ``alpha`` in [0, 1],
    ``gamma >= 0``, ``eps >= 0``.
    """
    x, y = _class_cost_args(logits, labels)
    return _focal_class_cost(x, y, alpha=check_scalar("alpha", alpha, low=0.0, high=1.0),
                             gamma=check_scalar("gamma", gamma, low=0.0), eps=check_scalar("eps", eps, low=0.0))


def _focal_class_cost(logits: torch.Tensor, labels: torch.Tensor, *, alpha: float, gamma: float,
                      eps: float) -> torch.Tensor:
    x = logits[:, labels]
    p = torch.sigmoid(x)
    if eps == 0:
        neg_log_p, neg_log_1mp = -F.logsigmoid(x), -F.logsigmoid(-x)
    else:
        neg_log_p, neg_log_1mp = -torch.log(p + eps), -torch.log(1 - p + eps)
    pos = alpha * (1 - p) ** gamma * neg_log_p
    neg = (1 - alpha) * p ** gamma * neg_log_1mp
    return pos - neg


# --------------------------------------------------------------------------- cost matrix

def _num_classes(logits: torch.Tensor, conv: MatcherConvention) -> int:
    # Softmax logits carry a last no-object column (DETR's num_classes + 1); focal logits do not.
    return logits.shape[-1] - 1 if conv.class_cost == "softmax" else logits.shape[-1]


def poison_value(cost: torch.Tensor, poisoned: torch.Tensor) -> float:
    """The big-M of the ``"max"`` policy for a cost ``[Q, T]`` whose ``poisoned`` (bool ``[Q, T]``) entries were not
    finite: ``(2 min(Q, T) + 1) * max(1, max |finite entry|)``, above every finite entry."""
    finite = cost[~poisoned]
    m = float(finite.abs().max()) if finite.numel() else 0.0
    return (2 * min(cost.shape) + 1) * max(1.0, m)


def poisoned_entries(cost: TensorLike) -> torch.Tensor:
    """Bool ``[Q, T]``: the entries of a ``"max"``-policy cost matrix ``[Q, T]`` that hold :func:`poison_value` (its
    largest entries, where they equal the value the other entries give; none otherwise)."""
    c = as_float64("cost", cost)
    check_rank("cost", c, 2, "([Q, T])")
    if c.numel() == 0:
        return torch.zeros(c.shape, dtype=torch.bool)
    top = c == c.max()
    return top if poison_value(c, top) == float(c.max()) else torch.zeros(c.shape, dtype=torch.bool)


def _cost_matrix(logits: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, gt_boxes: torch.Tensor,
                 conv: MatcherConvention, image_size: tuple[float, float] | None) -> torch.Tensor:
    """The validated core: logits ``[Q, K]``, boxes ``[Q, 4]``, labels ``[T]``, gt_boxes ``[T, 4]``; under a
    ``non_finite_cost`` policy other than ``"raise"``, logits and boxes may hold NaN and ±inf."""
    q, t = boxes.shape[0], gt_boxes.shape[0]
    if q == 0 or t == 0:
        return torch.zeros((q, t), dtype=torch.float64)
    if conv.non_finite_cost == "raise":
        return _finite_cost_matrix(logits, boxes, labels, gt_boxes, conv, image_size)
    bad_rows = ~torch.isfinite(boxes).all(-1)
    # The rows with a non-finite box are poisoned whole (their L1 term is); a valid box stands in for the GIoU.
    stand_in = torch.tensor([0.5, 0.5, 1.0, 1.0], dtype=torch.float64)
    cost = _finite_cost_matrix(logits, torch.where(bad_rows[:, None], stand_in, boxes), labels, gt_boxes, conv,
                               image_size)
    poisoned = ~torch.isfinite(cost) | bad_rows[:, None]
    value = poison_value(cost, poisoned) if conv.non_finite_cost == "max" else 0.0
    return torch.where(poisoned, torch.full_like(cost, value), cost)


def _finite_cost_matrix(logits: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, gt_boxes: torch.Tensor,
                        conv: MatcherConvention, image_size: tuple[float, float] | None) -> torch.Tensor:
    if conv.class_cost == "softmax":
        cls = _softmax_class_cost(logits, labels)
    else:
        cls = _focal_class_cost(logits, labels, alpha=conv.focal_alpha, gamma=conv.focal_gamma, eps=conv.focal_eps)
    l1 = torch.cdist(boxes, gt_boxes, p=1)
    pred_xyxy = box_ops.convert(boxes, "cxcywh", "xyxy")
    gt_xyxy = box_ops.convert(gt_boxes, "cxcywh", "xyxy")
    if conv.giou.units == "pixel":
        h, w = image_size  # type: ignore[misc]
        scale = torch.tensor([w, h, w, h], dtype=torch.float64)
        pred_xyxy, gt_xyxy = pred_xyxy * scale, gt_xyxy * scale
    g = box_ops.giou(pred_xyxy, gt_xyxy, convention=conv.giou)
    return conv.weight_class * cls + conv.weight_bbox * l1 + conv.weight_giou * (conv.giou_cost_offset - g)


def _pred_boxes(name: str, boxes: TensorLike, conv: MatcherConvention) -> torch.Tensor:
    """Validated ``[Q, 4]`` cxcywh predictions; a row with a non-finite coordinate passes where ``conv`` lets it."""
    if conv.non_finite_cost == "raise":
        return box_ops.validate_boxes(name, boxes, "cxcywh", rank=2)
    bx = as_float64(name, boxes)
    check_rank(name, bx, 2, "([Q, 4] cxcywh boxes)")
    if bx.shape[-1] != 4:
        raise fail(name, "[Q, 4] cxcywh boxes", f"shape {tuple(bx.shape)}")
    box_ops.validate_boxes(name, bx[torch.isfinite(bx).all(-1)], "cxcywh", rank=2)
    return bx


def _image_args(prefix: str, logits: TensorLike, boxes: TensorLike, target: Mapping, conv: MatcherConvention,
                target_name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                           tuple[float, float] | None]:
    lg = as_float64(f"{prefix}pred_logits", logits)
    check_rank(f"{prefix}pred_logits", lg, 2, "([Q, K])")
    _check_logits(f"{prefix}pred_logits", lg, conv)
    if conv.class_cost == "softmax" and lg.shape[-1] < 2:
        raise fail(f"{prefix}pred_logits", "K >= 2 columns (classes plus the no-object column) for the softmax cost",
                   f"shape {tuple(lg.shape)}")
    bx = _pred_boxes(f"{prefix}pred_boxes", boxes, conv)
    if bx.shape[0] != lg.shape[0]:
        raise fail(f"{prefix}pred_boxes", f"shape ({lg.shape[0]}, 4) to match pred_logits", f"shape {tuple(bx.shape)}")
    t = target_arg(f"{prefix}{target_name}", target, _num_classes(lg, conv),
                   need_image_size=conv.giou.units == "pixel", image_size_why="this GIoU convention works in pixels")
    labels, gt, size = t.labels, t.boxes, t.image_size
    if size is not None and conv.giou.units == "pixel":
        # The pixel-unit GIoU scales the normalised boxes by the image size: the scaled boxes keep the bound.
        finite_bx = bx[torch.isfinite(bx).all(-1)]
        for name, b in ((f"{prefix}pred_boxes", finite_bx), (f"{prefix}{target_name}['boxes']", gt)):
            check_magnitude(name, b * max(size), COORDINATE_BOUND,
                            f"the pixel-unit GIoU (times {prefix}{target_name}['image_size'] {size})", "coordinates")
    return lg, bx, labels, gt, size


def matching_cost_matrix(pred_logits: TensorLike, pred_boxes: TensorLike, target: Mapping, *,
                         convention: MatcherConvention = MatcherConvention()) -> torch.Tensor:
    """The float64 matching cost ``[Q, T]`` of one image.

    pred_logits ``[Q, K]`` (softmax: ``K = num_classes + 1`` with the no-object column last;
    focal: ``K = num_classes``), pred_boxes ``[Q, 4]`` normalised cxcywh, target a mapping with
    ``labels`` int ``[T]`` in ``[0, num_classes)``, ``boxes`` ``[T, 4]`` normalised cxcywh and, for
    a pixel-unit GIoU convention, ``image_size`` ``(height, width)``. Bounds: ``|logit| <= 1e150``
    (:data:`LOGIT_BOUND`), box coordinates (times ``image_size`` for a pixel-unit GIoU) at most 1e150 in magnitude.
    """
    if not isinstance(convention, MatcherConvention):
        raise fail("convention", "a MatcherConvention", type(convention).__name__)
    lg, bx, labels, gt, size = _image_args("", pred_logits, pred_boxes, target, convention, "target")
    return _cost_matrix(lg, bx, labels, gt, convention, size)


def _solve(cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if cost.shape[0] == 0 or cost.shape[1] == 0:
        empty = torch.zeros(0, dtype=torch.int64)
        return empty, empty.clone()
    rows, cols = linear_sum_assignment(cost.detach().numpy())
    # scipy returns rows in increasing order, which is the required sort by pred_idx.
    return torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)


def hungarian_match(pred_logits: TensorLike, pred_boxes: TensorLike, targets: Sequence[Mapping], *,
                    convention: MatcherConvention = MatcherConvention()) -> list[Matching]:
    """Match each image's queries to its targets by minimum total cost.

    pred_logits ``[B, Q, K]``, pred_boxes ``[B, Q, 4]`` (normalised cxcywh), targets a sequence of
    ``B`` mappings as in :func:`matching_cost_matrix`. Returns one :class:`Matching` per image with
    ``min(Q, T_i)`` pairs: an image without targets gives empty int64 index tensors; ``T > Q``
    matches every query. Cost matrices are computed without gradient.
    """
    if not isinstance(convention, MatcherConvention):
        raise fail("convention", "a MatcherConvention", type(convention).__name__)
    lg = as_float64("pred_logits", pred_logits)
    check_rank("pred_logits", lg, 3, "([B, Q, K])")
    bx = as_float64("pred_boxes", pred_boxes)
    check_rank("pred_boxes", bx, 3, "([B, Q, 4] normalised cxcywh)")
    if bx.shape[:2] != lg.shape[:2] or bx.shape[2] != 4:
        raise fail("pred_boxes", f"shape ({lg.shape[0]}, {lg.shape[1]}, 4) to match pred_logits",
                   f"shape {tuple(bx.shape)}")
    if lg.shape[0] == 0:
        raise fail("pred_logits", "a batch of at least one image", "B = 0")
    if isinstance(targets, Mapping) or not isinstance(targets, Sequence):
        raise fail("targets", "a sequence of per-image mappings", type(targets).__name__)
    if len(targets) != lg.shape[0]:
        raise fail("targets", f"{lg.shape[0]} per-image mappings (the batch size of pred_logits)", f"{len(targets)}")
    out = []
    for i, target in enumerate(targets):
        logits_i, boxes_i, labels_i, gt_i, size_i = _image_args(f"image {i}: ", lg[i], bx[i], target, convention,
                                                                "targets")
        with torch.no_grad():  # matching takes no gradient, as every upstream matcher (@torch.no_grad)
            cost = _cost_matrix(logits_i, boxes_i, labels_i, gt_i, convention, size_i)
        rows, cols = _solve(cost)
        out.append(Matching(rows, cols, cost, float(cost[rows, cols].sum()) if rows.numel() else 0.0))
    return out


def evaluate_matching(cost_matrix: TensorLike, pred_idx: TensorLike, gt_idx: TensorLike) -> MatchingEvaluation:
    """Judge a candidate matching against a cost matrix ``[Q, T]``.

    pred_idx and gt_idx are integer ``[K]``. Checks validity (equal lengths, indices in range,
    no query or target used twice, ``K == min(Q, T)``), and computes the candidate's total cost,
    the optimal total cost (scipy, float64) and their gap. Malformed arguments (a cost matrix that
    is not ``[Q, T]`` and finite, float indices) raise; an invalid matching is reported, not raised.
    """
    cost = as_float64("cost_matrix", cost_matrix)
    check_rank("cost_matrix", cost, 2, "([Q, T])")
    check_finite("cost_matrix", cost)
    rows = as_index("pred_idx", pred_idx)
    cols = as_index("gt_idx", gt_idx)
    check_rank("pred_idx", rows, 1, "([K])")
    check_rank("gt_idx", cols, 1, "([K])")
    q, t = cost.shape
    r_opt, c_opt = _solve(cost)
    optimal = float(cost[r_opt, c_opt].sum()) if r_opt.numel() else 0.0
    problems = []
    if rows.numel() != cols.numel():
        problems.append(f"pred_idx has {rows.numel()} entries but gt_idx has {cols.numel()}")
    if rows.numel() != min(q, t):
        problems.append(f"{rows.numel()} pairs, expected min(Q, T) = {min(q, t)}")
    in_range = True
    for name, idx, n in (("pred_idx", rows, q), ("gt_idx", cols, t)):
        bad = (idx < 0) | (idx >= n)
        if bool(bad.any()):
            in_range = False
            problems.append(f"{name} has {int(bad.sum())} index(es) outside [0, {n}), first {int(idx[bad][0])}")
        uniq, counts = torch.unique(idx, return_counts=True)
        if bool((counts > 1).any()):
            problems.append(f"{name} uses {uniq[counts > 1].tolist()} more than once")
    total = None
    if in_range and rows.numel() == cols.numel():
        total = float(cost[rows, cols].sum()) if rows.numel() else 0.0
    return MatchingEvaluation(
        valid=not problems, problems=tuple(problems), total_cost=total, optimal_cost=optimal,
        gap=None if total is None else total - optimal,
    )
