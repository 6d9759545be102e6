"""oracle.assign.task_aligned: hand cases, brute force on tiny grids, batched == per-image, ties, and
cross-checks against ultralytics' TaskAlignedAssigner (installed) and mmdet's (when importable)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from oracle import boxes as box_ops
from oracle.assign.task_aligned import (TAL_MMDET, TAL_ULTRALYTICS, TAL_ULTRALYTICS_LEGACY, TaskAlignedConvention,
                                        task_aligned_assign, ultralytics_stride_val)
from oracle.conventions import IOU_EXACT, IOU_MMDET, IOU_ULTRALYTICS_XYXY
from oracle.errors import OracleInputError

from ..conftest import import_or_skip

STRIDES = [8.0, 16.0, 32.0]
SIZES = [(8, 8), (4, 4), (2, 2)]  # a 64 x 64 image, A = 84


def _grid_points(sizes=SIZES, strides=STRIDES) -> torch.Tensor:
    """Cell centres in pixels, levels in order, row-major (ultralytics make_anchors * stride)."""
    pts = []
    for (h, w), s in zip(sizes, strides):
        ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
        pts.append(torch.stack((xs, ys), -1).reshape(-1, 2).double() * s)
    return torch.cat(pts)


def _jittered_predictions(points: torch.Tensor, gt: torch.Tensor, gen: torch.Generator, b: int) -> torch.Tensor:
    """Predicted boxes that overlap the GTs well: each anchor predicts a jittered copy of a random GT of its image."""
    a = points.shape[0]
    pick = torch.randint(0, gt.shape[1], (b, a), generator=gen)
    base = gt.gather(1, pick[..., None].expand(b, a, 4))
    jitter = (torch.rand(b, a, 4, generator=gen) - 0.5) * 8
    box = base + jitter
    return torch.cat((torch.minimum(box[..., :2], box[..., 2:]), torch.maximum(box[..., :2], box[..., 2:])), -1)


# --------------------------------------------------------------------------- hand-computed cases

# Four anchors on a row, one GT [0, 0, 12, 4] of class 0, IoU overlaps (IOU_EXACT), alpha = beta = 1, topk 2.
HAND_POINTS = torch.tensor([[2.0, 2.0], [6.0, 2.0], [10.0, 2.0], [14.0, 2.0]])
HAND_PRED = torch.tensor([[[0.0, 0.0, 12.0, 4.0], [0.0, 0.0, 6.0, 4.0], [9.0, 0.0, 12.0, 4.0], [0.0, 0.0, 12.0, 4.0]]])
HAND_SCORES = torch.tensor([[[0.5, 0.1], [0.5, 0.2], [0.75, 0.3], [1.0, 0.4]]])
HAND_GT = torch.tensor([[[0.0, 0.0, 12.0, 4.0]]])
HAND_CONV = TaskAlignedConvention(topk=2, alpha=1.0, beta=1.0, overlap="iou", iou=IOU_EXACT, enlarge_small_gts=False)


def test_hand_case_ultralytics_selection():
    # IoUs with the GT: 1, 24/48 = 0.5, 12/48 = 0.25, 1. Anchor 3 (x = 14) is outside the GT, so ultralytics
    # computes no metric there: metrics 0.5*1 = 0.5, 0.5*0.5 = 0.25, 0.75*0.25 = 0.1875, 0. Top-2: anchors 0, 1.
    # Scores: max metric 0.5, max overlap 1 -> anchor 0: 0.5 * 1 / (0.5 + eps), anchor 1: 0.25 * 1 / (0.5 + eps).
    r = task_aligned_assign(HAND_SCORES, HAND_PRED, HAND_POINTS, torch.tensor([[0]]), HAND_GT,
                            torch.tensor([[True]]), convention=HAND_CONV)
    assert r.align_metric[0, 0].tolist() == [0.5, 0.25, 0.1875, 0.0]
    assert r.fg_mask[0].tolist() == [True, True, False, False]
    eps = HAND_CONV.norm_eps
    assert r.target_scores[0, :, 0].tolist() == pytest.approx([0.5 / (0.5 + eps), 0.25 / (0.5 + eps), 0, 0],
                                                              rel=1e-15)
    assert r.target_scores[0, :, 1].tolist() == [0.0] * 4
    assert r.target_gt_idx[0].tolist() == [0, 0, 0, 0]
    assert r.target_labels[0].tolist() == [0, 0, 0, 0]  # background anchors carry row 0's label (ultralytics)
    assert r.target_bboxes[0, 3].tolist() == [0.0, 0.0, 12.0, 4.0]
    assert not r.tied_topk.any()


def test_hand_case_mmdet_selection_ranks_anchors_outside_the_box():
    # mmdet ranks every anchor: metrics 0.5, 0.25, 0.1875 and 1.0 * 1 = 1.0 for the outside anchor 3.
    # Top-2 = {3, 0}; 3 fails the centre test, so only anchor 0 is positive, with its raw metric 0.5.
    conv = dataclasses.replace(HAND_CONV, selection="topk_then_filter", resolve="max_overlap_candidate_gt",
                               centre_margin=0.01, normalise_scores=False)
    r = task_aligned_assign(HAND_SCORES, HAND_PRED, HAND_POINTS, torch.tensor([[0]]), HAND_GT,
                            torch.tensor([[True]]), convention=conv)
    assert r.align_metric[0, 0].tolist() == [0.5, 0.25, 0.1875, 1.0]
    assert r.fg_mask[0].tolist() == [True, False, False, False]
    assert r.target_scores[0, :, 0].tolist() == [0.5, 0.0, 0.0, 0.0]


def test_zero_metric_candidates_are_positive_for_ultralytics_only():
    # Anchor 2's class-0 score is 0, so its metric is 0. With topk = 4 every anchor is a candidate:
    # ultralytics keeps the in-box anchors 0, 1, 2 (anchor 2 with target score 0); mmdet requires metric > 0: 0, 1.
    scores = HAND_SCORES.clone()
    scores[0, 2, 0] = 0.0
    args = (scores, HAND_PRED, HAND_POINTS, torch.tensor([[0]]), HAND_GT, torch.tensor([[True]]))
    ultra = task_aligned_assign(*args, convention=dataclasses.replace(HAND_CONV, topk=4))
    mmdet = task_aligned_assign(*args, convention=dataclasses.replace(TAL_MMDET, topk=4))
    assert ultra.fg_mask[0].tolist() == [True, True, True, False]
    assert ultra.target_scores[0, 2].tolist() == [0.0, 0.0]
    assert mmdet.fg_mask[0].tolist() == [True, True, False, False]


def test_centre_margin_is_strict_and_small_gts_are_enlarged_in_8_4_only():
    # GT [4, 0, 8, 4] (4 px wide). Anchors at x = 2, 6, 10 (y = 2). Legacy: only x = 6 is inside.
    # 8.4 with stride_val 16: the GT becomes [-2, -6, 14, 10] for the centre test: all three inside.
    points = torch.tensor([[2.0, 2.0], [6.0, 2.0], [10.0, 2.0]])
    pred = torch.tensor([[[4.0, 0.0, 8.0, 4.0]] * 3])
    scores = torch.full((1, 3, 1), 0.5)
    gt, labels, valid = torch.tensor([[[4.0, 0.0, 8.0, 4.0]]]), torch.tensor([[0]]), torch.tensor([[True]])
    base = dict(topk=3, overlap="iou", iou=IOU_EXACT)
    legacy = task_aligned_assign(scores, pred, points, labels, gt, valid,
                                 convention=TaskAlignedConvention(**base, enlarge_small_gts=False))
    new = task_aligned_assign(scores, pred, points, labels, gt, valid,
                              convention=TaskAlignedConvention(**base, enlarge_small_gts=True), stride_val=16)
    assert legacy.eligible[0, 0].tolist() == [False, True, False]
    assert new.eligible[0, 0].tolist() == [True, True, True]
    # A point exactly on the GT edge, or exactly the margin inside it, is outside: x - x1 > margin is strict.
    # (Margin 0.25 so that the differences are exact in float64.)
    on_edge = torch.tensor([[4.0, 2.0], [4.25, 2.0], [4.5, 2.0]])
    edge = task_aligned_assign(scores, pred, on_edge, labels, gt, valid,
                               convention=TaskAlignedConvention(**base, enlarge_small_gts=False, centre_margin=0.25))
    assert edge.eligible[0, 0].tolist() == [False, False, True]


def test_ultralytics_stride_val():
    assert ultralytics_stride_val([8, 16, 32]) == 16.0
    assert ultralytics_stride_val([4.0]) == 4.0


def test_resolution_any_gt_moves_an_anchor_to_a_gt_that_did_not_select_it():
    # Three GTs all contain anchor 0 (and anchor 1). topk = 1. GT0 and GT1 select anchor 0 (their best metric),
    # GT2 has its best metric at anchor 1 but the highest overlap at anchor 0 (low class score there).
    # ultralytics: anchor 0 is positive for GT0 and GT1, so it goes to the max-overlap GT over ALL rows: GT2.
    # mmdet-style resolution: only among GT0 and GT1.
    points = torch.tensor([[5.0, 5.0], [6.0, 6.0]])
    gt = torch.tensor([[[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 12.0, 12.0], [1.0, 1.0, 11.0, 11.0]]])
    pred = torch.tensor([[[1.0, 1.0, 11.0, 11.0], [0.0, 0.0, 9.0, 9.0]]])
    scores = torch.tensor([[[1.0, 0.01], [0.01, 1.0]]])
    labels = torch.tensor([[0, 0, 1]])
    valid = torch.tensor([[True, True, True]])
    conv = TaskAlignedConvention(topk=1, alpha=1.0, beta=1.0, overlap="iou", iou=IOU_EXACT, enlarge_small_gts=False)
    r = task_aligned_assign(scores, pred, points, labels, gt, valid, convention=conv)
    ov = box_ops.iou(gt[0], pred[0])
    assert ov[2, 0] == 1.0 and ov[0, 0] < 1 and ov[1, 0] < 1
    assert r.mask_pos[0, :, 0].tolist() == [False, False, True]
    assert r.target_gt_idx[0, 0].item() == 2 and r.target_labels[0, 0].item() == 1
    r2 = task_aligned_assign(scores, pred, points, labels, gt, valid,
                             convention=dataclasses.replace(conv, resolve="max_overlap_candidate_gt"))
    want = 0 if ov[0, 0] >= ov[1, 0] else 1
    assert r2.target_gt_idx[0, 0].item() == want


def test_no_gt_rows_and_all_padded_rows():
    scores = torch.full((2, 84, 3), 0.5)
    points = _grid_points()
    pred = torch.cat((points - 4, points + 4), -1).expand(2, 84, 4)
    empty = task_aligned_assign(scores, pred, points, torch.zeros(2, 0, dtype=torch.int64), torch.zeros(2, 0, 4),
                                torch.zeros(2, 0, dtype=torch.bool), stride_val=16)
    # ultralytics' early return for n_max_boxes == 0: labels num_classes, zeros, no foreground.
    assert (empty.target_labels == 3).all() and not empty.fg_mask.any() and (empty.target_gt_idx == 0).all()
    assert empty.target_scores.abs().sum() == 0 and empty.target_bboxes.abs().sum() == 0
    assert empty.align_metric.shape == (2, 0, 84) and empty.tied_topk.shape == (2, 0)
    padded = task_aligned_assign(scores, pred, points, torch.tensor([[2, 0], [1, 1]]),
                                 torch.tensor([[[0.0, 0, 0, 0], [0, 0, 0, 0]], [[8, 8, 40, 40], [0, 0, 0, 0]]]),
                                 torch.tensor([[False, False], [True, False]]), stride_val=16)
    assert not padded.fg_mask[0].any() and padded.fg_mask[1].any()
    assert (padded.target_labels[0] == 2).all()  # row 0's label, even though row 0 is padding
    assert padded.align_metric[0].abs().sum() == 0 and not padded.mask_pos[:, 1].any()


def test_zero_area_predicted_boxes_give_finite_results():
    points = _grid_points()
    pred = torch.cat((points, points), -1).expand(1, 84, 4)  # every predicted box is a point
    gt = torch.tensor([[[8.0, 8.0, 40.0, 40.0]]])
    for conv in (TAL_ULTRALYTICS, TAL_MMDET):
        r = task_aligned_assign(torch.full((1, 84, 2), 0.5), pred, points, torch.tensor([[1]]), gt,
                                torch.tensor([[True]]), convention=conv, stride_val=16)
        assert torch.isfinite(r.target_scores).all() and torch.isfinite(r.align_metric).all()


# --------------------------------------------------------------------------- brute force on tiny grids

def _brute_force(metric, overlaps, points, gt, valid, conv, stride_val):
    """Per-image, per-anchor Python reasoning over the module docstring's steps, given the metric and overlaps.

    Returns (fg, gt_idx, scores) as lists per image, with the tie rule: equal metrics, lower anchor first.
    """
    out = []
    b_count, n, a_count = metric.shape
    for b in range(b_count):
        m, o = metric[b].tolist(), overlaps[b].tolist()
        inside = [[False] * a_count for _ in range(n)]
        for g in range(n):
            x1, y1, x2, y2 = gt[b, g].tolist()
            if conv.enlarge_small_gts and valid[b, g]:
                cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
                w, h = (stride_val if w < stride_val else w), (stride_val if h < stride_val else h)
                x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
            for a in range(a_count):
                x, y = points[a].tolist()
                e = conv.centre_margin
                inside[g][a] = x - x1 > e and y - y1 > e and x2 - x > e and y2 - y > e
        pos = [set() for _ in range(n)]
        k = min(conv.topk, a_count)
        for g in range(n):
            if not valid[b, g]:
                continue
            top = sorted(range(a_count), key=lambda a: (-m[g][a], a))[:k]
            for a in top:
                ok = inside[g][a] if conv.selection == "topk_in_box" else inside[g][a] and m[g][a] > 0
                if ok:
                    pos[g].add(a)
        for a in range(a_count):
            owners = [g for g in range(n) if a in pos[g]]
            if conv.resolve == "max_overlap_any_gt":
                if len(owners) > 1:
                    best = min(range(n), key=lambda g: (-o[g][a], g))
                    for g in range(n):
                        pos[g].discard(a)
                    pos[best].add(a)
            elif owners:
                best = min(owners, key=lambda g: (-o[g][a], g))
                for g in owners:
                    if g != best:
                        pos[g].discard(a)
        if conv.second_topk is not None:
            for g in range(n):
                ranked = sorted(range(a_count), key=lambda a: (-(m[g][a] if a in pos[g] else 0.0), a))
                pos[g] &= set(ranked[:conv.second_topk])
        fg, idx, score = [False] * a_count, [0] * a_count, [0.0] * a_count
        for g in range(n):
            for a in pos[g]:
                fg[a], idx[a] = True, g
                if conv.normalise_scores:
                    top_m = max(m[g][a2] for a2 in pos[g])
                    top_o = max(o[g][a2] for a2 in pos[g])
                    score[a] = m[g][a] * top_o / (top_m + conv.norm_eps)
                else:
                    score[a] = m[g][a]
        out.append((fg, idx, score))
    return out


@st.composite
def _tiny_problem(draw):
    """A 4 x 4 grid of stride 4 (16 x 16 pixels), coordinates and scores on a dyadic grid (ties are common)."""
    b = draw(st.integers(1, 2))
    n = draw(st.integers(1, 3))
    coord = st.integers(0, 32).map(lambda v: v / 2)

    def box():
        x1, x2 = sorted((draw(coord), draw(coord)))
        y1, y2 = sorted((draw(coord), draw(coord)))
        return [x1, y1, x2, y2]

    gt = torch.tensor([[box() for _ in range(n)] for _ in range(b)])
    pred = torch.tensor([[box() for _ in range(16)] for _ in range(b)])
    eighths = draw(st.lists(st.integers(0, 8), min_size=b * 16 * 2, max_size=b * 16 * 2))
    scores = torch.tensor(eighths).view(b, 16, 2) / 8
    labels = torch.tensor(draw(st.lists(st.integers(0, 1), min_size=b * n, max_size=b * n))).view(b, n)
    valid = torch.tensor(draw(st.lists(st.booleans(), min_size=b * n, max_size=b * n))).view(b, n)
    base = draw(st.sampled_from([TAL_ULTRALYTICS, TAL_ULTRALYTICS_LEGACY, TAL_MMDET]))
    conv = dataclasses.replace(base, topk=draw(st.integers(1, 6)), topk2=draw(st.none() | st.integers(1, 6)),
                               clip_topk=True)
    return scores, pred, gt, labels, valid, conv


@settings(max_examples=25, deadline=None)
@given(_tiny_problem())
def test_against_brute_force_on_a_tiny_grid(problem):
    scores, pred, gt, labels, valid, conv = problem
    points = _grid_points([(4, 4)], [4.0])
    r = task_aligned_assign(scores, pred, points, labels, gt, valid, convention=conv, stride_val=8.0)
    # The metric and overlaps, pair by pair, where they are computed.
    for b in range(gt.shape[0]):
        for g in range(gt.shape[1]):
            for a in (0, 5, 15):
                if r.align_metric[b, g, a] == 0 and conv.selection == "topk_in_box":
                    continue
                if conv.overlap == "ciou":
                    o = max(box_ops.ciou(gt[b, g:g + 1], pred[b, a:a + 1], convention=conv.iou).item(), 0.0)
                else:
                    o = box_ops.iou(gt[b, g:g + 1], pred[b, a:a + 1], convention=conv.iou).item()
                want = scores[b, a, labels[b, g]].item() ** conv.alpha * o ** conv.beta if valid[b, g] else 0.0
                assert r.align_metric[b, g, a].item() == pytest.approx(want, rel=1e-12, abs=1e-300)
    brute = _brute_force(r.align_metric, r.overlaps, points, gt, valid, conv, 8.0)
    for b, (fg, idx, score) in enumerate(brute):
        assert r.fg_mask[b].tolist() == fg
        assert [i if f else 0 for i, f in zip(idx, fg)] == r.target_gt_idx[b].tolist()
        assigned = (r.target_scores[b] * torch.nn.functional.one_hot(r.target_labels[b], 2)).sum(-1)
        assert assigned.tolist() == pytest.approx(score, rel=1e-14, abs=0)
    assert (r.mask_pos.sum(1) <= 1).all()


def test_batched_equals_per_image():
    gen = torch.Generator().manual_seed(3)
    points = _grid_points()
    gt = torch.tensor([[[4.0, 6, 40, 30], [20, 20, 60, 62], [0, 0, 0, 0]],
                       [[30.0, 10, 34, 50], [0, 0, 0, 0], [0, 0, 0, 0]],
                       [[0.0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]])
    valid = torch.tensor([[True, True, False], [True, False, False], [False, False, False]])
    labels = torch.tensor([[0, 2, 0], [1, 0, 0], [0, 0, 0]])
    pred = _jittered_predictions(points, gt.clamp(min=1), gen, 3)
    scores = torch.rand(3, 84, 3, generator=gen)
    for conv in (TAL_ULTRALYTICS, TAL_MMDET, dataclasses.replace(TAL_ULTRALYTICS, topk2=4)):
        whole = task_aligned_assign(scores, pred, points, labels, gt, valid, convention=conv, stride_val=16)
        for i in range(3):
            n = max(int(valid[i].sum()), 1)  # trailing padded rows removed (one kept for the empty image)
            one = task_aligned_assign(scores[i:i + 1], pred[i:i + 1], points, labels[i:i + 1, :n], gt[i:i + 1, :n],
                                      valid[i:i + 1, :n], convention=conv, stride_val=16)
            for name in ("target_labels", "target_bboxes", "target_scores", "fg_mask", "target_gt_idx"):
                assert torch.equal(getattr(one, name)[0], getattr(whole, name)[i]), (conv, i, name)


# --------------------------------------------------------------------------- ties

def test_topk_ties_take_the_lowest_anchor_index_and_are_flagged():
    # A zero-width GT: every CIoU is <= 0 and clamps to 0, so all 84 metrics are 0 and tied. The top-10 are
    # anchors 0..9 by the reference's rule; the in-box ones among them (8.4 enlarges the GT to 16 px) are positive.
    points = _grid_points()
    gt = torch.tensor([[[12.0, 4.0, 12.0, 20.0]]])
    pred = torch.cat((points - 6, points + 6), -1)[None]
    r = task_aligned_assign(torch.full((1, 84, 1), 0.5), pred, points, torch.tensor([[0]]), gt,
                            torch.tensor([[True]]), stride_val=16)
    assert (r.align_metric == 0).all()
    in_box = set(torch.nonzero(r.eligible[0, 0]).flatten().tolist())
    # Enlarged to [4, 4, 20, 20]; strictly inside: (12, 12) on level 0 (index 9), (8, 8) on level 1 (64),
    # (16, 16) on level 2 (80). Points on the edges (x or y = 4 or 20) are outside.
    assert in_box == {9, 64, 80}
    assert set(torch.nonzero(r.fg_mask[0]).flatten().tolist()) == {a for a in in_box if a < 10}
    assert r.tied_topk.tolist() == [[True]]
    assert r.target_scores.abs().sum() == 0  # tied zero-metric positives carry score 0


def test_a_tie_among_anchors_that_cannot_be_positive_is_not_flagged():
    # Five anchors (a fifth outside the GT at x = 18), topk 4: metrics 0.5, 0.25, 0.1875, 0, 0. The cut (4th
    # value, 0) is shared by anchors 3 and 4, but both are outside the GT: whichever is kept, nothing changes.
    points = torch.cat((HAND_POINTS, torch.tensor([[18.0, 2.0]])))
    pred = torch.cat((HAND_PRED, HAND_PRED[:, :1]), 1)
    scores = torch.cat((HAND_SCORES, HAND_SCORES[:, :1]), 1)
    r = task_aligned_assign(scores, pred, points, torch.tensor([[0]]), HAND_GT, torch.tensor([[True]]),
                            convention=dataclasses.replace(HAND_CONV, topk=4))
    assert r.align_metric[0, 0].tolist() == [0.5, 0.25, 0.1875, 0.0, 0.0]
    assert r.fg_mask[0].tolist() == [True, True, True, False, False]
    assert not r.tied_topk.any()


def test_a_tie_at_the_cut_is_flagged_and_ultralytics_picks_within_the_tie():
    ul = import_or_skip("ultralytics.utils.tal", "pip install ultralytics==8.4.190")
    gen = torch.Generator().manual_seed(5)
    points = _grid_points()
    # A small GT (enlarged to 16 px for the centre test) with fewer than 10 anchors inside, and predictions
    # that miss it, so some in-box anchors have CIoU <= 0 -> metric 0, tied with the out-of-box zeros.
    gt = torch.tensor([[[22.0, 22.0, 30.0, 30.0]]])
    pred = torch.cat((points - 2, points + 2), -1)[None] + torch.rand(1, 84, 4, generator=gen)
    scores = torch.rand(1, 84, 2, generator=gen)
    ref = task_aligned_assign(scores, pred, points, torch.tensor([[1]]), gt, torch.tensor([[True]]), stride_val=16)
    assert ref.tied_topk.all()
    assigner = ul.TaskAlignedAssigner(topk=10, num_classes=2, alpha=0.5, beta=6.0, stride=STRIDES)
    _, _, _, fg, _ = assigner(scores, pred, points, torch.tensor([[[1.0]]]), gt, torch.tensor([[[1.0]]]))
    metric, eligible = ref.align_metric[0, 0], ref.eligible[0, 0]
    cut = torch.sort(metric, descending=True).values[9]
    above = set(torch.nonzero(eligible & (metric > cut)).flatten().tolist())
    tied = set(torch.nonzero(eligible & (metric == cut)).flatten().tolist())
    theirs = set(torch.nonzero(fg[0]).flatten().tolist())
    assert above <= theirs <= above | tied  # whatever torch.topk chose among the tied anchors


# --------------------------------------------------------------------------- ultralytics cross-checks

def _random_case(seed: int, b: int = 3):
    gen = torch.Generator().manual_seed(seed)
    points = _grid_points()
    gt = torch.zeros(b, 3, 4)
    valid = torch.zeros(b, 3, dtype=torch.bool)
    for i in range(b):
        for g in range(i % 3 + 1):  # 1, 2, 3 GTs, the rest padding
            c = torch.rand(2, generator=gen) * 24 + 20
            half = torch.rand(2, generator=gen) * 12 + 10  # sides 20..44 px: many anchors inside
            gt[i, g] = torch.cat((c - half, c + half))
            valid[i, g] = True
    labels = torch.randint(0, 4, (b, 3), generator=gen) * valid
    pred = _jittered_predictions(points, torch.where(valid[..., None], gt, gt[:, :1]), gen, b)
    scores = torch.rand(b, 84, 4, generator=gen)
    return scores, pred, points, labels, gt, valid


@pytest.mark.parametrize("topk2", [None, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_ultralytics_task_aligned_assigner(seed, topk2):
    ul = import_or_skip("ultralytics.utils.tal", "pip install ultralytics==8.4.190")
    scores, pred, points, labels, gt, valid = _random_case(seed)
    conv = dataclasses.replace(TAL_ULTRALYTICS, topk2=topk2)
    ref = task_aligned_assign(scores, pred, points, labels, gt, valid, convention=conv,
                              stride_val=ultralytics_stride_val(STRIDES))
    assert not ref.tied_topk.any()  # otherwise torch.topk may legitimately choose differently
    assigner = ul.TaskAlignedAssigner(topk=10, num_classes=4, alpha=0.5, beta=6.0, stride=STRIDES, topk2=topk2)
    labels_u, boxes_u, scores_u, fg_u, idx_u = assigner(scores, pred, points, labels[..., None].double(), gt,
                                                        valid[..., None].double())
    assert ref.fg_mask.sum() > 20
    assert torch.equal(ref.fg_mask, fg_u)
    assert torch.equal(ref.target_gt_idx, idx_u)
    assert torch.equal(ref.target_labels, labels_u)
    assert torch.equal(ref.target_bboxes, boxes_u)
    # float64 on both sides; the CIoU is summed in another order (-(a + b) vs -a - b): a few ULPs.
    torch.testing.assert_close(ref.target_scores, scores_u, rtol=1e-13, atol=1e-15)


def test_legacy_equals_8_4_when_no_gt_side_is_below_stride_val():
    scores, pred, points, labels, gt, valid = _random_case(0)
    new = task_aligned_assign(scores, pred, points, labels, gt, valid, stride_val=16)
    old = task_aligned_assign(scores, pred, points, labels, gt, valid, convention=TAL_ULTRALYTICS_LEGACY)
    assert torch.equal(new.fg_mask, old.fg_mask) and torch.equal(new.target_scores, old.target_scores)
    small = gt.clone()
    small[..., 2:] = small[..., :2] + 6  # every GT 6 px: 8.4 tests a 16 px box
    new = task_aligned_assign(scores, pred, points, labels, small, valid, stride_val=16)
    old = task_aligned_assign(scores, pred, points, labels, small, valid, convention=TAL_ULTRALYTICS_LEGACY)
    assert new.eligible.sum() > old.eligible.sum()


def test_ultralytics_early_return_without_gt_rows():
    ul = import_or_skip("ultralytics.utils.tal", "pip install ultralytics==8.4.190")
    scores, pred, points, *_ = _random_case(0, b=2)
    ref = task_aligned_assign(scores, pred, points, torch.zeros(2, 0, dtype=torch.int64), torch.zeros(2, 0, 4),
                              torch.zeros(2, 0, dtype=torch.bool), stride_val=16)
    out = ul.TaskAlignedAssigner(topk=10, num_classes=4, alpha=0.5, beta=6.0, stride=STRIDES)(
        scores, pred, points, torch.zeros(2, 0, 1), torch.zeros(2, 0, 4), torch.zeros(2, 0, 1))
    for mine, theirs in zip((ref.target_labels, ref.target_bboxes, ref.target_scores, ref.fg_mask,
                             ref.target_gt_idx), out):
        assert torch.equal(mine.double(), theirs.double())


def test_ciou_convention_matches_ultralytics_bbox_iou():
    metrics = import_or_skip("ultralytics.utils.metrics", "pip install ultralytics==8.4.190")
    gen = torch.Generator().manual_seed(0)
    lo = torch.rand(200, 2, generator=gen) * 50
    size = torch.rand(200, 2, generator=gen) * 30
    size[:20, 0] = 0  # zero width
    size[20:40, 1] = 0  # zero height
    size[40:50] = 0  # points
    b1 = torch.cat((lo, lo + size), -1)
    b2 = b1.roll(7, 0) + torch.rand(200, 4, generator=gen).sort(-1).values * 3
    b2 = torch.cat((torch.minimum(b2[:, :2], b2[:, 2:]), torch.maximum(b2[:, :2], b2[:, 2:])), -1)
    theirs = metrics.bbox_iou(b1, b2, xywh=False, CIoU=True).squeeze(-1)
    mine = box_ops.ciou(b1, b2, aligned=True, convention=IOU_ULTRALYTICS_XYXY)
    # Same formula; ultralytics subtracts (rho2/c2 + v*alpha) in one go: rounding only.
    torch.testing.assert_close(mine, theirs, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- mmdet cross-check

def test_matches_mmdet_task_aligned_assigner_per_image():
    import_or_skip("mmdet.models", "see docs/install.md")
    from mmdet.models.task_modules.assigners import TaskAlignedAssigner
    from mmengine.structures import InstanceData

    scores, pred, points, labels, gt, valid = _random_case(4)
    ref = task_aligned_assign(scores, pred, points, labels, gt, valid, convention=TAL_MMDET)
    assert not ref.tied_topk.any()
    assigner = TaskAlignedAssigner(topk=13)
    priors = torch.cat((points - 4, points + 4), -1)  # boxes centred on the anchor points
    for i in range(gt.shape[0]):
        n = int(valid[i].sum())
        res = assigner.assign(InstanceData(priors=priors, bboxes=pred[i], scores=scores[i]),
                              InstanceData(bboxes=gt[i, :n], labels=labels[i, :n]), alpha=1, beta=6)
        fg = res.gt_inds > 0
        assert torch.equal(fg, ref.fg_mask[i])
        assert torch.equal(res.gt_inds[fg] - 1, ref.target_gt_idx[i][fg])
        assert torch.equal(res.labels[fg], ref.target_labels[i][fg])
        torch.testing.assert_close(res.assign_metrics, ref.target_scores[i].sum(-1), rtol=1e-12, atol=1e-15)
    # The hand case with a zero-metric in-box anchor (test_zero_metric_candidates_are_positive_for_ultralytics_only).
    scores = HAND_SCORES.clone()
    scores[0, 2, 0] = 0.0
    res = TaskAlignedAssigner(topk=4).assign(
        InstanceData(priors=torch.cat((HAND_POINTS - 1, HAND_POINTS + 1), -1), bboxes=HAND_PRED[0], scores=scores[0]),
        InstanceData(bboxes=HAND_GT[0], labels=torch.tensor([0])), alpha=1, beta=6)
    assert res.gt_inds.tolist() == [1, 1, 0, 0]


# --------------------------------------------------------------------------- bad input

def _good():
    scores, pred, points, labels, gt, valid = _random_case(0, b=2)
    return dict(pd_scores=scores, pd_bboxes=pred, anchor_points=points, gt_labels=labels, gt_bboxes=gt, mask_gt=valid)


@pytest.mark.parametrize("name, value, match", [
    ("pd_scores", torch.rand(2, 84), "pd_scores: expected rank 3"),
    ("pd_scores", torch.full((2, 84, 4), 1.5), "pd_scores: expected values <= 1.0"),
    ("pd_scores", torch.full((2, 84, 4), math.nan), "pd_scores: expected finite values"),
    ("pd_bboxes", torch.zeros(2, 80, 4), r"pd_bboxes: expected shape \(2, 84, 4\)"),
    ("pd_bboxes", torch.tensor([[[5.0, 0, 1, 1]]]).expand(2, 84, 4), "pd_bboxes: expected x2 >= x1"),
    ("anchor_points", torch.zeros(84, 3), "anchor_points: expected shape"),
    ("gt_labels", torch.full((2, 3), 4), r"gt_labels: expected labels in \[0, 4\)"),
    ("gt_labels", torch.zeros(2, 3), "gt_labels: expected an integer dtype"),
    ("gt_bboxes", torch.full((2, 3, 4), math.inf), "gt_bboxes: expected finite values"),
    ("gt_bboxes", torch.zeros(3, 3, 4), "gt_bboxes: expected batch size 2"),
    ("mask_gt", torch.ones(2, 3), "mask_gt: expected a bool tensor"),
    ("mask_gt", torch.ones(2, 2, dtype=torch.bool), r"mask_gt: expected shape \(2, 3\)"),
])
def test_bad_input_raises(name, value, match):
    args = _good()
    args[name] = value
    with pytest.raises(OracleInputError, match=match):
        task_aligned_assign(**args, stride_val=16)


def test_bad_settings_raise():
    with pytest.raises(OracleInputError, match="stride_val: expected the minimum GT side"):
        task_aligned_assign(**_good())
    with pytest.raises(OracleInputError, match="convention.topk: expected at most the number of anchors"):
        task_aligned_assign(**_good(), convention=dataclasses.replace(TAL_ULTRALYTICS_LEGACY, topk=85))
    clipped = task_aligned_assign(**_good(), convention=dataclasses.replace(TAL_MMDET, topk=85))
    assert clipped.fg_mask.any()
    with pytest.raises(OracleInputError, match="TaskAlignedConvention.topk: expected an int >= 1"):
        TaskAlignedConvention(topk=0)
    with pytest.raises(OracleInputError, match="TaskAlignedConvention.norm_eps: expected a number > 0"):
        TaskAlignedConvention(norm_eps=0.0)
    assert TaskAlignedConvention(norm_eps=0.0, normalise_scores=False).norm_eps == 0
    with pytest.raises(OracleInputError, match="convention.topk2: expected at most the number of anchors"):
        task_aligned_assign(**_good(), convention=dataclasses.replace(TAL_ULTRALYTICS_LEGACY, topk2=85))
    with pytest.raises(OracleInputError, match="TaskAlignedConvention.selection"):
        TaskAlignedConvention(selection="any")
    with pytest.raises(OracleInputError, match="TaskAlignedConvention.iou: expected an IoUConvention"):
        TaskAlignedConvention(iou="ciou")
    with pytest.raises(OracleInputError, match="convention: expected a TaskAlignedConvention"):
        task_aligned_assign(**_good(), convention=IOU_MMDET)


def test_topk_selection_equals_a_stable_sort_on_tie_rich_rows():
    # The selection is computed from torch.topk's k-th value; it must pick what a stable descending sort
    # picks first (every larger value, then equal values in index order), whatever order topk returns.
    from oracle.assign.task_aligned import _topk_mask
    g = torch.Generator().manual_seed(3)
    values = torch.randint(0, 4, (50, 37), generator=g).double()  # 4 distinct values in 37 columns: many ties
    for k in (1, 5, 10, 37):
        order = torch.sort(values, dim=-1, descending=True, stable=True).indices[..., :k]
        expected = torch.zeros_like(values, dtype=torch.bool).scatter_(-1, order, True)
        assert torch.equal(_topk_mask(values, k), expected), k
