"""oracle.coders: delta-xywh encode/decode (mmdet, torchvision), dist2bbox/bbox2dist, DFL decode."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conformance.strategies import boxes_xyxy
from oracle.coders import (CODER_MMDET, CODER_TORCHVISION_RCNN, CODER_TORCHVISION_RETINANET, DeltaXYWHCoder,
                           bbox2dist, dfl_expectation, dist2bbox)
from oracle.errors import OracleInputError

from ..conftest import import_or_skip

MMDET_INSTALL = "see docs/install.md (mmcv 2.1.0 built with ops, then mmdet 3.3.0)"
UL_INSTALL = 'pip install -c constraints.txt -e ".[ultralytics]"'
TV_INSTALL = 'pip install -c constraints.txt -e ".[torchvision]"'

ANCHORS = torch.tensor([[0.0, 0.0, 10.0, 20.0], [5.0, 5.0, 9.0, 7.0]])
GT = torch.tensor([[1.0, 2.0, 13.0, 18.0], [4.0, 4.0, 12.0, 12.0]])


def test_encode_by_hand():
    # anchor 0: centre (5, 10), size (10, 20); gt 0: centre (7, 10), size (12, 16).
    # d = (2/10, 0/20, log(12/10), log(16/20)); anchor 1: centre (7, 6), size (4, 2); gt 1: (8, 8), (8, 8).
    expected = torch.tensor([[0.2, 0.0, math.log(1.2), math.log(0.8)], [0.25, 1.0, math.log(2.0), math.log(4.0)]])
    torch.testing.assert_close(CODER_MMDET.encode(ANCHORS, GT), expected, rtol=0, atol=1e-15)
    # means are subtracted, stds divide: (0.2 - 0.1) / 0.5 = 0.2 for dx.
    coder = DeltaXYWHCoder(means=(0.1, 0.0, 0.0, 0.0), stds=(0.5, 1.0, 1.0, 2.0))
    got = coder.encode(ANCHORS, GT)
    torch.testing.assert_close(got[0, 0], torch.tensor(0.2), rtol=0, atol=1e-15)
    torch.testing.assert_close(got[1, 3], torch.tensor(math.log(4.0) / 2), rtol=0, atol=1e-15)


@given(boxes_xyxy(min_size=1.0 / 64, max_coord=64.0), boxes_xyxy(min_size=1.0 / 64, max_coord=64.0))
def test_round_trip(anchors, gt):
    n = min(len(anchors), len(gt))
    if n == 0:
        return
    for coder in (CODER_MMDET, DeltaXYWHCoder(means=(0.1, -0.2, 0.0, 0.3), stds=(0.1, 0.1, 0.2, 0.2))):
        deltas = coder.encode(anchors[:n], gt[:n])
        if bool((deltas[:, 2:] * torch.tensor(coder.stds[2:]) + torch.tensor(coder.means[2:])).abs().max()
                > abs(math.log(coder.wh_ratio_clip))):
            continue  # a size ratio beyond the clamp does not round-trip, by design (test_decode_clamps)
        torch.testing.assert_close(coder.decode(anchors[:n], deltas), gt[:n], rtol=1e-12, atol=1e-12)


def test_decode_clamps():
    anchor = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    big = torch.tensor([[0.0, 0.0, 10.0, -10.0]])
    # clamp |log(16/1000)|: w = 10 * 1000/16 = 625 -> x in [5 - 312.5, 5 + 312.5]; h = 10 * 16/1000 = 0.16.
    torch.testing.assert_close(CODER_MMDET.decode(anchor, big), torch.tensor([[-307.5, 4.92, 317.5, 5.08]]),
                               rtol=0, atol=1e-12)
    # torchvision clamps from above only: h = 10 * exp(-10).
    h = 10 * math.exp(-10)
    torch.testing.assert_close(CODER_TORCHVISION_RETINANET.decode(anchor, big),
                               torch.tensor([[-307.5, 5 - h / 2, 317.5, 5 + h / 2]]), rtol=0, atol=1e-12)
    # add_ctr_clamp: the centre shift 10 * 5 = 50 px is clamped to 32; dh then has no lower clamp.
    coder = DeltaXYWHCoder(add_ctr_clamp=True, ctr_clamp=32)
    got = coder.decode(anchor, torch.tensor([[5.0, 0.0, 0.0, -10.0]]))
    torch.testing.assert_close(got, torch.tensor([[32.0, 5 - h / 2, 42.0, 5 + h / 2]]), rtol=0, atol=1e-12)
    # clipping to (H, W) = (8, 300): x to [0, 300], y to [0, 8], upper bounds W and H themselves.
    got = CODER_MMDET.decode(anchor, torch.tensor([[0.0, 0.0, 10.0, 0.0]]), max_shape=(8, 300))
    torch.testing.assert_close(got, torch.tensor([[0.0, 0.0, 300.0, 8.0]]), rtol=0, atol=0)
    unclipped = DeltaXYWHCoder(clip_border=False).decode(anchor, big, max_shape=(8, 300))
    assert unclipped[0, 0].item() == pytest.approx(-307.5)


def test_a_corner_exactly_on_the_clip_border_keeps_its_whole_gradient():
    # anchor [10, 10, 48, 48] (w = h = 38), zero deltas: the box is the anchor, y2 = 48 = H exactly. d(sum)/d(dy):
    # y1 and y2 each move by h = 38, so 76; mmdet's torch.where(y > H, H, y) passes y2's part whole, where
    # torch.minimum(y, H) would give it half (38 + 19 = 57). x2 = 48 < W = 64 is not clipped: 76 too. The size
    # deltas move the two sides oppositely: 0.
    deltas = torch.zeros(1, 4, dtype=torch.float64, requires_grad=True)
    boxes = CODER_MMDET.decode(torch.tensor([[10.0, 10.0, 48.0, 48.0]]), deltas, max_shape=(48, 64))
    boxes.sum().backward()
    assert boxes.tolist() == [[10.0, 10.0, 48.0, 48.0]]
    assert deltas.grad.tolist() == [[76.0, 76.0, 0.0, 0.0]]
    # On the lower border x1 = 0 as well (clamp keeps the gradient at equality, as mmdet's torch.where(x < 0, 0, x)).
    deltas = torch.zeros(1, 4, dtype=torch.float64, requires_grad=True)
    CODER_MMDET.decode(torch.tensor([[0.0, 0.0, 48.0, 48.0]]), deltas, max_shape=(48, 64)).sum().backward()
    assert deltas.grad.tolist() == [[96.0, 96.0, 0.0, 0.0]]

def test_against_torchvision_box_coder():
    det = import_or_skip("torchvision.models.detection._utils", TV_INSTALL)
    anchors = torch.tensor([[0.0, 0.0, 10.0, 20.0], [5.0, 5.0, 9.0, 7.0], [3.0, 1.0, 50.0, 9.0]])
    gt = torch.tensor([[1.0, 2.0, 13.0, 18.0], [4.0, 4.0, 12.0, 12.0], [0.0, 0.0, 1.0, 30.0]])
    deltas = torch.tensor([[0.3, -0.2, 5.0, -6.0], [1.0, 2.0, 0.1, 0.2], [-0.5, 0.5, -1.0, 1.0]])
    for ours, weights in ((CODER_TORCHVISION_RETINANET, (1.0, 1.0, 1.0, 1.0)),
                          (CODER_TORCHVISION_RCNN, (10.0, 10.0, 5.0, 5.0))):
        tv = det.BoxCoder(weights)
        # torchvision computes centres as x1 + 0.5 w and multiplies by the weights: float64 rounding only.
        torch.testing.assert_close(ours.encode(anchors, gt), tv.encode_single(gt, anchors), rtol=1e-14, atol=1e-14)
        torch.testing.assert_close(ours.decode(anchors, deltas), tv.decode_single(deltas, anchors),
                                   rtol=1e-14, atol=1e-12)


def test_against_mmdet_delta_xywh_coder():
    coders = import_or_skip("mmdet.models.task_modules.coders", MMDET_INSTALL)
    mm = coders.DeltaXYWHBBoxCoder(target_means=(0.0, 0.0, 0.0, 0.0), target_stds=(0.1, 0.1, 0.2, 0.2))
    ours = DeltaXYWHCoder(stds=(0.1, 0.1, 0.2, 0.2))
    # mmdet's bbox2delta casts to float32 (proposals.float()): float32 agreement for encode.
    torch.testing.assert_close(ours.encode(ANCHORS, GT), mm.encode(ANCHORS, GT).double(), rtol=1e-6, atol=1e-6)
    deltas = torch.tensor([[0.3, -0.2, 5.0, -6.0], [1.0, 2.0, 0.1, 0.2]])
    for shape in (None, (15, 12)):
        torch.testing.assert_close(ours.decode(ANCHORS, deltas, max_shape=shape),
                                   mm.decode(ANCHORS, deltas, max_shape=shape).double(), rtol=1e-12, atol=1e-12)
    mm = coders.DeltaXYWHBBoxCoder(add_ctr_clamp=True, ctr_clamp=2)
    ours = DeltaXYWHCoder(add_ctr_clamp=True, ctr_clamp=2)
    torch.testing.assert_close(ours.decode(ANCHORS, deltas), mm.decode(ANCHORS, deltas).double(), rtol=1e-12,
                               atol=1e-12)


def test_encode_refuses_zero_size_and_bad_shapes():
    with pytest.raises(OracleInputError, match="anchors: expected boxes of positive width"):
        CODER_MMDET.encode(torch.tensor([[0.0, 0.0, 0.0, 1.0]]), torch.tensor([[0.0, 0.0, 1.0, 1.0]]))
    with pytest.raises(OracleInputError, match="gt: expected boxes of positive width"):
        CODER_MMDET.encode(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.tensor([[0.0, 0.0, 1.0, 0.0]]))
    with pytest.raises(OracleInputError, match="gt"):
        CODER_MMDET.encode(ANCHORS, GT[:1])
    with pytest.raises(OracleInputError, match="deltas"):
        CODER_MMDET.decode(ANCHORS, torch.tensor([[0.0, 0.0, float("nan"), 0.0], [0.0, 0.0, 0.0, 0.0]]))
    with pytest.raises(OracleInputError, match="stds"):
        DeltaXYWHCoder(stds=(1.0, 1.0, 0.0, 1.0))
    with pytest.raises(OracleInputError, match="wh_clamp"):
        DeltaXYWHCoder(wh_clamp="lower")
    with pytest.raises(OracleInputError, match="max_shape"):
        CODER_MMDET.decode(ANCHORS, torch.zeros(2, 4), max_shape=(4,))


def test_distances_by_hand_and_against_ultralytics():
    point = torch.tensor([10.0, 10.0])
    torch.testing.assert_close(dist2bbox(torch.tensor([1.0, 2.0, 3.0, 4.0]), point),
                               torch.tensor([9.0, 8.0, 13.0, 14.0]))
    torch.testing.assert_close(dist2bbox(torch.tensor([1.0, 2.0, 3.0, 4.0]), point, fmt="cxcywh"),
                               torch.tensor([11.0, 11.0, 4.0, 6.0]))
    # a box larger than the largest regressable distance: 30 px right of the point clamps to 16 - 1 - 0.01.
    torch.testing.assert_close(bbox2dist(point, torch.tensor([0.0, 0.0, 40.0, 12.0]), reg_max=16),
                               torch.tensor([10.0, 10.0, 14.99, 2.0]), rtol=0, atol=1e-15)
    # a point outside the box: negative distances without reg_max, 0 with it.
    outside = torch.tensor([0.0, 0.0, 5.0, 5.0])
    assert bbox2dist(point, outside).tolist() == [10.0, 10.0, -5.0, -5.0]
    assert bbox2dist(point, outside, reg_max=16).tolist() == [10.0, 10.0, 0.0, 0.0]
    tal = import_or_skip("ultralytics.utils.tal", UL_INSTALL)
    g = torch.Generator().manual_seed(0)
    points = torch.rand(7, 2, generator=g, dtype=torch.float64) * 20
    dist = torch.rand(7, 4, generator=g, dtype=torch.float64) * 20
    for xywh, fmt in ((False, "xyxy"), (True, "cxcywh")):
        torch.testing.assert_close(dist2bbox(dist, points, fmt=fmt), tal.dist2bbox(dist, points, xywh=xywh), rtol=0,
                                   atol=0)
    boxes = dist2bbox(dist, points)
    torch.testing.assert_close(bbox2dist(points, boxes), dist, rtol=0, atol=1e-13)
    torch.testing.assert_close(bbox2dist(points, boxes, reg_max=16), tal.bbox2dist(points, boxes, 15), rtol=0, atol=0)


def test_dfl_expectation():
    assert dfl_expectation(torch.zeros(4, 16)).tolist() == [7.5] * 4  # uniform over 0..15
    logits = torch.full((2, 4, 4), -1e3)
    logits[0, :, 3] = 0.0
    logits[1, :, 1] = logits[1, :, 2] = 0.0  # half on bin 1, half on bin 2
    torch.testing.assert_close(dfl_expectation(logits), torch.tensor([[3.0] * 4, [1.5] * 4]), rtol=0, atol=1e-12)
    # against the definition, in Python floats
    x = torch.tensor([[0.3, -1.2, 2.0], [0.0, 0.5, -0.5], [1.0, 1.0, 3.0], [-2.0, 0.0, 2.0]])
    for side, row in enumerate(x.tolist()):
        z = sum(math.exp(v) for v in row)
        expectation = sum(k * math.exp(v) / z for k, v in enumerate(row))
        assert dfl_expectation(x)[side].item() == pytest.approx(expectation, abs=1e-15)
    with pytest.raises(OracleInputError, match="logits"):
        dfl_expectation(torch.zeros(3, 16))


@given(st.integers(min_value=-1, max_value=1))
def test_bad_reg_max(k):
    with pytest.raises(OracleInputError, match="reg_max"):
        bbox2dist(torch.zeros(2), torch.tensor([0.0, 0.0, 1.0, 1.0]), reg_max=k)
