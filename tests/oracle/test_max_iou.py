"""oracle.assign.max_iou: mmdet's MaxIoUAssigner and torchvision's Matcher variant.

Hand-computed cases on dyadic boxes (IoU exact), brute force per prior in plain Python on tiny
grids, and cross-checks against torchvision's Matcher and (where installed) mmdet's MaxIoUAssigner.
"""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch

from oracle.assign.max_iou import assign_wrt_overlaps, max_iou_assign
from oracle.conventions import (IOU_MMDET, MAX_IOU_RETINANET_MMDET, MAX_IOU_RETINANET_TORCHVISION, MAX_IOU_RPN_MMDET,
                                MaxIoUConvention)
from oracle.errors import OracleInputError

from ..conftest import import_or_skip

RETINA = MAX_IOU_RETINANET_MMDET
TV = MAX_IOU_RETINANET_TORCHVISION


def conv(**kw) -> MaxIoUConvention:
    return dataclasses.replace(RETINA, **kw)


# --------------------------------------------------------------------------- hand-computed cases

def test_mmdet_docstring_example():
    # mmdet MaxIoUAssigner.assign docstring: IoU 90/100 = 0.9 -> GT 1; the second prior has IoU 0 -> negative.
    r = max_iou_assign([[0, 0, 10, 10], [10, 10, 20, 20]], [[0, 0, 10, 9]], [3],
                       convention=conv(pos_iou_thr=0.5, neg_iou_thr=0.5))
    assert r.gt_inds.tolist() == [1, 0]
    assert r.labels.tolist() == [3, -1]
    assert r.max_overlaps.tolist() == [0.9, 0.0]
    assert r.num_gts == 1 and r.gt_inds.dtype == torch.int64 and r.max_overlaps.dtype == torch.float64


GT_HALF = [[0.0, 0.0, 8.0, 4.0]]
# IoU with GT_HALF (area 32): [0,0,8,8] 32/64 = 0.5; [0,0,8,16] 32/128 = 0.25; [0,0,8,32] 32/256 = 0.125;
# [64,64,72,72] 0.
PRIORS_DYADIC = [[0, 0, 8, 8], [0, 0, 8, 16], [0, 0, 8, 32], [64, 64, 72, 72]]


def test_thresholds_are_pos_ge_and_neg_lt_on_exact_iou():
    c = conv(pos_iou_thr=0.5, neg_iou_thr=0.25, match_low_quality=False)
    r = max_iou_assign(PRIORS_DYADIC, GT_HALF, [0], convention=c)
    assert r.max_overlaps.tolist() == [0.5, 0.25, 0.125, 0.0]
    # 0.5 >= 0.5 positive; 0.25 is not < 0.25 so ignored; 0.125 and 0 negative.
    assert r.gt_inds.tolist() == [1, -1, 0, 0]
    above = dataclasses.replace(c, pos_iou_thr=0.5 + 2.0 ** -20)
    assert max_iou_assign(PRIORS_DYADIC, GT_HALF, [0], convention=above).gt_inds.tolist() == [-1, -1, 0, 0]


def test_negative_range_tuple_is_half_open():
    # [0.125, 0.25): 0.125 negative, 0.25 and 0 (below lo) stay ignored.
    c = conv(pos_iou_thr=0.5, neg_iou_thr=(0.125, 0.25), match_low_quality=False)
    assert max_iou_assign(PRIORS_DYADIC, GT_HALF, [0], convention=c).gt_inds.tolist() == [1, -1, 0, -1]


def test_later_gt_overwrites_and_torchvision_keeps_own_argmax():
    # upstream survey §5.5: [[.9, .3], [.8, 0]]: prior 0 is GT 0's best (0.9 -> positive for GT 0 in step 3),
    # but also GT 1's best (0.8): mmdet's GT loop reassigns it to GT 1; torchvision keeps its own argmax (GT 0).
    ov = torch.tensor([[0.9, 0.3], [0.8, 0.0]])
    assert assign_wrt_overlaps(ov, [5, 7], convention=RETINA).gt_inds.tolist() == [2, 0]
    assert assign_wrt_overlaps(ov, [5, 7], convention=RETINA).labels.tolist() == [7, -1]
    assert assign_wrt_overlaps(ov, [5, 7], convention=TV).gt_inds.tolist() == [1, 0]


