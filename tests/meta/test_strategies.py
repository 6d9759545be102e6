"""conformance/strategies.py: the max-IoU draws at a threshold (and the CDN label-noise draws at ratio / 2) are
exactly at it in every dtype, and their decision is the threshold comparison's (a comparison wrong about equality
changes the reference's output); the anchor-head draws' exact ties at a GT's best IoU are ties in every dtype."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from components.dense_calls import anchor_head_config
from conformance import strategies as S
from oracle.assign.max_iou import max_iou_assign
from oracle.conventions import MAX_IOU_RPN_MMDET, AnchorHeadConfig, MaxIoUConvention, named, presets_of

from .faulty_adapters import strict_comparison

#: The presets of the generated test, and a negative range with a lower end (the golden RPN cases' override).
CONVENTIONS = [named(n, MaxIoUConvention) for n in presets_of(MaxIoUConvention)] + [
    dataclasses.replace(MAX_IOU_RPN_MMDET, neg_iou_thr=(0.1, 0.3))]


def _plain_iou(gt: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """IoU ``[K, N]`` of xyxy boxes in their own dtype, as mmdet's bbox_overlaps and torchvision's box_iou
    compute it: areas, ``union = area1 + area2 - inter``, one division."""
    area_g = (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])
    area_p = (priors[:, 2] - priors[:, 0]) * (priors[:, 3] - priors[:, 1])
    lt = torch.max(gt[:, None, :2], priors[None, :, :2])
    rb = torch.min(gt[:, None, 2:], priors[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_g[:, None] + area_p[None, :] - inter)


def test_threshold_fractions():
    assert [S.threshold_fraction(t) for t in (0.5, 0.4, 0.3, 0.7, 0.0)] == [
        Fraction(1, 2), Fraction(2, 5), Fraction(3, 10), Fraction(7, 10), 0]
    assert S.max_iou_thresholds(CONVENTIONS[-1]) == (("pos_iou_thr", 0.7), ("neg_iou_thr[lo]", 0.1),
                                                     ("neg_iou_thr", 0.3), ("min_pos_iou", 0.3))


@pytest.mark.parametrize("convention", CONVENTIONS, ids=lambda c: f"{c.pos_iou_thr}-{c.neg_iou_thr}-{c.min_pos_iou}")
@given(data=st.data())
def test_the_prior_at_a_threshold_is_exactly_at_it_in_every_dtype(convention, data):
    name, gt, priors = data.draw(S.threshold_group(convention, origin=100.0))
    t = dict(S.max_iou_thresholds(convention))[name]
    gt64, priors64 = torch.tensor(gt, dtype=torch.float64), torch.tensor(priors, dtype=torch.float64)
    best = max_iou_assign(priors64, gt64, [0], convention=convention).max_overlaps
    assert bool((best == t).any()), (name, gt, priors, best)
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        g, p = gt64.to(dtype), priors64.to(dtype)
        assert torch.equal(g.double(), gt64) and torch.equal(p.double(), priors64), dtype  # exact inputs
        # The candidate's comparison: its IoU, in its dtype, against the threshold rounded to its dtype.
        assert bool((_plain_iou(g, p) == torch.tensor(t, dtype=dtype)).any()), (dtype, name, gt, priors)


@pytest.mark.parametrize("convention", CONVENTIONS, ids=lambda c: f"{c.pos_iou_thr}-{c.neg_iou_thr}-{c.min_pos_iou}")
@given(data=st.data())
def test_a_comparison_wrong_about_equality_at_the_threshold_changes_the_decision(convention, data):
    # Not masked: the prior at pos_iou_thr or the negative range is not its GT's best prior (the low-quality step
    # would make it positive either way); at min_pos_iou it is, and the low-quality step is the decision.
    name, gt, priors = data.draw(S.threshold_group(convention, origin=100.0))
    args = (torch.tensor(priors, dtype=torch.float64), torch.tensor(gt, dtype=torch.float64), [2])
    right = max_iou_assign(*args, convention=convention).gt_inds
    wrong = max_iou_assign(*args, convention=strict_comparison(convention, name)).gt_inds
    assert not torch.equal(right, wrong), (name, gt, priors, right)


DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _plain_iof(priors: torch.Tensor, ignore: torch.Tensor) -> torch.Tensor:
    """IoF ``[N, M]`` of each prior with each ignore box, relative to the prior's area, in their own dtype (mmdet's
    ``bbox_overlaps(mode='iof')``: intersection over the first boxes' area)."""
    lt = torch.max(priors[:, None, :2], ignore[None, :, :2])
    rb = torch.min(priors[:, None, 2:], ignore[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    area = (priors[:, 2] - priors[:, 0]) * (priors[:, 3] - priors[:, 1])
    return wh[..., 0] * wh[..., 1] / area[:, None]


def test_the_ignore_regions_put_a_prior_exactly_at_iof_one_half_in_every_dtype():
    """Some generated ignore regions are half of a prior: IoF 0.5 exactly, in every dtype, where mmdet's ``>`` and a
    ``>=`` disagree (the reference with the threshold one float64 ULP lower, which is ``>=`` on exact values)."""
    from hypothesis import find

    convention = named("MAX_IOU_RETINANET_MMDET", MaxIoUConvention)

    def at_half(inputs) -> bool:
        ignore = inputs.get("gt_boxes_ignore")
        return ignore is not None and bool((_plain_iof(inputs["priors"], ignore) == 0.5).any())
    inputs = find(S.max_iou_inputs(convention), at_half)
    pi, ii = (_plain_iof(inputs["priors"], inputs["gt_boxes_ignore"]) == 0.5).nonzero(as_tuple=True)
    for dtype in DTYPES:
        p, ig = inputs["priors"].to(dtype), inputs["gt_boxes_ignore"].to(dtype)
        # A pair at IoF 0.5 is exact in the dtype (the other boxes need not be), and so its IoF stays 0.5.
        exact = ((p[pi].double() == inputs["priors"][pi]).all(1)
                 & (ig[ii].double() == inputs["gt_boxes_ignore"][ii]).all(1))
        assert bool(exact.any()), dtype
        assert bool((_plain_iof(p, ig) == 0.5).any()), dtype
    on = dataclasses.replace(convention, ignore_iof_thr=0.5)
    args = (inputs["priors"], inputs["gt_boxes"], inputs["gt_labels"])
    right = max_iou_assign(*args, convention=on, gt_boxes_ignore=inputs["gt_boxes_ignore"])
    at_or_above = dataclasses.replace(on, ignore_iof_thr=math.nextafter(0.5, -math.inf))
    wrong = max_iou_assign(*args, convention=at_or_above, gt_boxes_ignore=inputs["gt_boxes_ignore"])
    # An ignored prior's overlaps are -1 (its max_overlaps shows it even where gt_inds was -1 already).
    assert not torch.equal(right.max_overlaps, wrong.max_overlaps), (inputs, right)


@pytest.mark.parametrize("ratio", S.CDN_LABEL_NOISE_RATIOS)
@given(data=st.data())
def test_cdn_label_noise_draws_are_exact_in_every_dtype(ratio, data):
    p = data.draw(S.cdn_label_p(12, ratio))
    assert bool(((p >= 0) & (p < 1)).all())
    for dtype in DTYPES:
        assert torch.equal(p.to(dtype).double(), p), dtype
        assert float(torch.tensor(ratio / 2, dtype=dtype)) == ratio / 2, dtype


def test_the_cdn_inputs_put_label_noise_draws_exactly_at_the_threshold():
    """Some generated draws lie at ``ratio / 2``: where DINO's ``label_p < ratio / 2`` and a ``<=`` disagree."""
    from hypothesis import find

    def at_threshold(example) -> bool:
        inputs, config = example
        return bool((inputs["draws"]["label_p"] == config["label_noise_ratio"] / 2).any())
    inputs, config = find(S.cdn_inputs(), at_threshold)
    p, ratio = inputs["draws"]["label_p"], config["label_noise_ratio"]
    assert int((p < ratio / 2).sum()) == len(inputs["draws"]["relabel"]) < int((p <= ratio / 2).sum())


@pytest.mark.parametrize("head", presets_of(AnchorHeadConfig))
@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # find()'s report of a whole batch
def test_the_anchor_head_inputs_tie_a_gt_exactly_below_the_positive_threshold_in_every_dtype(head):
    """Some generated GTs have their best IoU with 2 or 4 anchors at once, exactly, in every dtype, below the
    assigner's ``pos_iou_thr``: the low-quality step then decides, and ``gt_max_assign_all`` (every tied anchor, or
    the first) changes the reference's assignment."""
    from hypothesis import find

    config = anchor_head_config({"head": head})
    gen = config.anchor_generator
    anchors = torch.cat(gen.grid_anchors([(-(-S.ANCHOR_HEAD_PAD[0] // int(s)), -(-S.ANCHOR_HEAD_PAD[1] // int(s)))
                                          for s in gen.strides]))

    def tied_below(gt: torch.Tensor) -> torch.Tensor:
        ious = _plain_iou(gt, anchors)
        best = ious.max(1, keepdim=True).values
        return ((ious == best).sum(1) > 1) & (best[:, 0] < config.assigner.pos_iou_thr)

    def has_tie(example) -> bool:
        return any(bool(tied_below(t["boxes"]).any()) for t in example[0]["targets"])
    inputs, _ = find(S.anchor_head_inputs(head), has_tie)
    gt = next(t["boxes"] for t in inputs["targets"] if bool(tied_below(t["boxes"]).any()))
    gt = gt[tied_below(gt)][:1]
    tied = _plain_iou(gt, anchors)[0] == _plain_iou(gt, anchors)[0].max()
    for dtype in DTYPES:
        g, a = gt.to(dtype), anchors[tied].to(dtype)
        assert torch.equal(g.double(), gt) and torch.equal(a.double(), anchors[tied]), dtype  # exact inputs
        assert len(set(_plain_iou(g, a)[0].tolist())) == 1, (dtype, gt, anchors[tied])
    labels = torch.zeros(1, dtype=torch.int64)
    every = max_iou_assign(anchors, gt, labels, convention=config.assigner).gt_inds
    first = max_iou_assign(anchors, gt, labels,
                           convention=dataclasses.replace(config.assigner, gt_max_assign_all=False)).gt_inds
    assert int((every == 1).sum()) == int(tied.sum()) > int((first == 1).sum()) == 1, (gt, anchors[tied])


def test_the_seeded_arrays_reach_their_bounds():
    """docs/conformance.md, "Arrays from a drawn seed": zero-size boxes, boxes at the image's edge, zero and saturated
    logits are drawn, as hypothesis' per-element draws gave them."""
    import numpy as np
    rng = np.random.default_rng(0)
    boxes = S.grid_boxes(rng, 64)
    sides = boxes[:, 2:] - boxes[:, :2]
    assert bool((sides == 0).any()) and bool((boxes[:, :2] == 0).any())
    assert bool((boxes[:, :2] == 922 / 1024).any()) and bool((sides == 614 / 1024).any())
    sized = S.grid_boxes(rng, 64, min_size=1e-2)
    assert bool((sized[:, 2:] - sized[:, :2] >= 1e-2).all())
    logits = S.grid_logits(rng, (64, 4), 8.0)
    assert {0.0, 8.0, -8.0} <= set(logits.flatten().tolist()) and bool((logits.abs() <= 8.0).all())
    assert torch.equal(torch.round(logits * 64) / 64, logits)



@pytest.mark.parametrize("min_size, max_coord", [(1e-2, 1.0), (8.0, 1024.0), (2.0 ** -10, 1 / 16)])
def test_touching_pairs_sit_exactly_at_the_intersection_kink_in_float16_and_wider(min_size, max_coord):
    """strategies.touching, at each scale of strategies.box_pair: a moved box stays on the grid below ``1.5 *
    max_coord`` (exact in float32 and float16), its intersection with its partner is exactly 0 one way and positive
    the other, and there the ``clamp`` and ``strict`` intersections give other gradients."""
    import numpy as np

    from oracle.boxes import iou
    from oracle.conventions import IoUConvention
    rng = np.random.default_rng(0)
    kinks = 0
    for _ in range(16):
        first = S.grid_boxes(rng, 4, min_size=min_size, max_coord=max_coord)
        second = S.grid_boxes(rng, 4, min_size=min_size, max_coord=max_coord)
        touched = S.touching(rng, first, second, max_coord=max_coord, rate=1.0)
        assert bool((touched <= 1.5 * max_coord).all()) and bool((touched >= 0).all())
        for dtype in (torch.float32, torch.float16):
            assert torch.equal(touched.to(dtype).double(), touched)
        for a, b, moved in zip(first, touched, (touched != second).any(1)):
            w = torch.minimum(a[2], b[2]) - torch.maximum(a[0], b[0])
            h = torch.minimum(a[3], b[3]) - torch.maximum(a[1], b[1])
            if not moved:
                continue
            assert (w == 0 and h > 0) or (h == 0 and w > 0), (a, b)
            grads = []
            for mode in ("clamp", "strict"):
                x = a[None].clone().requires_grad_(True)
                iou(x, b[None], aligned=True, convention=dataclasses.replace(IoUConvention(), intersection=mode)
                    ).sum().backward()
                grads.append(x.grad)
            assert not torch.equal(*grads)
            kinks += 1
    assert kinks >= 32
