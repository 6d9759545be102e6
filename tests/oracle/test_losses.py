"""oracle.losses against hand-computed values, scalar textbook formulas, torch.nn.functional and properties."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from conformance import strategies as S
from oracle import boxes as box_ops
from oracle import losses as L
from oracle.conventions import FLT_EPS, IOU_MMDET, IOU_TORCHVISION_LOSS
from oracle.errors import OracleInputError


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _scalar_focal(x: float, t: float, alpha: float | None, gamma: float) -> float:
    """The focal loss of Lin et al. for one logit, written from the paper with Python floats."""
    p = _sigmoid(x)
    ce = -(t * math.log(p) + (1 - t) * math.log(1 - p))
    p_t = p * t + (1 - p) * (1 - t)
    a_t = 1.0 if alpha is None else alpha * t + (1 - alpha) * (1 - t)
    return a_t * (1 - p_t) ** gamma * ce


# --------------------------------------------------------------------------- reduction

def test_reduce_loss_modes():
    loss = torch.tensor([1.0, 2.0, 3.0, 6.0], dtype=torch.float64)
    w = torch.tensor([1.0, 0.0, 2.0, 0.5], dtype=torch.float64)
    assert L.reduce_loss(loss, reduction="sum").item() == 12.0
    assert L.reduce_loss(loss, reduction="mean").item() == 3.0
    assert L.reduce_loss(loss, weight=w, reduction="sum").item() == 10.0
    assert L.reduce_loss(loss, weight=w, reduction="mean").item() == 2.5  # zero weights still count
    assert L.reduce_loss(loss, weight=w, avg_factor=4).item() == 2.5
    # mmdet: sum / (avg_factor + FLT_EPS), with the float32 eps even in float64.
    assert L.reduce_loss(loss, avg_factor=3, avg_factor_eps=FLT_EPS).item() == 12.0 / (3 + 1.1920928955078125e-07)
    torch.testing.assert_close(L.reduce_loss(loss, weight=w, reduction="none", avg_factor=3), loss * w)
    with pytest.raises(OracleInputError, match="reduction: expected 'mean' or 'none' when avg_factor"):
        L.reduce_loss(loss, reduction="sum", avg_factor=3)


def test_reduce_loss_empty():
    empty = torch.zeros(0, dtype=torch.float64)
    assert L.reduce_loss(empty, reduction="sum").item() == 0.0
    assert L.reduce_loss(empty, avg_factor=1.0).item() == 0.0
    with pytest.raises(OracleInputError, match="at least one element for reduction='mean'"):
        L.reduce_loss(empty, reduction="mean")


# --------------------------------------------------------------------------- cross-entropy

def test_softmax_cross_entropy_hand_values():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    labels = torch.tensor([0, 2])
    z0 = math.log(math.exp(2) + 2)
    z1 = math.log(math.e + 2)
    want = [z0 - 2, z1 - 0]
    torch.testing.assert_close(L.softmax_cross_entropy(logits, labels, reduction="none"),
                               torch.tensor(want, dtype=torch.float64), rtol=1e-15, atol=0)
    # DETR's loss_ce: weighted mean with the no-object class (last) at eos_coef = 0.1.
    w = L.background_class_weight(2, 0.1)
    assert w.tolist() == [1.0, 1.0, 0.1]
    got = L.softmax_cross_entropy(logits, labels, class_weight=w, avg_factor=w[labels].sum())
    assert got.item() == pytest.approx((1.0 * want[0] + 0.1 * want[1]) / 1.1, rel=1e-15)


@given(S.logits((5, 4), bound=30.0), st.lists(st.integers(-1, 3), min_size=5, max_size=5),
       S.probabilities((4,)))
def test_softmax_cross_entropy_matches_torch(x, labels, cw):
    y = torch.tensor(labels)
    mine = L.softmax_cross_entropy(x, y, class_weight=cw, ignore_index=-1, reduction="none")
    ref = F.cross_entropy(x, y, weight=cw, ignore_index=-1, reduction="none")
    torch.testing.assert_close(mine, ref, rtol=1e-13, atol=1e-13)
    keep = y != -1
    if cw[y[keep]].sum() > 0:
        weighted_mean = L.softmax_cross_entropy(x, y, class_weight=cw, ignore_index=-1,
                                                avg_factor=cw[y[keep]].sum())
        torch.testing.assert_close(weighted_mean, F.cross_entropy(x, y, weight=cw, ignore_index=-1),
                                   rtol=1e-12, atol=1e-12)


def test_one_hot_targets_background_row_is_zero():
    got = L.one_hot_targets(torch.tensor([0, 2, 3]), num_classes=3)
    assert got.tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 0]]


@given(S.logits((3, 4), bound=40.0), S.probabilities((3, 4)), S.probabilities((4,)))
def test_sigmoid_bce_matches_torch(x, t, pw):
    mine = L.sigmoid_binary_cross_entropy(x, t, pos_weight=pw, reduction="none")
    ref = F.binary_cross_entropy_with_logits(x, t, pos_weight=pw, reduction="none")
    torch.testing.assert_close(mine, ref, rtol=1e-13, atol=1e-13)


def test_sigmoid_bce_of_bool_targets_has_the_bits_of_float_targets():
    # Bool targets take one log-sigmoid of where(t, x, -x): the same values and gradients, bit for
    # bit, as the general form on the same targets as 0.0 / 1.0, saturated logits included; with pos_weight
    # they take the general form.
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(5, 6, 7, generator=gen, dtype=torch.float64) * 8
    x[0, 0, :4] = torch.tensor([40.0, -40.0, 800.0, -800.0])
    t = torch.rand(5, 6, 7, generator=gen) > 0.5
    scale = torch.rand(5, 6, 7, generator=gen, dtype=torch.float64)

    def run(targets, **kwargs):
        logits = x.clone().requires_grad_(True)
        loss = L.sigmoid_binary_cross_entropy(logits, targets, reduction="none", **kwargs)
        return loss, torch.autograd.grad((loss * scale).sum(), logits)[0]
    (binary, binary_grad), (general, general_grad) = run(t), run(t.double())
    assert torch.equal(binary, general) and torch.equal(binary_grad, general_grad)
    assert binary_grad.abs().sum() > 0
    weighted, _ = run(t, pos_weight=2.0)
    torch.testing.assert_close(weighted, run(t.double(), pos_weight=2.0)[0], rtol=0, atol=0)
    assert not torch.equal(weighted, binary)
    with pytest.raises(OracleInputError, match="targets"):
        L.sigmoid_binary_cross_entropy(x, t[:4])


def test_sigmoid_bce_is_stable_for_saturated_logits():
    x = torch.tensor([800.0, -800.0], dtype=torch.float64)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    # -log(1 - sigmoid(800)) = 800 exactly in the limit; the naive log of a sigmoid gives inf.
    torch.testing.assert_close(L.sigmoid_binary_cross_entropy(x, t, reduction="none"),
                               torch.tensor([800.0, 800.0], dtype=torch.float64))


# --------------------------------------------------------------------------- focal

@pytest.mark.parametrize("x, t, alpha, gamma", [
    (0.3, 1.0, 0.25, 2.0), (-1.2, 0.0, 0.25, 2.0), (2.0, 0.0, 0.25, 2.0), (0.7, 0.4, 0.5, 1.5),
    (-3.0, 1.0, None, 2.0), (1.0, 1.0, 0.25, 0.0), (5.0, 0.0, 0.75, 3.0),
])
def test_focal_matches_scalar_formula(x, t, alpha, gamma):
    got = L.sigmoid_focal_loss(torch.tensor([x]), torch.tensor([t]), alpha=alpha, gamma=gamma, reduction="sum")
    assert got.item() == pytest.approx(_scalar_focal(x, t, alpha, gamma), rel=1e-13)


def test_focal_hand_value():
    # x = 0: p = 1/2, CE = ln 2, (1 - p_t)^2 = 1/4; positive alpha 0.25 -> 0.25 * 0.25 * ln 2.
    got = L.sigmoid_focal_loss(torch.tensor([0.0]), torch.tensor([1.0]), reduction="sum").item()
    assert got == pytest.approx(0.0625 * math.log(2), rel=1e-15)


def test_focal_is_exact_for_saturated_logits():
    # Negative class, x = 20: focal = 0.75 * sigmoid(20)^2 * softplus(20); mmcv's float32 CUDA op
    # gives 65.50 here (upstream_sources.md §F6); the reference gives ~15.0.
    x = 20.0
    p = _sigmoid(x)
    want = 0.75 * p ** 2 * (x + math.log1p(math.exp(-x)))
    got = L.sigmoid_focal_loss(torch.tensor([x]), torch.tensor([0.0]), reduction="sum").item()
    assert got == pytest.approx(want, rel=1e-15)
    assert got == pytest.approx(15.0, rel=1e-8)


@given(S.logits((4, 3), bound=50.0), S.probabilities((4, 3)), st.none() | st.floats(0, 1), st.floats(0, 4))
def test_focal_is_non_negative_and_finite(x, t, alpha, gamma):
    loss = L.sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction="none")
    assert bool(torch.isfinite(loss).all()) and bool((loss >= 0).all())


@given(S.logits((6, 3), bound=20.0), S.probabilities((6, 3)), st.permutations(range(6)))
def test_focal_sum_invariant_to_permutation(x, t, perm):
    p = torch.tensor(perm)
    a = L.sigmoid_focal_loss(x, t, reduction="sum")
    b = L.sigmoid_focal_loss(x[p], t[p], reduction="sum")
    torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-14)


def test_focal_gradient_is_finite_and_matches_finite_differences():
    x = torch.tensor([[-3.0, 0.2, 4.0]], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([[0.0, 1.0, 0.3]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda v: L.sigmoid_focal_loss(v, t, reduction="sum"), (x,))


# --------------------------------------------------------------------------- regression

def test_l1_and_smooth_l1_hand_values():
    p = torch.tensor([0.0, 0.5, 3.0], dtype=torch.float64)
    t = torch.tensor([0.2, 0.5, 1.0], dtype=torch.float64)
    assert L.l1_loss(p, t, reduction="none").tolist() == pytest.approx([0.2, 0.0, 2.0], rel=1e-15)
    # beta 1: 0.5 d^2 for d < 1, d - 0.5 otherwise.
    assert L.smooth_l1_loss(p, t, reduction="none").tolist() == pytest.approx([0.02, 0.0, 1.5], rel=1e-14)
    assert L.smooth_l1_loss(p, t, beta=0.0, reduction="none").tolist() == pytest.approx([0.2, 0.0, 2.0], rel=1e-15)


@given(S.logits((5, 4), bound=3.0), S.logits((5, 4), bound=3.0), st.floats(0.0, 2.0))
def test_smooth_l1_matches_torch(p, t, beta):
    torch.testing.assert_close(L.smooth_l1_loss(p, t, beta=beta, reduction="none"),
                               F.smooth_l1_loss(p, t, beta=beta, reduction="none"), rtol=1e-14, atol=1e-14)


def test_smooth_l1_gradient_finite_at_beta_zero():
    p = torch.tensor([0.0, 1.0], dtype=torch.float64, requires_grad=True)
    loss = L.smooth_l1_loss(p, torch.tensor([0.5, 1.0]), beta=0.0, reduction="sum")
    (g,) = torch.autograd.grad(loss, p)
    assert bool(torch.isfinite(g).all())


def test_giou_and_ciou_loss_are_one_minus_the_aligned_overlap():
    p = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 4.0]], dtype=torch.float64)
    t = torch.tensor([[1.0, 1.0, 3.0, 4.0], [1.0, 1.0, 3.0, 4.0]], dtype=torch.float64)
    # pair 0: GIoU = 1/9 - 3/12 (see test_boxes); pair 1 identical: loss 0.
    want = [1 - (1 / 9 - 0.25), 0.0]
    assert L.giou_loss(p, t, reduction="none").tolist() == pytest.approx(want, rel=1e-15, abs=1e-16)
    assert L.giou_loss(p, t, avg_factor=2).item() == pytest.approx(sum(want) / 2, rel=1e-15)
    got = L.ciou_loss(p, t, convention=IOU_TORCHVISION_LOSS, reduction="none")
    torch.testing.assert_close(got, 1 - box_ops.ciou(p, t, aligned=True, convention=IOU_TORCHVISION_LOSS))
    assert got[1].item() == pytest.approx(1 - 6 / (6 + 1e-7), abs=1e-15)
    assert L.diou_loss(p, t, reduction="none")[1].item() == 0.0


@given(S.boxes_positive(st.integers(1, 6)), S.boxes_positive(st.integers(1, 6)), st.data())
def test_box_losses_invariant_to_permuting_pairs(p, t, data):
    n = min(len(p), len(t))
    p, t = p[:n], t[:n]
    perm = torch.tensor(data.draw(st.permutations(range(n))))
    for fn in (L.giou_loss, L.ciou_loss, L.diou_loss):
        torch.testing.assert_close(fn(p, t, reduction="sum"), fn(p[perm], t[perm], reduction="sum"),
                                   rtol=1e-14, atol=1e-14)
        assert bool((fn(p, t, reduction="none") >= -1e-15).all())


def test_mmdet_giou_loss_in_pixels_with_avg_factor_eps():
    p = torch.tensor([[10.0, 10.0, 50.0, 40.0]], dtype=torch.float64)
    t = torch.tensor([[20.0, 15.0, 60.0, 45.0]], dtype=torch.float64)
    # inter 30x25 = 750, areas 1200 and 1200, union 1650, enclosing 50x35 = 1750.
    giou = 750 / 1650 - 100 / 1750
    got = L.giou_loss(p, t, convention=IOU_MMDET, avg_factor=1, avg_factor_eps=FLT_EPS).item()
    assert got == pytest.approx((1 - giou) / (1 + FLT_EPS), rel=1e-15)



def test_iou_losses_take_mmdets_per_coordinate_weights_as_their_mean():
    # Identical boxes: loss 0. Side by side, a gap of 1: IoU 0, enclosing 3 x 1, union 2, GIoU -1/3, loss 4/3.
    p = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
    t = torch.tensor([[0.0, 0.0, 1.0, 1.0], [2.0, 0.0, 3.0, 1.0]], dtype=torch.float64)
    # Per-coordinate weights [2, 4] (mmdet's bbox_weights): their means 1.75 and 0.5 weigh the two boxes.
    w = torch.tensor([[1.0, 2.0, 2.0, 2.0], [0.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    got = L.giou_loss(p, t, weight=w, reduction="none", convention=IOU_MMDET)
    assert got.tolist() == pytest.approx([0.0, 2.0 / 3.0], rel=1e-15, abs=1e-15)
    # CIoU of the side-by-side pair: IoU 0, centre distance 2 over the enclosing diagonal^2 = 10, equal aspects.
    got = L.ciou_loss(p, t, weight=w, reduction="sum")
    assert got.item() == pytest.approx(0.5 * (1 + 4 / 10), rel=1e-15)
    for bad in (torch.ones(2, 3), torch.ones(2, 4, 1)):
        with pytest.raises(OracleInputError, match="weight"):
            L.giou_loss(p, t, weight=bad)

# --------------------------------------------------------------------------- dice

def test_dice_hand_value():
    # logits 0 -> p = 1/2 on 4 pixels; targets [1, 1, 0, 0]: sum(p t) = 1, sum p = 2, sum t = 2.
    x = torch.zeros(1, 2, 2, dtype=torch.float64)
    t = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]], dtype=torch.float64)
    assert L.dice_loss(x, t, reduction="sum").item() == pytest.approx(1 - 3 / 5, rel=1e-15)
    assert L.dice_loss(x, t, smooth=0.0, reduction="sum").item() == pytest.approx(1 - 2 / 4, rel=1e-15)


@given(S.logits((3, 5), bound=10.0), S.probabilities((3, 5)))
def test_dice_in_unit_interval(x, t):
    d = L.dice_loss(x, t, reduction="none")
    assert d.shape == (3,) and bool(((d >= 0) & (d <= 1)).all())
