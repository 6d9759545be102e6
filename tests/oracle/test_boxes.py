"""oracle.boxes: formats, area and the IoU family against exact arithmetic, hand values and properties."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conformance import strategies as S
from oracle import boxes as box_ops
from oracle.conventions import (IOU_DINO, IOU_EXACT, IOU_MMDET, IOU_MMDET_CIOU_LOSS, IOU_TORCHVISION_LOSS,
                                IOU_TORCHVISION_PAIRWISE, IOU_ULTRALYTICS_XYWH, IOU_ULTRALYTICS_XYXY, IoUConvention)
from oracle.errors import OracleInputError


# --------------------------------------------------------------------------- exact rational model
# An independent implementation in exact arithmetic, written from the definitions (not from
# oracle.boxes), for small integer boxes where every ratio is a rational number.

def _exact_parts(a, b):
    a = [Fraction(v) for v in a]
    b = [Fraction(v) for v in b]
    iw = max(Fraction(0), min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(Fraction(0), min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    enclose = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    diag2 = (max(a[2], b[2]) - min(a[0], b[0])) ** 2 + (max(a[3], b[3]) - min(a[1], b[1])) ** 2
    rho2 = ((a[0] + a[2]) / 2 - (b[0] + b[2]) / 2) ** 2 + ((a[1] + a[3]) / 2 - (b[1] + b[3]) / 2) ** 2
    return inter, union, enclose, diag2, rho2


def exact_iou(a, b):
    inter, union, *_ = _exact_parts(a, b)
    return inter / union


def exact_giou(a, b):
    inter, union, enclose, *_ = _exact_parts(a, b)
    return inter / union - (enclose - union) / enclose


def exact_diou(a, b):
    inter, union, _, diag2, rho2 = _exact_parts(a, b)
    return inter / union - rho2 / diag2


SMALL_BOXES = [(0, 0, 2, 2), (1, 1, 3, 4), (0, 0, 1, 1), (2, 0, 5, 1), (4, 4, 6, 7), (0, 0, 6, 7), (1, 0, 2, 5)]


@pytest.mark.parametrize("fn, exact", [(box_ops.iou, exact_iou), (box_ops.giou, exact_giou),
                                       (box_ops.diou, exact_diou)],
                         ids=["iou", "giou", "diou"])
def test_pairwise_matches_exact_rational_arithmetic(fn, exact):
    t = torch.tensor(SMALL_BOXES, dtype=torch.float64)
    got = fn(t, t)
    for i, j in itertools.product(range(len(SMALL_BOXES)), repeat=2):
        want = exact(SMALL_BOXES[i], SMALL_BOXES[j])
        # float64 of a rational computed with a handful of roundings: a few ULP.
        assert got[i, j].item() == pytest.approx(float(want), rel=4e-16, abs=4e-16), (i, j, want)


def test_hand_computed_values():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 4.0]])
    # inter 1, areas 4 and 6, union 9, enclosing box 3x4 = 12, centres (1,1) and (2,2.5),
    # squared diagonal 9 + 16 = 25, squared centre distance 1 + 2.25 = 3.25.
    assert box_ops.iou(a, b).item() == pytest.approx(1 / 9, rel=1e-15)
    assert box_ops.giou(a, b).item() == pytest.approx(1 / 9 - 3 / 12, rel=1e-15)
    assert box_ops.diou(a, b).item() == pytest.approx(1 / 9 - 3.25 / 25, rel=1e-15)
    # CIoU: v = 4/pi^2 (atan(2/3) - atan(2/2))^2, alpha = v / (1 - 1/9 + v).
    v = 4 / math.pi ** 2 * (math.atan(2 / 3) - math.atan(1.0)) ** 2
    alpha = v / (1 - 1 / 9 + v)
    assert box_ops.ciou(a, b).item() == pytest.approx(1 / 9 - 3.25 / 25 - alpha * v, rel=1e-14)
    # IoF: inter / area1 = 1/4.
    assert box_ops.iou(a, b, mode="iof").item() == pytest.approx(0.25, rel=1e-15)
    assert box_ops.area(b).item() == 6.0


@pytest.mark.parametrize("convention, expected", [
    (IOU_EXACT, 0.4150326797),             # DETR, Deformable-DETR, torchvision generalized_box_iou
    (IOU_DINO, 0.4119808709),              # DINO / detrex: additive 1e-6 in normalised units
    (IOU_MMDET, 0.4150326797),             # mmdet clamp 1e-6 never fires at this size
    (IOU_TORCHVISION_LOSS, 0.4147254667),  # torchvision generalized_box_iou_loss: additive 1e-7
], ids=["exact", "dino", "mmdet", "torchvision-loss"])
def test_giou_eps_conventions_match_the_survey_table(convention, expected):
    # upstream_sources.md §F4: boxes 10 px wide in a 1000 px image, in normalised units.
    b1 = torch.tensor([[0.5, 0.5, 0.51, 0.51]])
    b2 = torch.tensor([[0.502, 0.502, 0.512, 0.512]])
    assert box_ops.giou(b1, b2, convention=convention).item() == pytest.approx(expected, abs=5e-11)


def test_clamp_convention_uses_clamped_union_in_the_penalty():
    # Two zero-area boxes: union 0 -> 1e-6, enclosing area 0 -> 1e-6, so GIoU = 0 - (1e-6 - 1e-6)/1e-6 = 0
    # (mmdet bbox_overlaps). An additive eps gives 0 - (0 - 0)/(0 + eps) = 0 too; a degenerate pair with a
    # positive enclosing area tells them apart.
    a = torch.tensor([[0.0, 0.0, 0.0, 0.0]])
    b = torch.tensor([[1e-4, 0.0, 1e-4, 0.0]])  # enclosing box 1e-4 x 0 = 0 area
    assert box_ops.giou(a, a, convention=IOU_MMDET).item() == 0.0
    c = torch.tensor([[0.0, 0.0, 1e-3, 0.0]])   # zero height; with a: enclosing area 0, union 0
    d = torch.tensor([[0.0, 0.0, 1e-4, 1e-3]])  # area 1e-7 (< eps): union clamps to 1e-6
    # union = 0 + 1e-7 - 0 = 1e-7 -> 1e-6; enclose = 1e-3 * 1e-3 = 1e-6 -> 1e-6; iou = 0; penalty 0.
    assert box_ops.giou(c, d, convention=IOU_MMDET).item() == pytest.approx(0.0, abs=1e-15)
    # additive: iou 0, penalty (1e-6 - 1e-7) / (1e-6 + 1e-6) = 0.45
    add = IoUConvention(eps_mode="add", eps=1e-6)
    assert box_ops.giou(c, d, convention=add).item() == pytest.approx(-0.45, rel=1e-12)
    assert box_ops.iou(a, b, convention=IOU_MMDET).item() == 0.0


def test_zero_union_is_refused_without_eps_and_defined_with_it():
    z = torch.tensor([[0.3, 0.3, 0.3, 0.3]])
    for fn in (box_ops.iou, box_ops.giou, box_ops.diou):
        with pytest.raises(OracleInputError, match="union area is 0 for the pair at \\(0, 0\\)"):
            fn(z, z)
    assert box_ops.iou(z, z, convention=IOU_DINO).item() == 0.0
    assert box_ops.giou(z, z, convention=IOU_DINO).item() == 0.0


def test_ultralytics_height_eps_enters_area_and_aspect():
    # bbox_iou(xywh=False): h + eps in both areas, so IoU of identical boxes is
    # w(h+e) / (2 w (h+e) - w h + e) rather than 1.
    e = 1e-7
    a = torch.tensor([[0.0, 0.0, 2.0, 1.0]])
    w, h = 2.0, 1.0
    want = (w * h) / (2 * w * (h + e) - w * h + e)
    assert box_ops.iou(a, a, convention=IOU_ULTRALYTICS_XYXY).item() == pytest.approx(want, rel=1e-15)
    assert box_ops.iou(a, a, convention=IOU_ULTRALYTICS_XYWH).item() == pytest.approx(w * h / (w * h + e), rel=1e-15)
    # A zero-height box: defined aspect atan(w / e) under ultralytics xyxy; atan(w/0) = pi/2 without eps.
    flat = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    box = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    v = 4 / math.pi ** 2 * (math.atan(1.0) - math.pi / 2) ** 2
    got = box_ops.ciou(box, flat, convention=IOU_TORCHVISION_PAIRWISE).item()
    # iou 0 (no area overlap), rho^2 = 0.25, c^2 = 2 + 1e-7, alpha = v / (1 + v + 1e-7)
    assert got == pytest.approx(-(0.25 / (2 + 1e-7)) - v * v / (1 + v + 1e-7), rel=1e-14)


def test_mmdet_ciou_alpha_threshold_and_clamp():
    a = torch.tensor([[0.0, 0.0, 4.0, 2.0]])
    b = torch.tensor([[0.0, 0.0, 2.0, 2.0]])  # iou 0.5: not above the threshold, so alpha = 0
    e = 1e-7
    iou = 4.0 / (8.0 + 4.0 - 4.0 + e)
    rho2 = 1.0  # centres (2,1) and (1,1)
    c2 = 16.0 + 4.0 + e
    got = box_ops.ciou(a, b, aligned=True, convention=IOU_MMDET_CIOU_LOSS).item()
    assert got == pytest.approx(iou - rho2 / c2, rel=1e-14)  # no aspect term at iou <= 0.5
    # Without the threshold the aspect term is present and the value is lower.
    assert box_ops.ciou(a, b, aligned=True, convention=IOU_TORCHVISION_LOSS).item() < got - 1e-3


def test_ciou_alpha_threshold_is_strict():
    # mmdet writes (ious > 0.5): at iou exactly 0.5 the aspect term is off, just above it is on.
    conv = IoUConvention(ciou_alpha_min_iou=0.5)
    a = torch.tensor([[0.0, 0.0, 4.0, 2.0]])
    at_half = torch.tensor([[0.0, 0.0, 2.0, 2.0]])   # inter 4, union 8: iou exactly 0.5
    above = torch.tensor([[0.0, 0.0, 2.25, 2.0]])    # inter 4.5, union 8: iou 0.5625
    assert box_ops.iou(a, at_half).item() == 0.5
    assert box_ops.ciou(a, at_half, convention=conv).item() == box_ops.diou(a, at_half).item()
    assert box_ops.ciou(a, above, convention=conv).item() < box_ops.diou(a, above).item() - 1e-3


def test_ciou_of_identical_boxes_is_one_without_eps():
    a = torch.tensor([[0.1, 0.2, 0.4, 0.9]])
    assert box_ops.ciou(a, a).item() == 1.0  # v = 0: alpha * v is 0, not 0/0


def test_ciou_zero_size_box_aspect_is_refused_without_height_eps():
    point = torch.tensor([[0.5, 0.5, 0.5, 0.5]])
    box = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    with pytest.raises(OracleInputError, match="aspect term"):
        box_ops.ciou(point, box)
    assert math.isfinite(box_ops.ciou(point, box, convention=IOU_ULTRALYTICS_XYXY).item())


@pytest.mark.parametrize("src, dst, box, want", [
    ("cxcywh", "xyxy", [0.5, 0.5, 0.4, 0.2], [0.3, 0.4, 0.7, 0.6]),
    ("xyxy", "cxcywh", [0.3, 0.4, 0.7, 0.6], [0.5, 0.5, 0.4, 0.2]),
    ("xywh", "xyxy", [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 4.0, 6.0]),
    ("xyxy", "xywh", [1.0, 2.0, 4.0, 6.0], [1.0, 2.0, 3.0, 4.0]),
    ("xywh", "cxcywh", [1.0, 2.0, 3.0, 4.0], [2.5, 4.0, 3.0, 4.0]),
])
def test_convert_hand_values(src, dst, box, want):
    got = box_ops.convert(torch.tensor([box]), src, dst)
    torch.testing.assert_close(got, torch.tensor([want], dtype=torch.float64), rtol=1e-15, atol=1e-15)


def test_convert_keeps_leading_dimensions_and_returns_a_copy():
    x = torch.rand(2, 3, 4, dtype=torch.float64)
    x[..., 2:] += x[..., :2]
    y = box_ops.convert(x, "xyxy", "xyxy")
    assert y.shape == (2, 3, 4) and y.data_ptr() != x.data_ptr()


def test_empty_inputs_give_empty_outputs():
    e = torch.zeros(0, 4)
    b = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    assert box_ops.iou(e, b).shape == (0, 1)
    assert box_ops.giou(b, e).shape == (1, 0)
    assert box_ops.ciou(e, e, aligned=True).shape == (0,)


# --------------------------------------------------------------------------- properties

@given(S.boxes_positive(), S.boxes_positive())
def test_giou_in_range_and_symmetric(a, b):
    g = box_ops.giou(a, b)
    assert bool(((g >= -1 - 1e-12) & (g <= 1 + 1e-12)).all())
    torch.testing.assert_close(g, box_ops.giou(b, a).T, rtol=0, atol=1e-15)


@given(S.boxes_positive(), S.boxes_positive())
def test_iou_bounds_and_giou_below_iou(a, b):
    i = box_ops.iou(a, b)
    assert bool(((i >= 0) & (i <= 1 + 1e-15)).all())
    assert bool((box_ops.giou(a, b) <= i + 1e-15).all())
    assert bool((box_ops.diou(a, b) <= i + 1e-15).all())


@given(S.boxes_positive())
def test_self_overlap_is_one(a):
    for fn in (box_ops.iou, box_ops.giou, box_ops.diou, box_ops.ciou):
        torch.testing.assert_close(fn(a, a, aligned=True), torch.ones(len(a), dtype=torch.float64),
                                   rtol=0, atol=2e-16)


@given(S.boxes_xyxy(st.integers(0, 6)), st.sampled_from(box_ops.FORMATS), st.sampled_from(box_ops.FORMATS))
def test_conversions_round_trip(xyxy, f1, f2):
    x = box_ops.convert(xyxy, "xyxy", f1)
    back = box_ops.convert(box_ops.convert(x, f1, f2), f2, "xyxy")
    torch.testing.assert_close(back, xyxy, rtol=0, atol=4e-16)


@given(S.boxes_positive(), S.boxes_positive(), st.sampled_from(box_ops.FORMATS))
def test_formats_give_the_same_overlaps(a, b, fmt):
    got = box_ops.giou(box_ops.convert(a, "xyxy", fmt), box_ops.convert(b, "xyxy", fmt), fmt=fmt)
    torch.testing.assert_close(got, box_ops.giou(a, b), rtol=0, atol=4e-15)


@given(S.boxes_positive(), S.boxes_positive())
def test_aligned_is_the_diagonal_of_pairwise(a, b):
    n = min(len(a), len(b))
    for fn in (box_ops.iou, box_ops.giou, box_ops.diou, box_ops.ciou):
        torch.testing.assert_close(fn(a[:n], b[:n], aligned=True), torch.diagonal(fn(a[:n], b[:n])),
                                   rtol=0, atol=0)


@given(S.boxes_xyxy(st.integers(1, 5)), S.boxes_xyxy(st.integers(1, 5)),
       st.sampled_from([IOU_DINO, IOU_MMDET, IOU_TORCHVISION_LOSS, IOU_ULTRALYTICS_XYXY]))
def test_gradients_are_finite_on_degenerate_boxes_where_the_convention_defines_them(a, b, conv):
    # Zero-width, zero-height and zero-area boxes are allowed by the strategy (min_size=0).
    a = a.clone().requires_grad_(True)
    b = b.clone().requires_grad_(True)
    fns = [box_ops.iou, box_ops.giou]
    if conv.diag_eps > 0 and conv.aspect_height_eps > 0:
        fns += [box_ops.diou, box_ops.ciou]
    for fn in fns:
        out = fn(a, b, convention=conv)
        ga, gb = torch.autograd.grad(out.sum(), (a, b))
        assert bool(torch.isfinite(out).all())
        assert bool(torch.isfinite(ga).all()) and bool(torch.isfinite(gb).all())


def test_giou_gradient_matches_finite_differences():
    a = torch.tensor([[0.1, 0.2, 0.5, 0.7]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([[0.3, 0.1, 0.9, 0.6]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: box_ops.giou(x, y, convention=IOU_DINO), (a, b))
    assert torch.autograd.gradcheck(lambda x, y: box_ops.diou(x, y, convention=IOU_TORCHVISION_PAIRWISE), (a, b))


def test_intersection_convention_decides_the_gradient_where_boxes_touch():
    # pred's right edge lies on target's left edge (overlap width exactly 0, height 0.0625): the geometry
    # hypothesis found against torchvision's generalized_box_iou_loss.
    pred = torch.tensor([[0.0, 0.0, 0.5, 0.5625]], requires_grad=True)
    target = torch.tensor([[0.5, 0.5, 1.0, 1.0]])
    e = 1e-7
    clamp = IoUConvention(eps_mode="add", eps=e)
    strict = IoUConvention(eps_mode="add", eps=e, intersection="strict")
    values = [box_ops.giou(pred, target, aligned=True, convention=c) for c in (clamp, strict)]
    assert values[0].item() == values[1].item()
    (g_clamp,) = torch.autograd.grad(values[0].sum(), pred)
    (g_strict,) = torch.autograd.grad(values[1].sum(), pred)
    # d/dx2: union U = 0.28125 + 0.25 = 0.53125, enclosing C = 1, d(area1)/dx2 = 0.5625, overlap height 0.0625.
    # clamp passes d(inter)/dx2 = 0.0625: dGIoU = 0.0625/(U+e) + (0.5625 - 0.0625)/(C+e)
    # strict has d(inter)/dx2 = 0:          dGIoU = 0 + 0.5625/(C+e)
    assert g_clamp[0, 2].item() == pytest.approx(0.0625 / (0.53125 + e) + 0.5 / (1 + e), rel=1e-12)
    assert g_strict[0, 2].item() == pytest.approx(0.5625 / (1 + e), rel=1e-12)
