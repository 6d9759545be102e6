"""oracle.criteria.anchor_head: mmdet's AnchorHead loss (targets, avg_factor, per-level terms).

Hand-computed cases on a 2x2 grid of dyadic anchors, a plain-Python loop over (image, level, y, x,
anchor) re-deriving the loss from the targets (checks mmdet's channel layout), batched == per-image,
edge cases, and a cross-check against mmdet's AnchorHead.loss_by_feat where mmdet is installed.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from oracle import boxes as box_ops
from oracle.anchors import AnchorGenerator
from oracle.coders import CODER_MMDET
from oracle.conventions import FLT_EPS, MaxIoUConvention
from oracle.criteria.anchor_head import (ANCHOR_HEAD_MMDET, RETINANET_HEAD_MMDET, AnchorHeadConfig, anchor_head_loss,
                                         image_targets, level_loss)
from oracle.errors import OracleInputError

from ..conftest import import_or_skip

LN2 = math.log(2.0)
# One level, stride 16, one 16x16 anchor per grid point; on a 2x2 grid the anchors are
# a0 [-8,-8,8,8], a1 [8,-8,24,8], a2 [-8,8,8,24], a3 [8,8,24,24] (index y * W + x).
TINY = AnchorGenerator(strides=(16,), ratios=(1.0,), scales=(1.0,))
RETINA_TINY = dataclasses.replace(RETINANET_HEAD_MMDET, anchor_generator=TINY)
PLAIN_TINY = dataclasses.replace(ANCHOR_HEAD_MMDET, anchor_generator=TINY)
META = {"img_shape": (32, 32)}
# GT [8,8,24,16] has IoU 128/256 = 0.5 with a3 exactly and 0 with the others (they only touch it).
GT = {"boxes": torch.tensor([[8.0, 8.0, 24.0, 16.0]]), "labels": torch.tensor([1])}
EMPTY = {"boxes": torch.zeros((0, 4)), "labels": torch.zeros(0, dtype=torch.int64)}
# a3's deltas: centre (16,16) size 16x16 -> GT centre (16,12) size 16x8: (0, -4/16, log 1, log 1/2).
A3_TARGET = [0.0, -0.25, 0.0, -LN2]
A3_PRED = [0.5, -0.25, 0.125, 0.0]  # |pred - target| = (0.5, 0, 0.125, ln 2)


def tiny_outputs(conf: AnchorHeadConfig, num_classes: int = 2, batch: int = 1):
    """Zero logits everywhere (p = 1/2) and A3_PRED at a3 (y = 1, x = 1) of every image."""
    cls = torch.zeros((batch, conf.cls_out_channels(num_classes), 2, 2), requires_grad=True)
    box = torch.zeros((batch, 4, 2, 2))
    box[:, :, 1, 1] = torch.tensor(A3_PRED)
    return [cls], [box.requires_grad_()]


# --------------------------------------------------------------------------- hand-computed cases

def test_retinanet_targets_and_loss_by_hand():
    cls, box = tiny_outputs(RETINA_TINY)
    r = anchor_head_loss(cls, box, [GT], [META], config=RETINA_TINY, num_classes=2)
    t = r.targets[0]
    # IoU exactly 0.5 >= pos_iou_thr 0.5: a3 positive; IoU 0 < 0.4: the rest negative.
    assert t.assign.gt_inds.tolist() == [0, 0, 0, 1]
    assert t.labels.tolist() == [2, 2, 2, 1]
    assert t.label_weights.tolist() == [1.0, 1.0, 1.0, 1.0]
    assert t.bbox_weights.tolist() == [[0.0] * 4] * 3 + [[1.0] * 4]
    torch.testing.assert_close(t.bbox_targets[3], torch.tensor(A3_TARGET), rtol=0, atol=1e-15)
    assert r.avg_factor == 1 and t.pos_inds.tolist() == [3] and t.neg_inds.tolist() == [0, 1, 2]
    # focal at p = 1/2: positive 0.25 * (1/2)^2 * ln 2 = 0.0625 ln 2, negative 0.75 * (1/2)^2 * ln 2 = 0.1875 ln 2;
    # one positive and seven negative class terms over 4 anchors x 2 classes.
    assert r.loss_cls[0].item() == pytest.approx((0.0625 + 7 * 0.1875) * LN2 / (1 + FLT_EPS), rel=1e-15)
    assert r.loss_bbox[0].item() == pytest.approx((0.5 + 0.125 + LN2) / (1 + FLT_EPS), rel=1e-15)
    assert r.total.item() == pytest.approx(r.loss_cls[0].item() + r.loss_bbox[0].item(), rel=1e-15)


def test_plain_anchor_head_loss_by_hand():
    cls, box = tiny_outputs(PLAIN_TINY)
    r = anchor_head_loss(cls, box, [GT], [META], config=PLAIN_TINY, num_classes=2)
    # RPN assigner: 0.5 is neither >= 0.7 nor < 0.3, but the GT's best (0.5 >= min_pos_iou 0.3) makes a3 positive.
    assert r.targets[0].assign.gt_inds.tolist() == [0, 0, 0, 1]
    # sigmoid CE at logit 0: ln 2 for each of 8 terms.
    assert r.loss_cls[0].item() == pytest.approx(8 * LN2 / (1 + FLT_EPS), rel=1e-15)
    # smooth L1, beta 1/9: d >= beta gives d - beta/2 (0.5, 0.125, ln 2); d = 0 gives 0.
    want = (0.5 - 1 / 18) + (0.125 - 1 / 18) + (LN2 - 1 / 18)
    assert r.loss_bbox[0].item() == pytest.approx(want / (1 + FLT_EPS), rel=1e-14)


def test_softmax_classification_by_hand():
    conf = dataclasses.replace(RETINA_TINY, classification="softmax_ce")
    cls, box = tiny_outputs(conf)
    assert cls[0].shape[1] == 3  # num_classes + 1 outputs, background last
    r = anchor_head_loss(cls, box, [GT], [META], config=conf, num_classes=2)
    assert r.loss_cls[0].item() == pytest.approx(4 * math.log(3.0) / (1 + FLT_EPS), rel=1e-15)
    # the gradient of CE w.r.t. the true logit is p - 1 = -2/3 (/ avg_factor); a3's true class is 1, others 2.
    r.loss_cls[0].backward()
    g = cls[0].grad[0]
    assert g[1, 1, 1].item() == pytest.approx(-2 / 3 / (1 + FLT_EPS), rel=1e-14)
    assert g[2, 0, 0].item() == pytest.approx(-2 / 3 / (1 + FLT_EPS), rel=1e-14)


def test_giou_on_decoded_boxes_by_hand():
    conf = dataclasses.replace(RETINA_TINY, regression="giou", reg_decoded_bbox=True)
    cls, box = tiny_outputs(conf)
    with torch.no_grad():
        box[0].zero_()
    r = anchor_head_loss(cls, box, [GT], [META], config=conf, num_classes=2)
    # targets are the GT boxes themselves; zero deltas decode to a3 = [8,8,24,24]: IoU 1/2, and the enclosing
    # box is a3 itself (area 256 = union), so GIoU = 1/2 and the loss 1/2.
    assert r.targets[0].bbox_targets[3].tolist() == [8.0, 8.0, 24.0, 16.0]
    assert r.loss_bbox[0].item() == pytest.approx(0.5 / (1 + FLT_EPS), rel=1e-15)


def test_pos_weight_and_loss_weights():
    conf = dataclasses.replace(RETINA_TINY, pos_weight=2.0, loss_weight_cls=0.5, loss_weight_bbox=3.0)
    cls, box = tiny_outputs(conf)
    r = anchor_head_loss(cls, box, [GT], [META], config=conf, num_classes=2)
    assert r.targets[0].label_weights.tolist() == [1.0, 1.0, 1.0, 2.0]
    # a3's two terms (0.0625 + 0.1875) ln 2 weighted 2, three negative anchors 3 * 2 * 0.1875 ln 2.
    assert r.loss_cls[0].item() == pytest.approx(0.5 * (2 * 0.25 + 6 * 0.1875) * LN2 / (1 + FLT_EPS), rel=1e-15)
    assert r.loss_bbox[0].item() == pytest.approx(3.0 * (0.625 + LN2) / (1 + FLT_EPS), rel=1e-15)


def test_random_sampler_uses_given_indices_and_counts_negatives():
    conf = dataclasses.replace(RETINA_TINY, sampler="random")
    cls, box = tiny_outputs(conf)
    r = anchor_head_loss(cls, box, [GT], [META], config=conf, num_classes=2,
                         sampled=[(torch.tensor([3]), torch.tensor([2, 0]))])
    t = r.targets[0]
    assert t.label_weights.tolist() == [1.0, 0.0, 1.0, 1.0]  # a1 was not sampled
    assert t.neg_inds.tolist() == [0, 2]
    assert r.avg_factor == 1 + 2  # avg_factor_with_neg
    # a3 0.25 ln 2, a0 and a2 0.375 ln 2 each
    assert r.loss_cls[0].item() == pytest.approx(1.0 * LN2 / (3 + FLT_EPS), rel=1e-15)
    assert r.loss_bbox[0].item() == pytest.approx((0.625 + LN2) / (3 + FLT_EPS), rel=1e-15)


def test_given_assignment_replaces_the_max_iou_one():
    cls, box = tiny_outputs(RETINA_TINY)
    computed = anchor_head_loss(cls, box, [GT], [META], config=RETINA_TINY, num_classes=2)
    same = anchor_head_loss(cls, box, [GT], [META], config=RETINA_TINY, num_classes=2,
                            gt_inds=[computed.targets[0].assign.gt_inds])
    assert [v.item() for v in same.loss_cls + same.loss_bbox] == [v.item() for v in
                                                                  computed.loss_cls + computed.loss_bbox]
    # a candidate that also made a0 positive for the GT and ignored a1: two positives, a1 weight 0
    r = anchor_head_loss(cls, box, [GT], [META], config=RETINA_TINY, num_classes=2,
                         gt_inds=[torch.tensor([1, -1, 0, 1])])
    t = r.targets[0]
    assert t.labels.tolist() == [1, 2, 2, 1] and t.label_weights.tolist() == [1.0, 0.0, 1.0, 1.0]
    assert r.avg_factor == 2 and t.pos_inds.tolist() == [0, 3]
    # a0 [-8,-8,8,8] centre (0,0) size 16 -> GT centre (16,12) size 16x8: (1, 0.75, 0, -ln 2)
    torch.testing.assert_close(t.bbox_targets[0], torch.tensor([1.0, 0.75, 0.0, -LN2]), rtol=0, atol=1e-15)
    assert t.assign.labels.tolist() == [1, -1, -1, 1]
    for bad, match in (([torch.tensor([2, 0, 0, 0])], r"gt_inds\[0\]: expected values <= 1"),
                       ([torch.tensor([1, 0, 0])], r"gt_inds\[0\]: expected shape \(4,\)"),
                       ([torch.tensor([-2, 0, 0, 0])], r"gt_inds\[0\]: expected values >= -1")):
        with pytest.raises(OracleInputError, match=match):
            anchor_head_loss(cls, box, [GT], [META], config=RETINA_TINY, num_classes=2, gt_inds=bad)
    with pytest.raises(OracleInputError, match=r"gt_inds\[0\]: expected values <= 0"):
        anchor_head_loss(cls, box, [EMPTY], [META], config=RETINA_TINY, num_classes=2,
                         gt_inds=[torch.tensor([1, 0, 0, 0])])


# --------------------------------------------------------------------------- images without targets

def test_image_without_targets():
    cls, box = tiny_outputs(RETINA_TINY)
    r = anchor_head_loss(cls, box, [EMPTY], [META], config=RETINA_TINY, num_classes=2)
    t = r.targets[0]
    assert t.labels.tolist() == [2, 2, 2, 2] and t.label_weights.tolist() == [1.0] * 4
    assert r.avg_factor == 1  # max(0, 1)
    assert r.loss_cls[0].item() == pytest.approx(8 * 0.1875 * LN2 / (1 + FLT_EPS), rel=1e-15)
    assert r.loss_bbox[0].item() == 0.0  # mmdet's early return: no bbox weight > 0
    r.total.backward()
    assert torch.equal(box[0].grad, torch.zeros_like(box[0]))
    assert bool(torch.isfinite(cls[0].grad).all()) and bool((cls[0].grad != 0).all())


def test_mixed_and_all_empty_batches():
    cls, box = tiny_outputs(RETINA_TINY, batch=2)
    mixed = anchor_head_loss(cls, box, [GT, EMPTY], [META, META], config=RETINA_TINY, num_classes=2)
    assert mixed.avg_factor == 2
    # image 0: 1.375 ln 2, image 1: 1.5 ln 2; bbox only image 0's a3.
    assert mixed.loss_cls[0].item() == pytest.approx((1.375 + 1.5) * LN2 / (2 + FLT_EPS), rel=1e-15)
    assert mixed.loss_bbox[0].item() == pytest.approx((0.625 + LN2) / (2 + FLT_EPS), rel=1e-15)
    empty = anchor_head_loss(cls, box, [EMPTY, EMPTY], [META, META], config=RETINA_TINY, num_classes=2)
    assert empty.avg_factor == 2
    assert empty.loss_cls[0].item() == pytest.approx(2 * 1.5 * LN2 / (2 + FLT_EPS), rel=1e-15)
    assert empty.loss_bbox[0].item() == 0.0


# --------------------------------------------------------------------------- thresholds, small targets, zero area

def test_iou_exactly_at_the_negative_threshold_is_ignored():
    conf = dataclasses.replace(RETINA_TINY, assigner=MaxIoUConvention(0.5, 0.25, match_low_quality=False))
    # GT [8,8,24,12]: IoU with a3 = 64/256 = 0.25 exactly: not < 0.25 -> ignored (label weight 0).
    t = image_targets(TINY.grid_anchors([(2, 2)])[0], torch.ones(4, dtype=torch.bool),
                      {"boxes": [[8.0, 8.0, 24.0, 12.0]], "labels": [0]}, META, config=conf, num_classes=2)
    assert t.assign.max_overlaps.tolist() == [0.0, 0.0, 0.0, 0.25]
    assert t.assign.gt_inds.tolist() == [0, 0, 0, -1]
    assert t.label_weights.tolist() == [1.0, 1.0, 1.0, 0.0] and t.labels.tolist() == [2, 2, 2, 2]
    assert t.avg_factor == 1


def test_target_smaller_than_one_stride_gets_its_best_anchors():
    # RetinaNet with square anchors only (32, 64, ... at strides 8, 16, ...; integer corners, exact IoUs).
    gen = AnchorGenerator(strides=(8, 16, 32, 64, 128), ratios=(1.0,), scales=(4.0,))
    conf = dataclasses.replace(RETINANET_HEAD_MMDET, anchor_generator=gen)
    sizes = [(8, 8), (4, 4), (2, 2), (1, 1), (1, 1)]
    anchors = torch.cat(gen.grid_anchors(sizes))
    gt = torch.tensor([[30.0, 30.0, 34.0, 34.0]])  # 4x4, smaller than the stride 8
    t = image_targets(anchors, torch.ones(len(anchors), dtype=torch.bool), {"boxes": gt, "labels": [3]},
                      {"img_shape": (64, 64)}, config=conf, num_classes=5)
    # The 32x32 anchors centred at (24|32|40, 24|32|40) contain the GT: IoU 16/1024 = 1/64 < 0.4, the best of
    # all anchors; min_pos_iou 0 makes exactly these 9 positive (the low-quality step).
    centres = {(float(x), float(y)) for x in (24, 32, 40) for y in (24, 32, 40)}
    pos = t.pos_inds.tolist()
    assert {((anchors[i, 0] + 16).item(), (anchors[i, 1] + 16).item()) for i in pos} == centres
    assert all(anchors[i, 2] - anchors[i, 0] == 32 for i in pos)
    assert t.assign.max_overlaps[pos].tolist() == [1 / 64] * 9
    assert t.labels[pos].tolist() == [3] * 9 and int((t.labels != 5).sum()) == 9
    torch.testing.assert_close(t.bbox_targets[pos], CODER_MMDET.encode(anchors[pos], gt.expand(9, 4)), rtol=0, atol=0)


def test_zero_area_boxes_give_finite_giou_loss_and_gradients():
    conf = dataclasses.replace(RETINA_TINY, regression="giou", reg_decoded_bbox=True)
    # a zero-area anchor decodes to a zero-area box whatever the deltas; the second row has a zero-area target.
    anchors = torch.tensor([[4.0, 4.0, 4.0, 4.0], [0.0, 0.0, 8.0, 8.0]])
    targets = torch.tensor([[0.0, 0.0, 8.0, 8.0], [4.0, 4.0, 4.0, 4.0]])
    deltas = torch.tensor([[0.3, -0.2, 0.1, 0.5], [0.0, 0.0, 0.0, 0.0]], requires_grad=True)
    cls = torch.zeros((2, 2), requires_grad=True)
    _, loss = level_loss(cls, deltas, anchors, [0, 1], torch.ones(2), targets, torch.ones((2, 4)), avg_factor=2,
                         config=conf, num_classes=2)
    # row 0: point (4,4) inside [0,0,8,8]: IoU 0, enclosing box = the target (area 64 = union) -> GIoU 0;
    # row 1: decoded [0,0,8,8] vs the point (4,4): the same -> GIoU 0. Loss (1 + 1) / (2 + eps).
    assert loss.item() == pytest.approx(2 / (2 + FLT_EPS), rel=1e-15)
    loss.backward()
    assert bool(torch.isfinite(deltas.grad).all())
    # through the head: a zero-width GT overlaps nothing (IoU 0 everywhere), so the min_pos_iou=0 quirk makes
    # all four anchors positive for it; forward and backward are finite.
    cls_maps, box_maps = tiny_outputs(conf)
    r = anchor_head_loss(cls_maps, box_maps, [{"boxes": [[8.0, 8.0, 8.0, 24.0]], "labels": [0]}], [META],
                         config=conf, num_classes=2)
    assert r.targets[0].pos_inds.tolist() == [0, 1, 2, 3]
    r.total.backward()
    assert bool(torch.isfinite(r.total)) and bool(torch.isfinite(box_maps[0].grad).all())


def test_level_without_positives_returns_before_the_box_loss():
    # mmdet's early return: no bbox weight > 0 gives (pred * weight).sum() = 0 without evaluating the loss.
    # Observable with a GIoU convention without eps: a zero-area anchor decodes to a zero-area box, and
    # against the zero target row its GIoU would be 0/0 (refused) if it were evaluated.
    from oracle.conventions import IOU_EXACT

    conf = dataclasses.replace(RETINA_TINY, regression="giou", reg_decoded_bbox=True, giou=IOU_EXACT)
    deltas = torch.tensor([[0.3, -0.2, 0.1, 0.5]], requires_grad=True)
    args = (torch.zeros((1, 2)), deltas, torch.tensor([[0.0, 0.0, 0.0, 0.0]]), [2], [1.0], torch.zeros((1, 4)))
    _, loss = level_loss(*args, torch.zeros((1, 4)), avg_factor=1, config=conf, num_classes=2)
    assert loss.item() == 0.0
    loss.backward()
    assert deltas.grad.tolist() == [[0.0] * 4]
    with pytest.raises(OracleInputError, match="0/0"):
        level_loss(*args, torch.ones((1, 4)), avg_factor=1, config=conf, num_classes=2)


def test_zero_area_gt_cannot_be_delta_encoded():
    cls, box = tiny_outputs(RETINA_TINY)
    with pytest.raises(OracleInputError, match=r"targets\[0\]\['boxes'\]\[0\]: expected positive width and height"):
        anchor_head_loss(cls, box, [{"boxes": [[8.0, 8.0, 8.0, 24.0]], "labels": [0]}], [META],
                         config=RETINA_TINY, num_classes=2)


# --------------------------------------------------------------------------- brute force and batching

LAYOUT_GEN = AnchorGenerator(strides=(8, 16), ratios=(1.0,), scales=(1.0, 2.0))  # A = 2 anchors per point
LAYOUT_SIZES = [(4, 3), (2, 2)]  # non-square maps


def python_loss(cls_maps, box_maps, targets, conf, num_classes):
    """Per level, loss_cls and loss_bbox re-derived in Python floats, anchor by anchor.

    Anchor (level l, y, x, k) of image b has index offset_l + (y * W + x) * A + k in the targets, its
    logits at channels k * C' + c and its deltas at channels k * 4 + j of the level's maps (mmdet's layout).
    """
    avg = sum(t.avg_factor for t in targets) + FLT_EPS
    out_cls, out_box = [], []
    offset = 0
    for cls_map, box_map in zip(cls_maps, box_maps):
        batch, channels, h, w = cls_map.shape
        a = box_map.shape[1] // 4
        cp = channels // a
        lc = lb = 0.0
        for b in range(batch):
            for y in range(h):
                for x in range(w):
                    for k in range(a):
                        i = offset + (y * w + x) * a + k
                        label, lw = int(targets[b].labels[i]), float(targets[b].label_weights[i])
                        logits = [float(cls_map[b, k * cp + c, y, x]) for c in range(cp)]
                        lc += lw * python_cls_term(logits, label, conf)
                        for j in range(4):
                            d = abs(float(box_map[b, k * 4 + j, y, x]) - float(targets[b].bbox_targets[i, j]))
                            beta = conf.smooth_l1_beta
                            term = d if conf.regression == "l1" else (0.5 * d * d / beta if d < beta else d - beta / 2)
                            lb += float(targets[b].bbox_weights[i, j]) * term
        out_cls.append(conf.loss_weight_cls * lc / avg)
        out_box.append(conf.loss_weight_bbox * lb / avg)
        offset += h * w * a
    return out_cls, out_box


def python_cls_term(logits, label, conf):
    if conf.classification == "softmax_ce":
        m = max(logits)
        return -(logits[label] - m - math.log(sum(math.exp(v - m) for v in logits)))
    total = 0.0
    for c, v in enumerate(logits):
        t = 1.0 if c == label else 0.0
        p = 1 / (1 + math.exp(-v))
        bce = -(t * math.log(p) + (1 - t) * math.log(1 - p))
        if conf.classification == "sigmoid_ce":
            total += bce
        else:
            pt = (1 - p) * t + p * (1 - t)
            total += (conf.focal_alpha * t + (1 - conf.focal_alpha) * (1 - t)) * pt ** conf.focal_gamma * bce
    return total


def random_batch(gen, sizes, conf, num_classes, batch, seed, img_shape=(30, 22)):
    g = torch.Generator().manual_seed(seed)
    a = gen.num_base_anchors[0]
    cls = [torch.randn((batch, a * conf.cls_out_channels(num_classes), h, w), generator=g) for h, w in sizes]
    box = [torch.randn((batch, a * 4, h, w), generator=g) * 0.5 for h, w in sizes]
    targets, metas = [], []
    for i in range(batch):
        k = 0 if i == 1 else int(torch.randint(1, 4, (1,), generator=g))  # image 1 has no targets
        xy = torch.rand((k, 2), generator=g) * 20
        wh = torch.rand((k, 2), generator=g) * 10 + 6
        labels = torch.randint(0, num_classes, (k,), generator=g)
        targets.append({"boxes": torch.cat((xy, xy + wh), 1), "labels": labels})
        metas.append({"img_shape": img_shape, "pad_shape": (32, 24)})
    return cls, box, targets, metas


CONFIGS = {
    "retinanet": dataclasses.replace(RETINANET_HEAD_MMDET, anchor_generator=LAYOUT_GEN),
    "plain": dataclasses.replace(ANCHOR_HEAD_MMDET, anchor_generator=LAYOUT_GEN),
    "softmax-border": dataclasses.replace(ANCHOR_HEAD_MMDET, anchor_generator=LAYOUT_GEN, classification="softmax_ce",
                                          allowed_border=4.0, pos_weight=1.5),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_loss_against_python_loop(name):
    conf = CONFIGS[name]
    cls, box, targets, metas = random_batch(LAYOUT_GEN, LAYOUT_SIZES, conf, 3, batch=2, seed=5)
    r = anchor_head_loss(cls, box, targets, metas, config=conf, num_classes=3)
    want_cls, want_box = python_loss(cls, box, r.targets, conf, 3)
    assert [v.item() for v in r.loss_cls] == pytest.approx(want_cls, rel=1e-12)
    assert [v.item() for v in r.loss_bbox] == pytest.approx(want_box, rel=1e-12, abs=1e-300)
    assert sum(len(t.pos_inds) for t in r.targets) > 0


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_targets_against_per_anchor_rules(name):
    conf = CONFIGS[name]
    cls, box, targets, metas = random_batch(LAYOUT_GEN, LAYOUT_SIZES, conf, 3, batch=3, seed=7)
    r = anchor_head_loss(cls, box, targets, metas, config=conf, num_classes=3)
    anchors = torch.cat(LAYOUT_GEN.grid_anchors(LAYOUT_SIZES))
    strides = [8] * (4 * 3 * 2) + [16] * (2 * 2 * 2)
    columns = [(i // 2) % 3 if i < 24 else ((i - 24) // 2) % 2 for i in range(len(anchors))]
    rows = [(i // 2) // 3 if i < 24 else ((i - 24) // 2) // 2 for i in range(len(anchors))]
    b = conf.allowed_border
    for t, target in zip(r.targets, targets):
        inside_list = t.inside_flags.tolist()
        inside_index = {}
        for i, (x1, y1, x2, y2) in enumerate(anchors.tolist()):
            # valid: grid point within ceil(pad / stride) (pad 32 x 24); inside: within img 30 x 22 up to b
            valid = columns[i] < math.ceil(24 / strides[i]) and rows[i] < math.ceil(32 / strides[i])
            inside = valid and (b < 0 or (x1 >= -b and y1 >= -b and x2 < 22 + b and y2 < 30 + b))
            assert inside_list[i] == inside, i
            if inside:
                inside_index[i] = len(inside_index)
        for i in range(len(anchors)):
            if i not in inside_index:
                assert (int(t.labels[i]), float(t.label_weights[i])) == (3, 0.0)
                assert t.bbox_targets[i].tolist() == [0.0] * 4 and t.bbox_weights[i].tolist() == [0.0] * 4
                continue
            g = int(t.assign.gt_inds[inside_index[i]])
            if g > 0:
                assert int(t.labels[i]) == int(target["labels"][g - 1])
                assert float(t.label_weights[i]) == (conf.pos_weight if conf.pos_weight > 0 else 1.0)
                want = CODER_MMDET.encode(anchors[i:i + 1], target["boxes"][g - 1:g].to(torch.float64))[0]
                assert t.bbox_targets[i].tolist() == want.tolist()
                assert t.bbox_weights[i].tolist() == [1.0] * 4
            else:
                assert int(t.labels[i]) == 3
                assert float(t.label_weights[i]) == (1.0 if g == 0 else 0.0)
                assert t.bbox_weights[i].tolist() == [0.0] * 4
        assert t.avg_factor == max(int((t.assign.gt_inds > 0).sum()), 1)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_batched_equals_per_image(name):
    conf = CONFIGS[name]
    cls, box, targets, metas = random_batch(LAYOUT_GEN, LAYOUT_SIZES, conf, 3, batch=3, seed=9)
    whole = anchor_head_loss(cls, box, targets, metas, config=conf, num_classes=3)
    assert whole.avg_factor == sum(t.avg_factor for t in whole.targets)
    parts = [anchor_head_loss([c[i:i + 1] for c in cls], [b[i:i + 1] for b in box], [targets[i]], [metas[i]],
                              config=conf, num_classes=3) for i in range(3)]
    for level in range(2):
        for key in ("loss_cls", "loss_bbox"):
            # each image's term times its normaliser sums to the batch term times the batch normaliser
            want = sum(getattr(p, key)[level].item() * (p.avg_factor + FLT_EPS) for p in parts)
            got = getattr(whole, key)[level].item() * (whole.avg_factor + FLT_EPS)
            assert got == pytest.approx(want, rel=1e-12, abs=1e-300)
    for p, t in zip(parts, whole.targets):
        for field in ("labels", "label_weights", "bbox_targets", "bbox_weights", "inside_flags", "pos_inds"):
            assert torch.equal(getattr(p.targets[0], field), getattr(t, field))


@pytest.mark.parametrize("name", ["retinanet", "plain"])
def test_classification_loss_by_blocks_is_bit_identical_to_one_block(monkeypatch, name):
    # The sigmoid classification losses run per block of _CLS_BLOCK anchors, each recomputed in the backward
    # pass, and are summed once over the concatenation: blocks of 16 anchors (48 elements, three
    # groups of 16 float64 lanes) give the bits of a single block, gradients included; a block paired with
    # another block's labels changes the loss. Blocks that split a group of 16 elements may move a last bit:
    # torch's float64 sigmoid rounds the elements past the last full group on another path (blocks of 5
    # anchors move 5 of 144 gradient elements by up to 2.8e-17 on AVX-512), so the test allows 2 ULPs there.
    import oracle.criteria.anchor_head as AH
    conf = CONFIGS[name]
    cls, box, targets, metas = random_batch(LAYOUT_GEN, LAYOUT_SIZES, conf, 3, batch=2, seed=5)

    def run(block):
        monkeypatch.setattr(AH, "_CLS_BLOCK", block)
        leaves = [c.detach().clone().requires_grad_(True) for c in cls]
        r = anchor_head_loss(leaves, box, targets, metas, config=conf, num_classes=3)
        return torch.stack(r.loss_cls), torch.autograd.grad(sum(r.loss_cls), leaves)
    one, one_grads = run(1 << 30)
    many, many_grads = run(16)
    level0_rows = cls[0].shape[0] * cls[0].shape[2] * cls[0].shape[3] * LAYOUT_GEN.num_base_anchors[0]
    assert level0_rows == 48  # three blocks of 16
    assert torch.equal(one, many)
    assert all(torch.equal(g, h) for g, h in zip(one_grads, many_grads))
    split, split_grads = run(5)
    torch.testing.assert_close(split, one, rtol=4.5e-16, atol=0)
    for g, h in zip(split_grads, one_grads):
        torch.testing.assert_close(g, h, rtol=4.5e-16, atol=1e-300)


def test_gradient_reaches_positive_boxes_only():
    conf = CONFIGS["retinanet"]
    cls, box, targets, metas = random_batch(LAYOUT_GEN, LAYOUT_SIZES, conf, 3, batch=2, seed=5)
    box = [b.requires_grad_() for b in box]
    r = anchor_head_loss(cls, box, targets, metas, config=conf, num_classes=3)
    r.total.backward()
    # per anchor, the delta gradient is non-zero exactly where bbox_weights are (L1: sign / avg_factor)
    for level, (h, w) in enumerate(LAYOUT_SIZES):
        grad = box[level].grad.permute(0, 2, 3, 1).reshape(2, -1, 4)
        lo = 0 if level == 0 else 24
        weights = torch.stack([t.bbox_weights[lo:lo + h * w * 2] for t in r.targets])
        assert torch.equal(grad != 0, weights > 0)


# --------------------------------------------------------------------------- bad input

def test_bad_input():
    cls, box = tiny_outputs(RETINA_TINY)
    ok = dict(config=RETINA_TINY, num_classes=2)
    cases = [
        (([torch.zeros(1, 3, 2, 2)], box, [GT], [META]), ok, r"cls_scores\[0\]: expected 2 channels"),
        ((cls + cls, box, [GT], [META]), ok, "cls_scores: expected a sequence of 1 per-level"),
        ((cls, [torch.full((1, 4, 2, 2), float("nan"))], [GT], [META]), ok, r"bbox_preds\[0\]: expected finite"),
        ((cls, [torch.zeros(1, 4, 2, 3)], [GT], [META]), ok, r"bbox_preds\[0\]: expected batch 1 and the feature"),
        ((cls, box, [{"boxes": GT["boxes"], "labels": [2]}], [META]), ok,
         r"targets\[0\]\['labels'\]: expected labels in \[0, 2\)"),
        ((cls, box, [{"boxes": [[8.0, 8.0, 4.0, 16.0]], "labels": [0]}], [META]), ok,
         r"targets\[0\]\['boxes'\]: expected x2 >= x1"),
        ((cls, box, [GT, GT], [META]), ok, "targets: expected a sequence of 1 per-image"),
        ((cls, box, [GT], [{"img_shape": (32.5, 32)}]), ok, r"img_metas\[0\]\['img_shape'\]: expected \(H, W\)"),
        ((cls, box, [GT], [{"pad_shape": (32, 32)}]), ok, r"img_metas\[0\]: expected a mapping with 'img_shape'"),
        ((cls, box, [GT], [META]), dict(config=RETINA_TINY, num_classes=0), "num_classes: expected a positive int"),
        ((cls, box, [GT], [META]), dict(config=RETINA_TINY, num_classes=2, sampled=[(torch.tensor([3]),
                                                                                        torch.tensor([0]))]),
         r"sampled\[0\]: expected None with the pseudo sampler"),
        ((cls, box, [GT], [META]), dict(config=dataclasses.replace(RETINA_TINY, sampler="random"), num_classes=2),
         r"sampled\[0\]: expected .pos_inds, neg_inds. per image"),
        ((cls, box, [GT], [META]), dict(config=dataclasses.replace(RETINA_TINY, sampler="random"), num_classes=2,
                                        sampled=[(torch.tensor([3]), torch.tensor([3]))]),
         r"sampled\[0\]\[1\] \(neg_inds\): expected anchors assigned negative"),
        ((cls, box, [GT], [META]), dict(config=dataclasses.replace(RETINA_TINY, sampler="random"), num_classes=2,
                                        sampled=[(torch.tensor([3, 3]), torch.tensor([0]))]),
         r"sampled\[0\]\[0\] \(pos_inds\): expected distinct indices"),
    ]
    for args, kwargs, match in cases:
        with pytest.raises(OracleInputError, match=match):
            anchor_head_loss(*args, **kwargs)


def test_no_anchor_inside_the_image_is_an_error():
    big = AnchorGenerator(strides=(16,), ratios=(1.0,), scales=(4.0,))  # 64x64 anchors on a 32x32 image
    conf = dataclasses.replace(RETINA_TINY, anchor_generator=big, allowed_border=0.0)
    cls, box = tiny_outputs(conf)
    with pytest.raises(OracleInputError, match="anchors: expected at least one valid anchor inside the image"):
        anchor_head_loss(cls, box, [GT], [META], config=conf, num_classes=2)


def test_bad_config():
    with pytest.raises(OracleInputError, match="reg_decoded_bbox: expected True with regression='giou'"):
        dataclasses.replace(RETINA_TINY, regression="giou")
    with pytest.raises(OracleInputError, match="smooth_l1_beta: expected a number > 0"):
        dataclasses.replace(PLAIN_TINY, smooth_l1_beta=0.0)
    with pytest.raises(OracleInputError, match="classification: expected one of"):
        dataclasses.replace(PLAIN_TINY, classification="focal")
    with pytest.raises(OracleInputError, match="config: expected an AnchorHeadConfig"):
        level_loss(torch.zeros(1, 2), torch.zeros(1, 4), [[0, 0, 8, 8]], [0], [1.0], torch.zeros(1, 4),
                   torch.zeros(1, 4), avg_factor=1, config=RETINANET_HEAD_MMDET.assigner, num_classes=2)
    with pytest.raises(OracleInputError, match="label_weights: expected weights >= 0"):
        level_loss(torch.zeros(1, 2), torch.zeros(1, 4), [[0, 0, 8, 8]], [0], [-1.0], torch.zeros(1, 4),
                   torch.zeros(1, 4), avg_factor=1, config=RETINA_TINY, num_classes=2)


def test_presets_follow_the_mmdet_configs():
    r = RETINANET_HEAD_MMDET
    assert (r.anchor_generator.octave_base_scale, r.anchor_generator.scales_per_octave) == (4, 3)
    assert r.anchor_generator.strides == (8, 16, 32, 64, 128) and r.anchor_generator.num_base_anchors[0] == 9
    assert (r.classification, r.focal_gamma, r.focal_alpha, r.regression) == ("sigmoid_focal", 2.0, 0.25, "l1")
    assert (r.assigner.pos_iou_thr, r.assigner.neg_iou_thr, r.assigner.min_pos_iou) == (0.5, 0.4, 0.0)
    p = ANCHOR_HEAD_MMDET
    assert p.anchor_generator.scales == (8, 16, 32) and p.anchor_generator.strides == (4, 8, 16, 32, 64)
    assert (p.classification, p.regression, p.smooth_l1_beta) == ("sigmoid_ce", "smooth_l1", 1 / 9)
    for conf in (r, p):
        assert (conf.sampler, conf.allowed_border, conf.pos_weight, conf.avg_factor_eps) == ("pseudo", -1, -1, FLT_EPS)


# --------------------------------------------------------------------------- mmdet cross-check

def mmdet_head(conf: AnchorHeadConfig, num_classes: int):
    """mmdet's head for ``conf``, built by the mmdet adapter (one translation of the configuration)."""
    import_or_skip("mmdet.models", "see docs/install.md")
    from conformance.adapters import resolve
    return resolve("mmdet").anchor_head_module(conf, num_classes)


# config, feature sizes, img_shape, pad_shape
MMDET_CASES = {
    "retinanet": (RETINANET_HEAD_MMDET, [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)], (120, 100), (128, 128)),
    "plain": (ANCHOR_HEAD_MMDET, [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)], (120, 100), (128, 128)),
    "giou-softmax": (dataclasses.replace(RETINANET_HEAD_MMDET, classification="softmax_ce", regression="giou",
                                         reg_decoded_bbox=True, allowed_border=0.0),
                     [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)], (120, 100), (128, 128)),
}


