"""oracle.assign.hungarian: the matching cost, optimality against brute force, and evaluate_matching."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conformance import strategies as S
from oracle import boxes as box_ops
from oracle.assign.hungarian import (evaluate_matching, focal_class_cost, hungarian_match, matching_cost_matrix)
from oracle.conventions import IOU_DINO, IOU_MMDET, MatcherConvention, get_profile

SOFTMAX = MatcherConvention()
FOCAL = get_profile("deformable_detr").matcher


def brute_force_min(cost: torch.Tensor) -> float:
    """The minimum total cost over every matching of min(Q, T) pairs, by enumeration."""
    q, t = cost.shape
    if q == 0 or t == 0:
        return 0.0
    if q >= t:
        return min(sum(cost[rows[j], j].item() for j in range(t)) for rows in itertools.permutations(range(q), t))
    return min(sum(cost[i, cols[i]].item() for i in range(q)) for cols in itertools.permutations(range(t), q))


def test_cost_matrix_hand_value_softmax():
    logits = torch.tensor([[math.log(3.0), 0.0, 0.0]], dtype=torch.float64)  # softmax = [3/5, 1/5, 1/5]
    pred = torch.tensor([[0.5, 0.5, 0.2, 0.2]], dtype=torch.float64)
    target = {"labels": torch.tensor([0, 1, 1]), "boxes": torch.tensor(
        [[0.5, 0.5, 0.2, 0.2], [0.6, 0.5, 0.2, 0.2], [0.6, 0.6, 0.2, 0.4]])}
    cost = matching_cost_matrix(logits, pred, target)
    # target 0: class -3/5, L1 0, GIoU 1 -> -0.6 - 2 = -2.6
    # target 1: class -1/5, L1 0.1, GIoU of [0.4,0.4,0.6,0.6] vs [0.5,0.4,0.7,0.6]: iou 0.02/0.06,
    #           enclose 0.3*0.2 = 0.06 = union -> GIoU 1/3 -> -0.2 + 5*0.1 - 2/3
    # target 2: class -1/5, L1 0.1 + 0.1 + 0 + 0.2 = 0.4 (not the L2 norm), box [0.5,0.4,0.7,0.8]:
    #           inter 0.1*0.2 = 0.02, union 0.04 + 0.08 - 0.02 = 0.1, enclose 0.3*0.4 = 0.12
    #           -> GIoU 0.2 - 0.02/0.12 = 1/30 -> -0.2 + 5*0.4 - 2/30
    assert cost[0, 0].item() == pytest.approx(-2.6, rel=1e-14)
    assert cost[0, 1].item() == pytest.approx(-0.2 + 0.5 - 2 / 3, rel=1e-13)
    assert cost[0, 2].item() == pytest.approx(-0.2 + 2.0 - 2 / 30, rel=1e-13)


def test_focal_class_cost_hand_value_and_eps_convention():
    x = torch.tensor([[0.0]], dtype=torch.float64)
    lab = torch.tensor([0])
    # p = 1/2: pos = 0.25 * 0.25 * -log(0.5 + eps), neg = 0.75 * 0.25 * -log(0.5 + eps)
    want = 0.25 * 0.25 * -math.log(0.5 + 1e-8) - 0.75 * 0.25 * -math.log(0.5 + 1e-8)
    assert focal_class_cost(x, lab, alpha=0.25, gamma=2.0, eps=1e-8).item() == pytest.approx(want, rel=1e-15)
    # upstream_sources.md §F3: at p = 1 - 1e-9 the negative log term is 18.33 (eps 1e-8) vs 20.72 (eps 1e-12).
    p = 1 - 1e-9
    sat = torch.tensor([[math.log(p / (1 - p))]], dtype=torch.float64)
    for eps, neg_log in ((1e-8, 18.33), (1e-12, 20.72)):
        c = focal_class_cost(sat, lab, alpha=0.25, gamma=2.0, eps=eps).item()
        pos = 0.25 * (1 - p) ** 2 * -math.log(p + eps)
        assert (pos - c) / (0.75 * p ** 2) == pytest.approx(neg_log, abs=5e-3)


def test_pixel_units_need_image_size_and_match_normalised_giou_away_from_the_clamp():
    conv = MatcherConvention(giou=IOU_MMDET)
    logits = torch.zeros(2, 3, dtype=torch.float64)
    pred = torch.tensor([[0.3, 0.3, 0.2, 0.4], [0.6, 0.5, 0.3, 0.3]], dtype=torch.float64)
    target = {"labels": torch.tensor([1]), "boxes": torch.tensor([[0.35, 0.3, 0.2, 0.3]])}
    with pytest.raises(Exception, match="image_size"):
        matching_cost_matrix(logits, pred, target, convention=conv)
    pixel = matching_cost_matrix(logits, pred, {**target, "image_size": (480, 640)}, convention=conv)
    normalised = matching_cost_matrix(logits, pred, target)
    torch.testing.assert_close(pixel, normalised, rtol=1e-14, atol=1e-14)  # GIoU is scale invariant


@given(S.matching_problem(), st.booleans())
def test_matching_is_optimal_against_brute_force(problem, focal):
    logits, pred, target = problem
    conv = FOCAL if focal else SOFTMAX
    if focal:
        logits = logits[:, :-1]
    (m,) = hungarian_match(logits[None], pred[None], [target], convention=conv)
    q, t = logits.shape[0], len(target["labels"])
    assert m.pred_idx.dtype == torch.int64 and m.gt_idx.dtype == torch.int64
    assert len(m.pred_idx) == min(q, t)
    assert torch.equal(m.pred_idx, torch.sort(m.pred_idx).values)
    assert len(set(m.pred_idx.tolist())) == len(m.pred_idx) and len(set(m.gt_idx.tolist())) == len(m.gt_idx)
    assert m.total_cost == pytest.approx(brute_force_min(m.cost_matrix), rel=1e-12, abs=1e-12)


def test_zero_targets_and_more_targets_than_queries():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5, dtype=torch.float64)
    pred = torch.tensor([[0.5, 0.5, 0.2, 0.2]] * 3, dtype=torch.float64).expand(2, 3, 4)
    gt = torch.rand(5, 4, dtype=torch.float64) * 0.3 + 0.1
    targets = [{"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)},
               {"labels": torch.tensor([0, 1, 2, 3, 0]), "boxes": gt}]
    empty, full = hungarian_match(logits, pred, targets)
    assert empty.pred_idx.dtype == torch.int64 and empty.pred_idx.numel() == 0 and empty.gt_idx.numel() == 0
    assert empty.cost_matrix.shape == (3, 0) and empty.total_cost == 0.0
    assert full.pred_idx.tolist() == [0, 1, 2] and len(set(full.gt_idx.tolist())) == 3
    assert full.total_cost == pytest.approx(brute_force_min(full.cost_matrix), rel=1e-12)


@given(S.matching_batch(max_queries=4))
def test_batched_equals_per_image(batch):
    logits, pred, targets, problems = batch
    matches = hungarian_match(logits, pred, targets)
    for m, (lg, bx, tgt) in zip(matches, problems):
        torch.testing.assert_close(m.cost_matrix, matching_cost_matrix(lg, bx, tgt), rtol=0, atol=0)


@given(S.matching_problem(max_targets=5), st.data())
def test_total_cost_invariant_to_permuting_targets(problem, data):
    logits, pred, target = problem
    t = len(target["labels"])
    perm = torch.tensor(data.draw(st.permutations(range(t))), dtype=torch.int64)
    shuffled = {"labels": target["labels"][perm], "boxes": target["boxes"][perm]}
    (a,) = hungarian_match(logits[None], pred[None], [target])
    (b,) = hungarian_match(logits[None], pred[None], [shuffled])
    assert a.total_cost == pytest.approx(b.total_cost, rel=1e-12, abs=1e-12)


def test_ultralytics_offset_shifts_costs_but_not_the_matching():
    torch.manual_seed(1)
    logits = torch.randn(1, 4, 3, dtype=torch.float64)
    pred = torch.rand(1, 4, 4, dtype=torch.float64) * 0.3 + 0.2
    target = {"labels": torch.tensor([0, 2]), "boxes": torch.rand(2, 4, dtype=torch.float64) * 0.3 + 0.2}
    ul = get_profile("ultralytics").matcher
    base = MatcherConvention(class_cost="focal", weight_class=2.0, giou=ul.giou)
    (a,) = hungarian_match(logits, pred, [target], convention=ul)
    (b,) = hungarian_match(logits, pred, [target], convention=base)
    torch.testing.assert_close(a.cost_matrix, b.cost_matrix + 2.0 * 1.0, rtol=0, atol=1e-14)
    assert torch.equal(a.pred_idx, b.pred_idx) and torch.equal(a.gt_idx, b.gt_idx)


def test_dino_giou_convention_enters_the_cost():
    logits = torch.zeros(1, 1, 2, dtype=torch.float64)
    pred = torch.tensor([[[0.505, 0.505, 0.01, 0.01]]], dtype=torch.float64)
    target = {"labels": torch.tensor([0]), "boxes": torch.tensor([[0.507, 0.507, 0.01, 0.01]])}
    exact = hungarian_match(logits, pred, [target], convention=MatcherConvention(weight_class=0, weight_bbox=0))
    dino = hungarian_match(logits, pred, [target],
                           convention=MatcherConvention(weight_class=0, weight_bbox=0, giou=IOU_DINO))
    want_exact = -box_ops.giou(box_ops.convert(pred[0], "cxcywh", "xyxy"),
                               box_ops.convert(target["boxes"], "cxcywh", "xyxy"))
    assert exact[0].total_cost == pytest.approx(2 * want_exact.item(), rel=1e-14)
    assert dino[0].total_cost > exact[0].total_cost  # the additive eps lowers GIoU (§F4: -0.74%)


# --------------------------------------------------------------------------- evaluate_matching

def test_evaluate_matching_reports_validity_and_gap():
    cost = torch.tensor([[1.0, 2.0], [2.0, 1.0], [0.0, 5.0]], dtype=torch.float64)
    ok = evaluate_matching(cost, [1, 2], [1, 0])
    assert ok.valid and ok.total_cost == 1.0 and ok.optimal_cost == 1.0 and ok.gap == 0.0
    worse = evaluate_matching(cost, [0, 1], [0, 1])
    assert worse.valid and worse.gap == pytest.approx(1.0)
    dup = evaluate_matching(cost, [0, 0], [0, 1])
    assert not dup.valid and any("pred_idx uses [0] more than once" in p for p in dup.problems)
    short = evaluate_matching(cost, [2], [0])
    assert not short.valid and any("expected min(Q, T) = 2" in p for p in short.problems)
    out = evaluate_matching(cost, [0, 3], [0, 1])
    assert not out.valid and out.total_cost is None and out.gap is None
    empty = evaluate_matching(torch.zeros(3, 0), [], [])
    assert empty.valid and empty.total_cost == 0.0 and empty.gap == 0.0


@given(S.cost_matrices(5, 5), st.data())
def test_evaluate_matching_gap_is_non_negative_for_every_valid_matching(cost, data):
    q, t = cost.shape
    k = min(q, t)
    rows = data.draw(st.permutations(range(q)))[:k]
    cols = data.draw(st.permutations(range(t)))[:k]
    ev = evaluate_matching(cost, rows, cols)
    assert ev.valid
    assert ev.gap >= -1e-12
    assert ev.optimal_cost == pytest.approx(brute_force_min(cost), rel=1e-12, abs=1e-12)


def test_non_finite_policies():
    """"raise" refuses a NaN logit; "max" avoids the poisoned pair where a matching can (big-M, finite sums), and
    matches a wholly poisoned row only where unavoidable; "zero" gives those entries cost 0."""
    import dataclasses

    from oracle.assign.hungarian import poisoned_entries
    from oracle.errors import OracleInputError
    base = MatcherConvention(class_cost="focal")
    logits = torch.zeros(1, 3, 2, dtype=torch.float64)
    logits[0, 0, 0] = float("nan")  # query 0 cannot take a label-0 target
    boxes = torch.tensor([[[0.3, 0.3, 0.2, 0.2], [0.7, 0.7, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2]]], dtype=torch.float64)
    boxes[0, 2, 0] = float("inf")  # query 2 is poisoned for every target
    targets = [{"labels": torch.tensor([0, 1]), "boxes": boxes[0, :2].clone()}]
    with pytest.raises(OracleInputError, match="finite"):
        hungarian_match(logits, boxes, targets, convention=base)
    m = hungarian_match(logits, boxes, targets, convention=dataclasses.replace(base, non_finite_cost="max"))[0]
    # Query 0 sits on target 0 but may not take it: it takes target 1, query 1 target 0; query 2 stays unmatched.
    assert m.pred_idx.tolist() == [0, 1] and m.gt_idx.tolist() == [1, 0]
    poisoned = poisoned_entries(m.cost_matrix)
    assert poisoned.tolist() == [[True, False], [False, False], [True, True]]
    assert torch.isfinite(m.cost_matrix).all() and math.isfinite(float(m.cost_matrix.sum()))
    z = hungarian_match(logits, boxes, targets, convention=dataclasses.replace(base, non_finite_cost="zero"))[0]
    assert z.cost_matrix[2].tolist() == [0.0, 0.0] and float(z.cost_matrix[0, 0]) == 0.0