def test_zero_overlap_gt_claims_every_zero_prior_with_min_pos_iou_0():
    # GT 1 overlaps nothing: its best is 0 >= min_pos_iou = 0, so every prior with overlap 0 to it (all three)
    # is claimed by it, overwriting prior 0's positive match to GT 0 (mmdet quirk).
    ov = torch.tensor([[0.75, 0.25, 0.0], [0.0, 0.0, 0.0]])
    assert assign_wrt_overlaps(ov, [0, 1], convention=RETINA).gt_inds.tolist() == [2, 2, 2]
    # torchvision: the tied priors get their own best GT: prior 0 -> GT 0, prior 1 -> GT 0 (0.25 > 0),
    # prior 2 -> GT 0 (all zero: first index).
    assert assign_wrt_overlaps(ov, [0, 1], convention=TV).gt_inds.tolist() == [1, 1, 1]
    # min_pos_iou > 0 switches the quirk off: GT 1 claims nothing; GT 0's best (prior 0) already positive.
    assert assign_wrt_overlaps(ov, [0, 1], convention=conv(min_pos_iou=0.1)).gt_inds.tolist() == [1, 0, 0]


def test_min_pos_iou_and_gt_max_assign_all():
    ov = torch.tensor([[0.25, 0.25, 0.125]])
    # best 0.25 >= min_pos_iou 0.25: both tied priors become positive; the third is negative.
    assert assign_wrt_overlaps(ov, [0], convention=conv(min_pos_iou=0.25)).gt_inds.tolist() == [1, 1, 0]
    # only the first of the ties without gt_max_assign_all
    only_first = conv(min_pos_iou=0.25, gt_max_assign_all=False)
    assert assign_wrt_overlaps(ov, [0], convention=only_first).gt_inds.tolist() == [1, 0, 0]
    # best 0.25 < min_pos_iou 0.375: no low-quality match
    assert assign_wrt_overlaps(ov, [0], convention=conv(min_pos_iou=0.375)).gt_inds.tolist() == [0, 0, 0]
    assert assign_wrt_overlaps(ov, [0], convention=conv(match_low_quality=False)).gt_inds.tolist() == [0, 0, 0]


def test_best_gt_tie_takes_the_lowest_index():
    ov = torch.tensor([[0.75], [0.75]])
    r = assign_wrt_overlaps(ov, [4, 9], convention=conv(match_low_quality=False))
    assert r.gt_inds.tolist() == [1] and r.labels.tolist() == [4]
    # with low-quality matching both GTs claim the prior; the later one (GT 1) keeps it in mmdet.
    assert assign_wrt_overlaps(ov, [4, 9], convention=RETINA).gt_inds.tolist() == [2]
    assert assign_wrt_overlaps(ov, [4, 9], convention=TV).gt_inds.tolist() == [1]


def test_ignore_regions_by_iof():
    gt = [[0, 0, 8, 8]]
    priors = [[0, 0, 8, 8], [16, 0, 24, 8], [32, 0, 40, 8]]
    # ignore box [16,0,28,8] covers all of prior 1 (IoF 1) and none of prior 2.
    # ignore box [32,0,36,8] covers half of prior 2 (IoF over the prior 32/64 = 0.5, over the ignore box 1).
    ignore = [[16, 0, 28, 8], [32, 0, 36, 8]]
    c = conv(ignore_iof_thr=0.5)
    r = max_iou_assign(priors, gt, [0], convention=c, gt_boxes_ignore=ignore)
    # prior 1: IoF 1 > 0.5 -> overlap -1, ignored; prior 2: IoF exactly 0.5 is not > 0.5 -> negative.
    assert r.gt_inds.tolist() == [1, -1, 0]
    assert r.max_overlaps.tolist() == [1.0, -1.0, 0.0]
    # over the ignore boxes' areas: box 0 has 64 of its 96 inside prior 1 (2/3 > 0.5), box 1 is inside prior 2 (1).
    r2 = max_iou_assign(priors, gt, [0], convention=dataclasses.replace(c, ignore_wrt_candidates=False),
                        gt_boxes_ignore=ignore)
    assert r2.gt_inds.tolist() == [1, -1, -1]
    # ignore_iof_thr <= 0 disables the ignore regions
    assert max_iou_assign(priors, gt, [0], convention=RETINA, gt_boxes_ignore=ignore).gt_inds.tolist() == [1, 0, 0]