def anchor_like_targets(g: torch.Generator, anchors: torch.Tensor, img_shape, counts, num_classes: int):
    """Per image, GT boxes = anchors inside the image moved by up to 2 px per side, random labels.

    Each GT's best anchor is then unique: with dense anchors, a GT that only partly matches every anchor is
    often tied at its best IoU with several shifted anchors (a 1-D containment gives equal intersections),
    and such ties are decided by rounding (float32 upstream, float64 here).
    """
    h, w = img_shape
    inside = torch.nonzero((anchors[:, 0] >= 2) & (anchors[:, 1] >= 2) & (anchors[:, 2] <= w - 2)
                           & (anchors[:, 3] <= h - 2)).flatten()
    targets = []
    for k in counts:
        pick = inside[torch.randint(0, len(inside), (k,), generator=g)]
        boxes = anchors[pick] + (torch.rand((k, 4), generator=g) * 4 - 2)
        targets.append({"boxes": boxes, "labels": torch.randint(0, num_classes, (k,), generator=g)})
    return targets


def decisive(anchors: torch.Tensor, targets, conv: MaxIoUConvention, margin: float = 1e-5) -> bool:
    """No assignment decision of these targets hangs on rounding: every GT's best anchor and every anchor's
    best GT win by more than ``margin``, and no best IoU lies within ``margin`` of a non-zero threshold."""
    thresholds = [v for v in (conv.pos_iou_thr, *conv.negative_range, conv.min_pos_iou) if v > 0]
    for t in targets:
        if len(t["boxes"]) == 0:
            continue
        ov = box_ops.iou(t["boxes"], anchors, convention=conv.iou)
        gt_top = ov.topk(2, dim=1).values
        if bool((gt_top[:, 0] - gt_top[:, 1] <= margin).any()):
            return False
        best = ov.max(dim=0).values
        if len(ov) > 1:
            anchor_top = ov.topk(2, dim=0).values
            if bool(((anchor_top[0] - anchor_top[1] <= margin) & (best >= min(thresholds))).any()):
                return False
        if any(bool(((best - thr).abs() <= margin).any()) for thr in thresholds):
            return False
    return True


