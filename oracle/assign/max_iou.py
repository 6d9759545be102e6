"""Max-IoU assignment of priors (anchors) to ground-truth boxes, in float64.

mmdet's ``MaxIoUAssigner`` and, as a variant of the same rules, torchvision's ``Matcher``; the rules
and their quirks are those of :class:`~oracle.conventions.MaxIoUConvention` (threshold semantics:
negative ``lo <= best < hi``, positive ``best >= pos_iou_thr``, ignore region ``IoF > ignore_iof_thr``).

The result is mmdet's ``AssignResult`` encoding: ``gt_inds`` int64 ``[N]`` with ``k + 1`` for a prior
assigned to GT ``k`` (positive), 0 for negative and -1 for ignored. torchvision's ``Matcher`` output
maps to it as ``m >= 0 -> m + 1``, ``BELOW_LOW_THRESHOLD (-1) -> 0``, ``BETWEEN_THRESHOLDS (-2) -> -1``.

Degenerate input (defined, as mmdet ``assign_wrt_overlaps``): no GT makes every prior negative with
``max_overlaps`` 0 (also when ignore boxes are given: mmdet's ignore step only edits the empty overlap
matrix); no priors gives empty tensors. torchvision's ``Matcher`` raises ``ValueError`` on either
(``"No ground-truth boxes available..."``); its RetinaNet special-cases an image without targets as
all background, which is the reference's result.

Ties: a prior's best GT is the lowest GT index among equal overlaps (``torch.max``'s first maximum,
as upstream on CPU); "tied at a GT's best overlap" is exact float64 equality, as upstream's ``==``.

Assignment takes no gradient (upstream assigners work on detached IoU).

Upstream: mmdet/models/task_modules/assigners/max_iou_assigner.py (``assign``, ``assign_wrt_overlaps``),
mmdet/models/task_modules/assigners/iou2d_calculator.py and mmdet/structures/bbox/bbox_overlaps.py
(IoU/IoF, clamp 1e-6), torchvision/models/detection/_utils.py (``Matcher``, ``set_low_quality_matches_``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import boxes as box_ops
from .._checks import TensorLike, as_float64, as_index, check_finite, check_rank, fail
from ..conventions import MaxIoUConvention

#: The overlap mmdet writes into the columns of priors inside an ignore region.
IGNORED_OVERLAP = -1.0


@dataclass(frozen=True)
class AssignResult:
    """One image's assignment (mmdet ``AssignResult``).

    - ``gt_inds``: int64 ``[N]``: ``k + 1`` = positive for GT ``k``, 0 = negative, -1 = ignored.
    - ``max_overlaps``: float64 ``[N]``: each prior's best overlap (-1 inside an ignore region, 0 without GT).
    - ``labels``: int64 ``[N]``: the assigned GT's label where positive, else -1.
    - ``num_gts``: the number of ground-truth boxes K.
    """

    gt_inds: torch.Tensor
    max_overlaps: torch.Tensor
    labels: torch.Tensor
    num_gts: int

    @property
    def pos_inds(self) -> torch.Tensor:
        """Sorted indices of the positive priors (mmdet ``PseudoSampler``'s ``pos_inds``)."""
        return torch.nonzero(self.gt_inds > 0).flatten()

    @property
    def neg_inds(self) -> torch.Tensor:
        """Sorted indices of the negative priors."""
        return torch.nonzero(self.gt_inds == 0).flatten()


def _convention_arg(convention: object) -> MaxIoUConvention:
    if not isinstance(convention, MaxIoUConvention):
        raise fail("convention", "a MaxIoUConvention (e.g. MAX_IOU_RETINANET_MMDET)", type(convention).__name__)
    return convention


def _labels_arg(name: str, labels: TensorLike, num_gts: int) -> torch.Tensor:
    y = as_index(name, labels)
    check_rank(name, y, 1, "([K] one label per ground-truth box)")
    if y.shape[0] != num_gts:
        raise fail(name, f"{num_gts} labels (one per ground-truth box)", f"shape {tuple(y.shape)}")
    if bool((y < 0).any()):
        raise fail(name, "labels >= 0", f"{int(y[y < 0][0])}")
    return y


def _negative_mask(best: torch.Tensor, conv: MaxIoUConvention) -> torch.Tensor:
    lo, hi = conv.negative_range
    return (best >= lo) & (best < hi)


def _low_quality_claims(overlaps: torch.Tensor, conv: MaxIoUConvention) -> torch.Tensor:
    """Bool ``[K, N]``: GT ``i`` claims prior ``j`` in the low-quality step (step 4)."""
    k, n = overlaps.shape
    gt_best, gt_first = overlaps.max(dim=1)
    if conv.gt_max_assign_all:
        claims = overlaps == gt_best[:, None]
    else:
        claims = torch.zeros((k, n), dtype=torch.bool)
        claims[torch.arange(k), gt_first] = True
    return claims & (gt_best >= conv.min_pos_iou)[:, None]


def _assign(overlaps: torch.Tensor, labels: torch.Tensor, conv: MaxIoUConvention) -> AssignResult:
    """The validated core: overlaps ``[K, N]`` (detached float64), labels ``[K]``."""
    k, n = overlaps.shape
    if k == 0 or n == 0:
        gt_inds = torch.full((n,), 0 if k == 0 else -1, dtype=torch.int64)
        return AssignResult(gt_inds, torch.zeros(n, dtype=torch.float64), torch.full((n,), -1, dtype=torch.int64), k)
    best, best_gt = overlaps.max(dim=0)
    gt_inds = torch.full((n,), -1, dtype=torch.int64)
    gt_inds[_negative_mask(best, conv)] = 0
    positive = best >= conv.pos_iou_thr
    gt_inds[positive] = best_gt[positive] + 1
    if conv.match_low_quality:
        claims = _low_quality_claims(overlaps, conv)
        if conv.low_quality_gt == "overwrite":
            # mmdet loops over the GTs in index order, so the last GT claiming a prior is the one it keeps.
            last_claim = (claims * torch.arange(1, k + 1)[:, None]).max(dim=0).values
            gt_inds = torch.where(last_claim > 0, last_claim, gt_inds)
        else:
            gt_inds = torch.where(claims.any(dim=0), best_gt + 1, gt_inds)
    assigned = gt_inds > 0
    out_labels = torch.where(assigned, labels[(gt_inds - 1).clamp(min=0)], torch.full_like(gt_inds, -1))
    return AssignResult(gt_inds, best, out_labels, k)


def assign_wrt_overlaps(overlaps: TensorLike, gt_labels: TensorLike, *, convention: MaxIoUConvention) -> AssignResult:
    """Assign ``N`` priors from the overlap matrix ``overlaps`` ``[K, N]`` (GT x prior).

    Overlaps are IoU values in ``[0, 1]``, or -1 for a prior inside an ignore region (as mmdet's
    ``assign`` writes them); gt_labels int ``[K]``, >= 0. mmdet ``assign_wrt_overlaps``; torchvision
    ``Matcher.__call__`` under a convention with ``low_quality_gt="own_argmax"``.
    """
    conv = _convention_arg(convention)
    ov = as_float64("overlaps", overlaps).detach()
    check_rank("overlaps", ov, 2, "([K, N] ground truths x priors)")
    check_finite("overlaps", ov)
    legal = ((ov >= 0) & (ov <= 1)) | (ov == IGNORED_OVERLAP)
    if not bool(legal.all()):
        idx = tuple(int(i) for i in torch.nonzero(~legal)[0])
        raise fail("overlaps", "IoU values in [0, 1], or -1 for an ignored prior", f"{ov[idx].item()} at index {idx}")
    labels = _labels_arg("gt_labels", gt_labels, ov.shape[0])
    return _assign(ov, labels, conv)


def max_iou_assign(priors: TensorLike, gt_boxes: TensorLike, gt_labels: TensorLike, *, convention: MaxIoUConvention,
                   gt_boxes_ignore: TensorLike = None) -> AssignResult:
    """Assign priors ``[N, 4]`` to ground truths ``[K, 4]`` (both xyxy pixels) by IoU.

    gt_labels int ``[K]``; gt_boxes_ignore ``[M, 4]`` xyxy or None. Overlaps are
    ``IoU(gt_boxes, priors)`` under ``convention.iou``; priors inside an ignore region (see
    :class:`~oracle.conventions.MaxIoUConvention`) get overlap -1 first. mmdet ``MaxIoUAssigner.assign``.
    """
    conv = _convention_arg(convention)
    p = box_ops.validate_boxes("priors", priors, "xyxy", rank=2).detach()
    g = box_ops.validate_boxes("gt_boxes", _as_rows(gt_boxes), "xyxy", rank=2).detach()
    labels = _labels_arg("gt_labels", gt_labels, g.shape[0])
    ignore = None
    if gt_boxes_ignore is not None:
        ignore = box_ops.validate_boxes("gt_boxes_ignore", _as_rows(gt_boxes_ignore), "xyxy", rank=2).detach()
    overlaps = box_ops.iou(g, p, convention=conv.iou)
    if ignore is not None and conv.ignore_iof_thr > 0:
        if ignore.shape[0] > 0 and p.shape[0] > 0:
            if conv.ignore_wrt_candidates:
                iof = box_ops.iou(p, ignore, mode="iof", convention=conv.iou).max(dim=1).values
            else:
                iof = box_ops.iou(ignore, p, mode="iof", convention=conv.iou).max(dim=0).values
            overlaps[:, iof > conv.ignore_iof_thr] = IGNORED_OVERLAP
    return _assign(overlaps, labels, conv)


def _as_rows(boxes: TensorLike) -> object:
    """An empty box list of any shape (``[]``, ``[0]``) as ``[0, 4]``; anything else unchanged."""
    if isinstance(boxes, (list, tuple)) and len(boxes) == 0:
        return torch.zeros((0, 4), dtype=torch.float64)
    if isinstance(boxes, torch.Tensor) and boxes.numel() == 0 and boxes.dim() == 1:
        return boxes.reshape(0, 4)
    return boxes


__all__ = ["AssignResult", "IGNORED_OVERLAP", "assign_wrt_overlaps", "max_iou_assign"]