def test_degenerate_inputs():
    priors = [[0, 0, 8, 8], [8, 8, 16, 16]]
    empty = torch.zeros((0, 4))
    r = max_iou_assign(priors, empty, torch.zeros(0, dtype=torch.int64), convention=RETINA)
    assert r.gt_inds.tolist() == [0, 0] and r.max_overlaps.tolist() == [0.0, 0.0] and r.labels.tolist() == [-1, -1]
    assert r.num_gts == 0 and r.pos_inds.numel() == 0 and r.neg_inds.tolist() == [0, 1]
    # ignore boxes do not matter without GT (mmdet edits the empty overlap matrix only)
    r = max_iou_assign(priors, [], [], convention=conv(ignore_iof_thr=0.5), gt_boxes_ignore=[[0, 0, 8, 8]])
    assert r.gt_inds.tolist() == [0, 0]
    r = max_iou_assign(empty, [[0, 0, 8, 8]], [1], convention=RETINA)
    assert r.gt_inds.shape == (0,) and r.max_overlaps.shape == (0,) and r.labels.shape == (0,) and r.num_gts == 1
    r = assign_wrt_overlaps(torch.zeros((0, 0)), [], convention=TV)
    assert r.gt_inds.shape == (0,)


def test_zero_area_boxes_have_iou_zero_under_mmdet_clamp():
    # A zero-area GT coinciding with a zero-area prior: union 0 clamped to 1e-6 -> IoU 0, no NaN.
    r = max_iou_assign([[4, 4, 4, 4], [0, 0, 8, 8]], [[4, 4, 4, 4]], [0], convention=RETINA)
    assert r.max_overlaps.tolist() == [0.0, 0.0]
    assert r.gt_inds.tolist() == [1, 1]  # best overlap 0 >= min_pos_iou 0: the quirk claims both


# --------------------------------------------------------------------------- brute force

def python_iou(a, b):
    """IoU of two integer xyxy boxes, mmdet's formula (union clamped at 1e-6), in Python floats."""
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / max(union, 1e-6)


def python_iof(a, b):
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    return iw * ih / max((a[2] - a[0]) * (a[3] - a[1]), 1e-6)


def brute_force(priors, gts, ignore, c: MaxIoUConvention) -> list[int]:
    """gt_inds re-derived prior by prior, GT by GT, from the rules as mmdet's docstring states them."""
    n, k = len(priors), len(gts)
    if k == 0:
        return [0] * n
    ov = [[python_iou(g, p) for p in priors] for g in gts]
    if ignore and c.ignore_iof_thr > 0:
        for j, p in enumerate(priors):
            if c.ignore_wrt_candidates:
                worst = max(python_iof(p, q) for q in ignore)
            else:
                worst = max(python_iof(q, p) for q in ignore)
            if worst > c.ignore_iof_thr:
                for i in range(k):
                    ov[i][j] = -1.0
    lo, hi = (0.0, c.neg_iou_thr) if isinstance(c.neg_iou_thr, float) else c.neg_iou_thr
    out = []
    best_gt = []
    for j in range(n):
        col = [ov[i][j] for i in range(k)]
        best = max(col)
        first = col.index(best)
        best_gt.append(first)
        if best >= c.pos_iou_thr:
            out.append(first + 1)
        elif lo <= best < hi:
            out.append(0)
        else:
            out.append(-1)
    if c.match_low_quality:
        for i in range(k):
            gt_best = max(ov[i])
            if gt_best < c.min_pos_iou:
                continue
            tied = [j for j in range(n) if ov[i][j] == gt_best]
            for j in (tied if c.gt_max_assign_all else tied[:1]):
                out[j] = i + 1 if c.low_quality_gt == "overwrite" else best_gt[j] + 1
    return out


def random_box(rng, size):
    x1, y1 = rng.randrange(0, size), rng.randrange(0, size)
    return [x1, y1, x1 + rng.randrange(1, 5), y1 + rng.randrange(1, 5)]


CONVENTIONS = {
    "retinanet": RETINA,
    "rpn": MAX_IOU_RPN_MMDET,
    "torchvision": TV,
    "tuple-neg": conv(neg_iou_thr=(0.125, 0.375)),
    "first-of-ties": conv(gt_max_assign_all=False, min_pos_iou=0.125),
    "ignore-wrt-candidates": conv(ignore_iof_thr=0.5),
    "ignore-wrt-ignore": conv(ignore_iof_thr=0.5, ignore_wrt_candidates=False),
    "no-low-quality": conv(match_low_quality=False, pos_iou_thr=0.25, neg_iou_thr=0.125),
}


