"""The task-aligned assigner (TOOD, Feng et al. 2021) as ultralytics and mmdet compute it, in float64.

For every ground truth (GT) ``g`` and anchor point ``a`` of one image:

1. **Centre test**: the anchor point lies strictly inside the GT by more than ``centre_margin``
   (``x - x1 > m``, ``y - y1 > m``, ``x2 - x > m``, ``y2 - y > m``). ultralytics 8.4 first enlarges
   every GT side shorter than ``stride_val`` to ``stride_val`` about its centre
   (``enlarge_small_gts``); YOLOv8 up to 8.2 and mmdet test the box as given.
2. **Overlap** ``o[g, a]`` between the GT and the anchor's predicted box: CIoU clamped at 0
   (ultralytics ``bbox_iou(gt, pd, xywh=False, CIoU=True).clamp_(0)``, :data:`IOU_ULTRALYTICS_XYXY`)
   or IoU (mmdet ``BboxOverlaps2D``, :data:`IOU_MMDET`).
3. **Alignment metric** ``t[g, a] = s[a, label_g] ** alpha * o[g, a] ** beta`` with ``s`` the
   predicted class probabilities.
4. **Top-k per GT** (``selection``):

   - ``"topk_in_box"`` (ultralytics): ``t`` and ``o`` are only computed for pairs that pass the
     centre test (0 elsewhere), the top ``topk`` anchors of each GT row by ``t`` are taken, and
     those in the box are positive. When a GT has fewer than ``topk`` anchors of positive metric,
     the remaining slots go to anchors of metric 0, and an in-box anchor of metric 0 (CIoU <= 0)
     can be one of them: it is then positive with target score 0. ultralytics' ``count > 1``
     zeroing (tal.py ``select_topk_candidates``) only removes the index 0 that it writes into the
     top-k lists of padded rows; the reference's top-k never repeats an anchor and padded rows
     select nothing, which is the same result.
   - ``"topk_then_filter"`` (mmdet): the top ``min(topk, A)`` anchors of each GT by ``t`` over all
     anchors are candidates; a candidate is positive if ``t > 0`` and it passes the centre test.

5. **One GT per anchor** (``resolve``): an anchor positive for several GTs keeps the GT of highest
   ``o``, the lowest GT index among equal ones (``torch.max(dim)`` returns the first maximal index).

   - ``"max_overlap_any_gt"`` (ultralytics ``select_highest_overlaps``): the maximum runs over
     *every* GT row of the image, including GTs that did not select the anchor and padded rows
     (whose ``o`` is 0). So the anchor can move to a GT whose top-k it is not in, and, when all
     the overlaps in its column are 0, to row 0 even if row 0 is padding.
   - ``"max_overlap_candidate_gt"`` (mmdet): the maximum runs over the GTs the anchor is positive
     for (mmdet fills the other entries with ``-INF = -1e8``).

6. Optional ``topk2`` (ultralytics ``tal_topk2``): after step 5, each GT keeps only its ``topk2``
   anchors of largest ``t`` among its positives.
7. **Targets**: ``fg_mask`` marks anchors with a GT; ``target_gt_idx`` is its row (0 for
   background anchors, ultralytics' ``mask_pos.max(-2)``), and ``target_labels`` /
   ``target_bboxes`` are gathered from that row, so background anchors carry row 0's label and
   box (ultralytics ``get_targets``; they are meaningful only where ``fg_mask``). ``target_scores``
   is ``one_hot(label) * fg`` times, with ``normalise_scores`` (ultralytics), the normalised metric
   ``max_g t[g, a] * max_{a' pos of g} o[g, a'] / (max_{a' pos of g} t[g, a'] + norm_eps)`` over the
   anchor's positive pairs, or without it (mmdet's assigner, whose ``assign_metrics`` TOODHead
   normalises later in the head, not modelled here) the raw ``t`` of the assigned pair.

With no GT rows at all (``n = 0``) ultralytics returns early: ``target_labels = num_classes``,
zero boxes and scores, no foreground, ``target_gt_idx = 0``; the reference does the same for
both selections.

**Ties** (top-k). The reference ranks each GT row by ``t`` descending, with equal values in
increasing anchor index (``torch.sort(stable=True)``), and takes the first ``k``: among tied
anchors the *lowest* index wins. ``torch.topk`` on CPU documents no order for ties and does not
follow this one (torch 2.13 picks, among 84 zeros, indices ``58, 53, 54, ...``), so an
implementation may legitimately choose other tied anchors. :attr:`TaskAlignedAssignment.tied_topk`
flags every GT row whose choice at the ``k``-th value is ambiguous *and matters*: the value at the
cut is shared by an anchor that is kept and one that is not, and one of the tied anchors would be
positive if chosen (it passes the centre test, and for mmdet has ``t > 0``). The same flag covers
the ``topk2`` cut. A conformance check must accept any choice among the tied anchors of a flagged
row; ``align_metric``, ``eligible`` and ``mask_pos`` are exposed to do so. Ties in step 5 are not
ambiguous: every upstream takes the first maximal index.

Upstream: ultralytics 8.4.190 ultralytics/utils/tal.py (``TaskAlignedAssigner``: ``_forward`` L142-181,
``get_box_metrics`` L212-241, ``iou_calculation`` L247-257, ``select_topk_candidates`` L259-286,
``get_targets`` L288-326, ``select_candidates_in_gts`` L328-359, ``select_highest_overlaps``
L361-393), ultralytics/utils/metrics.py (``bbox_iou``), ultralytics 8.2 tal.py
(``select_candidates_in_gts`` without the enlargement), mmdet 3.3.0
mmdet/models/task_modules/assigners/task_aligned_assigner.py (``TaskAlignedAssigner.assign``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .. import boxes as box_ops
from .._checks import (TensorLike, as_float64, as_index, check_finite, check_labels, check_range, check_rank,
                       check_scalar, fail)
from ..conventions import TAL_MMDET, TAL_ULTRALYTICS, TAL_ULTRALYTICS_LEGACY, TaskAlignedConvention


def ultralytics_stride_val(strides: Sequence[float]) -> float:
    """The minimum GT side of ultralytics 8.4's centre test: ``strides[1]`` if there are several, else ``strides[0]``.

    ``TaskAlignedAssigner.__init__``: ``self.stride_val = self.stride[1] if len(self.stride) > 1 else self.stride[0]``
    (16 for YOLOv8's strides 8, 16, 32).
    """
    if not isinstance(strides, (tuple, list)) or len(strides) == 0:
        raise fail("strides", "a non-empty sequence of strides", repr(strides))
    return check_scalar("strides", strides[1] if len(strides) > 1 else strides[0], low=0.0, low_open=True)


@dataclass(frozen=True)
class TaskAlignedAssignment:
    """The assignment of a batch: ``B`` images, ``A`` anchors, ``n`` GT rows, ``C`` classes.

    - ``target_labels`` int64 ``[B, A]``, ``target_bboxes`` float64 ``[B, A, 4]`` (xyxy pixels),
      ``target_gt_idx`` int64 ``[B, A]``: the assigned GT row's label, box and index; at background
      anchors those of row 0 (or ``num_classes``, zeros and 0 when ``n = 0``).
    - ``target_scores`` float64 ``[B, A, C]``: soft one-hot targets, 0 at background anchors.
    - ``fg_mask`` bool ``[B, A]``.
    - ``align_metric`` float64 ``[B, n, A]``: the metric the top-k ranks (0 where not computed:
      padded rows, and for ultralytics pairs outside the centre test).
    - ``overlaps`` float64 ``[B, n, A]``: the overlaps, 0 where the metric is not computed.
    - ``eligible`` bool ``[B, n, A]``: pairs that are positive if the top-k selects them.
    - ``mask_pos`` bool ``[B, n, A]``: the final positive pairs (at most one per anchor).
    - ``tied_topk`` bool ``[B, n]``: rows whose top-k (or topk2) choice is ambiguous (module docstring).
    """

    target_labels: torch.Tensor
    target_bboxes: torch.Tensor
    target_scores: torch.Tensor
    fg_mask: torch.Tensor
    target_gt_idx: torch.Tensor
    align_metric: torch.Tensor
    overlaps: torch.Tensor
    eligible: torch.Tensor
    mask_pos: torch.Tensor
    tied_topk: torch.Tensor


# --------------------------------------------------------------------------- validation

def _bool_arg(name: str, x: TensorLike, shape: tuple[int, ...]) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(x)
    if t.dtype != torch.bool:
        raise fail(name, "a bool tensor (True = a real GT row)", f"dtype {t.dtype}")
    if tuple(t.shape) != shape:
        raise fail(name, f"shape {shape}", f"shape {tuple(t.shape)}")
    return t.cpu()


def _inputs(pd_scores: TensorLike, pd_bboxes: TensorLike, anchor_points: TensorLike, gt_labels: TensorLike,
            gt_bboxes: TensorLike, mask_gt: TensorLike) -> tuple[torch.Tensor, ...]:
    scores = as_float64("pd_scores", pd_scores).detach()
    check_rank("pd_scores", scores, 3, "([B, A, C] class probabilities)")
    b, a, c = scores.shape
    if b == 0 or a == 0 or c == 0:
        raise fail("pd_scores", "B, A, C >= 1", f"shape {tuple(scores.shape)}")
    check_finite("pd_scores", scores)
    check_range("pd_scores", scores, 0.0, 1.0)
    pred = box_ops.validate_boxes("pd_bboxes", pd_bboxes, "xyxy", rank=3).detach()
    if pred.shape[:2] != (b, a):
        raise fail("pd_bboxes", f"shape ({b}, {a}, 4) to match pd_scores", f"shape {tuple(pred.shape)}")
    points = as_float64("anchor_points", anchor_points).detach()
    if tuple(points.shape) != (a, 2):
        raise fail("anchor_points", f"shape ({a}, 2): one (x, y) pixel point per anchor",
                   f"shape {tuple(points.shape)}")
    check_finite("anchor_points", points)
    gt = box_ops.validate_boxes("gt_bboxes", gt_bboxes, "xyxy", rank=3).detach()
    if gt.shape[0] != b:
        raise fail("gt_bboxes", f"batch size {b} ([B, n, 4])", f"shape {tuple(gt.shape)}")
    labels = as_index("gt_labels", gt_labels)
    if tuple(labels.shape) != tuple(gt.shape[:2]):
        raise fail("gt_labels", f"shape {tuple(gt.shape[:2])} (one label per GT row)", f"shape {tuple(labels.shape)}")
    check_labels("gt_labels", labels, c)
    valid = _bool_arg("mask_gt", mask_gt, tuple(gt.shape[:2]))
    return scores, pred, points, labels, gt, valid


# --------------------------------------------------------------------------- steps

def _centre_test(points: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, conv: TaskAlignedConvention,
                 stride_val: float | None) -> torch.Tensor:
    """``[B, n, A]``: the anchor point is inside the (possibly enlarged) GT by more than the margin."""
    if conv.enlarge_small_gts:
        # ultralytics 8.4 goes through (cx, cy, w, h) and back for every box, so the round trip is kept.
        cxcywh = box_ops.xyxy_to_cxcywh_formula(gt)
        centre, size = cxcywh[..., :2], cxcywh[..., 2:]
        size = torch.where((size < stride_val) & valid[..., None], torch.full_like(size, stride_val), size)
        gt = box_ops.cxcywh_to_xyxy_formula(torch.cat((centre, size), dim=-1))
    x, y = points[:, 0], points[:, 1]
    x1, y1, x2, y2 = (gt[..., i, None] for i in range(4))
    m = conv.centre_margin
    return (x - x1 > m) & (y - y1 > m) & (x2 - x > m) & (y2 - y > m)


def _overlaps(gt: torch.Tensor, pred: torch.Tensor, conv: TaskAlignedConvention, wanted: torch.Tensor) -> torch.Tensor:
    """``[B, n, A]`` overlaps of GT ``i`` with predicted box ``a`` where ``wanted[b, i, a]``, else 0.

    Only the wanted pairs are computed (ultralytics computes only the GT's in-box anchors), element-wise
    with the same formula as the pairwise overlap, so each value is the one the full matrix would hold.
    """
    out = torch.zeros(wanted.shape, dtype=torch.float64)
    b, i, a = torch.nonzero(wanted, as_tuple=True)
    if b.numel():
        g, p = gt[b, i], pred[b, a]
        if conv.overlap == "ciou":
            out[b, i, a] = box_ops.ciou(g, p, aligned=True, convention=conv.iou).clamp(min=0.0)
        else:
            out[b, i, a] = box_ops.iou(g, p, aligned=True, convention=conv.iou)
    return out


def _ranked(values: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k + 1`` largest values of each row (all of them when a row is shorter), descending: what
    :func:`_topk_mask` and :func:`_ambiguous_cut` read, from one ``torch.topk``."""
    return torch.topk(values, min(k + 1, values.shape[-1]), dim=-1).values


def _topk_mask(values: torch.Tensor, k: int, ranked: torch.Tensor | None = None) -> torch.Tensor:
    """The ``k`` largest entries of each row, equal values taken in increasing index: what a stable
    descending sort's first ``k`` are, found from the ``k``-th largest value (``torch.topk``'s values are
    exact; only its order among ties is unspecified): every larger entry, then the first equal ones.
    ``ranked``: :func:`_ranked` of ``values`` if already computed."""
    kth = (_ranked(values, k) if ranked is None else ranked)[..., k - 1:k]
    greater = values > kth
    equal = values == kth
    need = k - greater.sum(-1, keepdim=True)
    # Only rows with more entries equal to the k-th value than places left need the first-by-index cut (in
    # practice the rows of GTs with fewer than k candidates, whose k-th value is 0): the cumulative count
    # runs on those rows alone; every other row takes all its equal entries.
    cut = (equal.sum(-1, keepdim=True) > need).squeeze(-1)
    chosen = greater | equal
    if bool(cut.any()):
        chosen[cut] = greater[cut] | (equal[cut] & (torch.cumsum(equal[cut], dim=-1) <= need[cut]))
    return chosen


def _ambiguous_cut(values: torch.Tensor, k: int, eligible: torch.Tensor,
                   ranked: torch.Tensor | None = None) -> torch.Tensor:
    """Rows where the ``k``-th largest value is shared across the cut by an anchor that would be positive.
    ``ranked``: :func:`_ranked` of ``values`` if already computed."""
    if k >= values.shape[-1]:
        return torch.zeros(values.shape[:-1], dtype=torch.bool)
    ranked = _ranked(values, k) if ranked is None else ranked
    at_cut = ranked[..., k - 1]
    straddles = ranked[..., k] == at_cut
    return straddles & (eligible & (values == at_cut[..., None])).any(-1)


def _first_argmax(values: torch.Tensor, dim: int) -> torch.Tensor:
    """Index of the first maximal entry along ``dim`` (torch.max's documented rule, written out)."""
    n = values.shape[dim]
    # int32 indices: torch's int64 min-reduction is not vectorised (10x slower than int32 at [8, 50, 8400]);
    # the result is the same integer.
    shape = [n if d == (dim % values.dim()) else 1 for d in range(values.dim())]
    index = torch.arange(n, dtype=torch.int32).view(shape)
    is_max = values == values.amax(dim, keepdim=True)
    return torch.where(is_max, index, n).amin(dim).to(torch.int64)


def _resolve(pos: torch.Tensor, overlaps: torch.Tensor, conv: TaskAlignedConvention) -> torch.Tensor:
    """Keep one GT per anchor: ``pos`` ``[B, n, A]`` -> ``[B, n, A]`` with at most one True per column."""
    n = pos.shape[1]
    if conv.resolve == "max_overlap_any_gt":
        # Only anchors selected by more than one GT change: their GT with the largest overlap is found on
        # their columns alone.
        multi = pos.sum(1) > 1  # [B, A]
        if not bool(multi.any()):
            return pos
        images, anchors = torch.nonzero(multi, as_tuple=True)
        best = _first_argmax(overlaps[images, :, anchors], 1)  # [m]
        resolved = pos.clone()
        resolved[images, :, anchors] = best[:, None] == torch.arange(n)[None, :]
        return resolved
    best = _first_argmax(overlaps.masked_fill(~pos, -math.inf), 1)
    return _one_hot_rows(best, n) & pos.any(1, keepdim=True)


def _one_hot_rows(index: torch.Tensor, n: int) -> torch.Tensor:
    """Bool ``[B, n, A]``: True at row ``index[b, a]`` of each anchor's column, for int ``index [B, A]`` (a bool
    one_hot(index, n).permute(0, 2, 1), without one_hot's int64 [B, A, n])."""
    return index[:, None, :] == torch.arange(n)[None, :, None]


def _topk_arg(name: str, k: int, num_anchors: int, clip: bool) -> int:
    if k <= num_anchors:
        return k
    if not clip:
        raise fail(name, f"at most the number of anchors ({num_anchors}); ultralytics' torch.topk raises "
                   "(mmdet clips: clip_topk=True)", str(k))
    return num_anchors


def _empty(scores: torch.Tensor, pred: torch.Tensor) -> TaskAlignedAssignment:
    b, a, c = scores.shape
    none = torch.zeros((b, 0, a), dtype=torch.float64)
    return TaskAlignedAssignment(
        target_labels=torch.full((b, a), c, dtype=torch.int64), target_bboxes=torch.zeros_like(pred),
        target_scores=torch.zeros_like(scores), fg_mask=torch.zeros((b, a), dtype=torch.bool),
        target_gt_idx=torch.zeros((b, a), dtype=torch.int64), align_metric=none, overlaps=none.clone(),
        eligible=none.bool(), mask_pos=none.bool(), tied_topk=torch.zeros((b, 0), dtype=torch.bool))


# --------------------------------------------------------------------------- the assigner

def task_aligned_assign(pd_scores: TensorLike, pd_bboxes: TensorLike, anchor_points: TensorLike, gt_labels: TensorLike,
                        gt_bboxes: TensorLike, mask_gt: TensorLike, *,
                        convention: TaskAlignedConvention = TAL_ULTRALYTICS,
                        stride_val: float | None = None) -> TaskAlignedAssignment:
    """Assign GTs to anchor points by the task-aligned metric (module docstring), batched.

    - pd_scores ``[B, A, C]``: class probabilities in [0, 1] (sigmoid of the logits).
    - pd_bboxes ``[B, A, 4]``: predicted boxes, xyxy pixels.
    - anchor_points ``[A, 2]``: anchor centres ``(x, y)`` in pixels (ultralytics ``anchor_points * stride``;
      for mmdet the centres of the priors).
    - gt_labels int ``[B, n]`` in ``[0, C)`` (padded rows too: ultralytics pads with 0),
      gt_bboxes ``[B, n, 4]`` xyxy pixels, mask_gt bool ``[B, n]``: True for real rows.
    - stride_val: the minimum GT side of the centre test, required with ``enlarge_small_gts``
      (:func:`ultralytics_stride_val` of the model's strides).

    Computed without gradient, as every upstream does. Each image is independent: the result
    equals the per-image assignments stacked.
    """
    if not isinstance(convention, TaskAlignedConvention):
        raise fail("convention", "a TaskAlignedConvention", type(convention).__name__)
    if convention.enlarge_small_gts:
        if stride_val is None:
            raise fail("stride_val", "the minimum GT side (ultralytics_stride_val(strides)) when the convention "
                       "enlarges small GTs", "None")
        stride_val = check_scalar("stride_val", stride_val, low=0.0, low_open=True)
    scores, pred, points, labels, gt, valid = _inputs(pd_scores, pd_bboxes, anchor_points, gt_labels, gt_bboxes,
                                                      mask_gt)
    b, a, c = scores.shape
    n = gt.shape[1]
    if n == 0:
        return _empty(scores, pred)
    k = _topk_arg("convention.topk", convention.topk, a, convention.clip_topk)
    k2 = None if convention.second_topk is None else _topk_arg("convention.topk2", convention.second_topk, a,
                                                                 convention.clip_topk)
    with torch.no_grad():
        inside = _centre_test(points, gt, valid, convention, stride_val)
        if convention.selection == "topk_in_box":  # ultralytics computes the metric only inside the GT
            computed = valid[..., None] & inside
        else:
            computed = valid[..., None].expand_as(inside)
        overlap = _overlaps(gt, pred, convention, computed)
        label_scores = scores.gather(2, labels[:, None, :].expand(b, a, n)).permute(0, 2, 1)
        # In place on the gathered scores (their own copy): the same operations as
        # where(computed, scores ** alpha * overlap ** beta, 0), less two [B, n, A] float64 temporaries.
        metric = label_scores.pow_(convention.alpha).mul_(overlap ** convention.beta).masked_fill_(~computed, 0.0)
        eligible = computed if convention.selection == "topk_in_box" else computed & inside & (metric > 0)
        ranked = _ranked(metric, k)  # one topk for the selection and its tie check
        pos = _topk_mask(metric, k, ranked) & eligible
        tied = _ambiguous_cut(metric, k, eligible, ranked)
        pos = _resolve(pos, overlap, convention)
        if k2 is not None:
            kept_metric = metric * pos
            ranked2 = _ranked(kept_metric, k2)
            tied |= _ambiguous_cut(kept_metric, k2, pos, ranked2)
            pos = pos & _topk_mask(kept_metric, k2, ranked2)
        tied &= valid
        fg = pos.any(1)
        gt_idx = _first_argmax(pos.to(torch.int8), 1)
        target_labels = labels.gather(1, gt_idx)
        target_bboxes = gt.gather(1, gt_idx[..., None].expand(b, a, 4))
        if convention.normalise_scores:
            pos_metric = metric * pos
            largest_overlap = (overlap * pos).amax(-1, keepdim=True)
            largest_metric = pos_metric.amax(-1, keepdim=True)  # before pos_metric is scaled in place
            norm = pos_metric.mul_(largest_overlap).div_(largest_metric + convention.norm_eps)
            weight = norm.amax(1)
        else:
            weight = metric.gather(1, gt_idx[:, None, :]).squeeze(1) * fg
        # The weight in the label's slot, 0 elsewhere and on background anchors: what one_hot(label) * fg * weight
        # gives, bit for bit (weight is finite and >= 0: norm_eps > 0), without two [B, A, C] products.
        target_scores = torch.zeros((b, a, c), dtype=torch.float64).scatter_(2, target_labels[..., None],
                                                                            (weight * fg)[..., None])
    return TaskAlignedAssignment(target_labels=target_labels, target_bboxes=target_bboxes,
                                 target_scores=target_scores, fg_mask=fg, target_gt_idx=gt_idx, align_metric=metric,
                                 overlaps=overlap, eligible=eligible, mask_pos=pos, tied_topk=tied)


__all__ = ["TAL_MMDET", "TAL_ULTRALYTICS", "TAL_ULTRALYTICS_LEGACY", "TaskAlignedAssignment", "TaskAlignedConvention",
           "task_aligned_assign", "ultralytics_stride_val"]