@pytest.mark.parametrize("name", sorted(MMDET_CASES))
def test_mmdet_anchor_head_cross_check(name):
    conf, sizes, img_shape, pad_shape = MMDET_CASES[name]
    head = mmdet_head(conf, 4)
    from mmengine.structures import InstanceData

    anchors = torch.cat(conf.anchor_generator.grid_anchors(sizes))
    g = torch.Generator().manual_seed(17)
    for attempt in range(50):
        cls, box, _, metas = random_batch(conf.anchor_generator, sizes, conf, 4, batch=3, seed=attempt,
                                          img_shape=img_shape)
        targets = anchor_like_targets(g, anchors, img_shape, (3, 0, 5), 4)
        if decisive(anchors, targets, conf.assigner):
            break
    else:
        pytest.fail("no random batch without rounding-dependent assignments")
    for m in metas:
        m["pad_shape"] = pad_shape
    # float32 upstream: anchors, coder (bbox2delta casts to float32) and losses run in float32, so the
    # comparison is at float32 tolerance.
    cls32 = [c.float().requires_grad_() for c in cls]
    box32 = [b.float().requires_grad_() for b in box]
    gt = [InstanceData(bboxes=t["boxes"].float(), labels=t["labels"]) for t in targets]
    ref = head.loss_by_feat(cls32, box32, gt, metas)
    cls64 = [c.clone().requires_grad_() for c in cls]
    box64 = [b.clone().requires_grad_() for b in box]
    got = anchor_head_loss(cls64, box64, targets, metas, config=conf, num_classes=4)
    anchor_list, valid_list = head.get_anchors(sizes, metas, device="cpu")
    labels, label_weights, _, bbox_weights, avg_factor = head.get_targets(anchor_list, valid_list, gt, metas)
    assert got.avg_factor == avg_factor
    for level in range(len(sizes)):
        lo = sum(h * w for h, w in sizes[:level]) * conf.anchor_generator.num_base_anchors[0]
        hi = lo + labels[level].shape[1]
        assert torch.equal(torch.stack([t.labels[lo:hi] for t in got.targets]), labels[level])
        assert torch.equal(torch.stack([t.label_weights[lo:hi] for t in got.targets]), label_weights[level].double())
        assert torch.equal(torch.stack([t.bbox_weights[lo:hi] for t in got.targets]), bbox_weights[level].double())
    for key in ("loss_cls", "loss_bbox"):
        want = torch.stack([v.double() for v in ref[key]])
        torch.testing.assert_close(torch.stack(list(getattr(got, key))), want, rtol=2e-5, atol=1e-6)
    torch.stack([*ref["loss_cls"], *ref["loss_bbox"]]).sum().backward()
    got.total.backward()
    for mine, theirs in zip(cls64 + box64, cls32 + box32):
        torch.testing.assert_close(mine.grad, theirs.grad.double(), rtol=1e-4, atol=1e-7)