@pytest.mark.parametrize("name", sorted(CONVENTIONS))
def test_against_brute_force_on_tiny_grids(name):
    c = CONVENTIONS[name]
    rng = random.Random(sorted(CONVENTIONS).index(name))
    for _ in range(60):
        # 3x3 grid of 2x2 and 4x4 priors (small integer boxes: exact IoUs, many ties and threshold hits)
        priors = [[x, y, x + s, y + s] for y in range(0, 6, 2) for x in range(0, 6, 2) for s in (2, 4)]
        gts = [random_box(rng, 6) for _ in range(rng.randrange(0, 4))]
        ignore = [random_box(rng, 6) for _ in range(rng.randrange(0, 3))]
        want = brute_force(priors, gts, ignore, c)
        labels = [rng.randrange(0, 5) for _ in gts]
        got = max_iou_assign(priors, torch.tensor(gts, dtype=torch.float64).reshape(-1, 4), labels, convention=c,
                             gt_boxes_ignore=torch.tensor(ignore, dtype=torch.float64).reshape(-1, 4))
        assert got.gt_inds.tolist() == want, (gts, ignore)
        assert got.labels.tolist() == [labels[g - 1] if g > 0 else -1 for g in want]


# --------------------------------------------------------------------------- third-party cross-checks

def tv_to_mmdet(matches: torch.Tensor) -> list[int]:
    """torchvision Matcher codes -> mmdet gt_inds: m >= 0 -> m + 1, -1 (below low) -> 0, -2 (between) -> -1."""
    return [m + 1 if m >= 0 else (0 if m == -1 else -1) for m in matches.tolist()]


@pytest.mark.parametrize("allow_low_quality", [True, False])
def test_torchvision_matcher_cross_check(allow_low_quality):
    from torchvision.models.detection._utils import Matcher

    c = dataclasses.replace(TV, match_low_quality=allow_low_quality)
    matcher = Matcher(c.pos_iou_thr, c.neg_iou_thr, allow_low_quality_matches=allow_low_quality)
    gen = torch.Generator().manual_seed(3)
    for _ in range(100):
        k, n = int(torch.randint(1, 5, (1,), generator=gen)), int(torch.randint(1, 8, (1,), generator=gen))
        # multiples of 1/8 in [0, 1]: exact thresholds (0.5) and many ties
        ov = torch.randint(0, 9, (k, n), generator=gen).to(torch.float64) / 8
        want = tv_to_mmdet(matcher(ov.clone()))
        assert assign_wrt_overlaps(ov, list(range(k)), convention=c).gt_inds.tolist() == want, ov


def test_torchvision_raises_on_empty_gt_where_the_oracle_gives_negatives():
    from torchvision.models.detection._utils import Matcher

    with pytest.raises(ValueError, match="No ground-truth boxes"):
        Matcher(0.5, 0.4, True)(torch.zeros((0, 3)))
    assert assign_wrt_overlaps(torch.zeros((0, 3)), [], convention=TV).gt_inds.tolist() == [0, 0, 0]


def _mmdet_assigner(c: MaxIoUConvention):
    import_or_skip("mmdet.models", "see docs/install.md")
    from mmdet.models.task_modules.assigners import MaxIoUAssigner

    return MaxIoUAssigner(pos_iou_thr=c.pos_iou_thr, neg_iou_thr=c.neg_iou_thr, min_pos_iou=c.min_pos_iou,
                          gt_max_assign_all=c.gt_max_assign_all, ignore_iof_thr=c.ignore_iof_thr,
                          ignore_wrt_candidates=c.ignore_wrt_candidates, match_low_quality=c.match_low_quality)


@pytest.mark.parametrize("name", sorted(n for n in CONVENTIONS if n != "torchvision"))
def test_mmdet_max_iou_assigner_cross_check(name):
    c = CONVENTIONS[name]
    assigner = _mmdet_assigner(c)
    from mmengine.structures import InstanceData

    gen = torch.Generator().manual_seed(11)
    for _ in range(40):
        k, n, m = (int(torch.randint(lo, hi, (1,), generator=gen)) for lo, hi in ((0, 5), (1, 30), (0, 3)))

        def boxes(count):
            xy = torch.rand((count, 2), generator=gen) * 48
            wh = torch.rand((count, 2), generator=gen) * 24 + 1
            return torch.cat((xy, xy + wh), dim=1).to(torch.float64)

        priors, gts, ignore = boxes(n), boxes(k), boxes(m)
        labels = torch.randint(0, 4, (k,), generator=gen)
        # float64 boxes: mmdet's bbox_overlaps and comparisons run in float64, so the results agree exactly.
        ref = assigner.assign(InstanceData(priors=priors), InstanceData(bboxes=gts, labels=labels),
                              InstanceData(bboxes=ignore))
        got = max_iou_assign(priors, gts, labels, convention=c, gt_boxes_ignore=ignore)
        assert got.gt_inds.tolist() == ref.gt_inds.tolist()
        assert got.labels.tolist() == ref.labels.tolist()
        torch.testing.assert_close(got.max_overlaps, ref.max_overlaps.to(torch.float64), rtol=0, atol=0)


def test_mmdet_quirk_zero_overlap_gt_cross_check():
    assigner = _mmdet_assigner(RETINA)
    ov = torch.tensor([[0.75, 0.25, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    ref = assigner.assign_wrt_overlaps(ov.clone(), torch.tensor([0, 1]))
    assert ref.gt_inds.tolist() == assign_wrt_overlaps(ov, [0, 1], convention=RETINA).gt_inds.tolist() == [2, 2, 2]


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("overlaps, labels, match", [
    (torch.tensor([[float("nan"), 0.5]]), [0], "overlaps: expected finite"),
    (torch.tensor([[1.5, 0.5]]), [0], r"overlaps: expected IoU values in \[0, 1\]"),
    (torch.tensor([[-0.5, 0.5]]), [0], r"overlaps: expected IoU values in \[0, 1\]"),
    (torch.tensor([0.5, 0.5]), [0], "overlaps: expected rank 2"),
    (torch.tensor([[0.5, 0.5]]), [0, 1], "gt_labels: expected 1 labels"),
    (torch.tensor([[0.5, 0.5]]), [-1], "gt_labels: expected labels >= 0"),
    (torch.tensor([[0.5, 0.5]]), [0.0], "gt_labels: expected an integer dtype"),
])
def test_bad_overlaps_and_labels(overlaps, labels, match):
    with pytest.raises(OracleInputError, match=match):
        assign_wrt_overlaps(overlaps, labels, convention=RETINA)


def test_bad_boxes_and_convention():
    with pytest.raises(OracleInputError, match="priors: expected x2 >= x1"):
        max_iou_assign([[8, 0, 0, 8]], [[0, 0, 8, 8]], [0], convention=RETINA)
    with pytest.raises(OracleInputError, match="gt_boxes: expected finite"):
        max_iou_assign([[0, 0, 8, 8]], [[0, 0, float("inf"), 8]], [0], convention=RETINA)
    with pytest.raises(OracleInputError, match="gt_boxes_ignore: expected last dimension 4"):
        max_iou_assign([[0, 0, 8, 8]], [[0, 0, 8, 8]], [0], convention=RETINA, gt_boxes_ignore=[[0, 0, 8]])
    with pytest.raises(OracleInputError, match="convention: expected a MaxIoUConvention"):
        max_iou_assign([[0, 0, 8, 8]], [[0, 0, 8, 8]], [0], convention={"pos_iou_thr": 0.5})
    with pytest.raises(OracleInputError, match="neg_iou_thr: expected a float or a"):
        MaxIoUConvention(0.5, 0)  # mmdet would silently assign no negatives for an int threshold
    with pytest.raises(OracleInputError, match="neg_iou_thr: expected a float or a"):
        MaxIoUConvention(0.5, [0.1, 0.3])
    with pytest.raises(OracleInputError, match="neg_iou_thr: expected lo <= hi"):
        MaxIoUConvention(0.5, (0.3, 0.1))
    with pytest.raises(OracleInputError, match="pos_iou_thr: expected a number <= 1"):
        MaxIoUConvention(1.5, 0.4)
    with pytest.raises(OracleInputError, match="low_threshold <= high_threshold"):
        dataclasses.replace(TV, neg_iou_thr=0.6)
    with pytest.raises(OracleInputError, match="low_quality_gt: expected one of"):
        conv(low_quality_gt="torchvision")
    with pytest.raises(OracleInputError, match="gt_max_assign_all: expected a bool"):
        conv(gt_max_assign_all=1)
    assert RETINA.iou == IOU_MMDET
