"""oracle.criteria.mmdet_detr_head: mmdet's DETR / Deformable-DETR / DINO head losses by hand and by relation."""

from __future__ import annotations

import math

import pytest
import torch

from oracle import OracleInputError
from oracle import boxes as box_ops
from oracle.conventions import (FLT_EPS, MMDET_DEFORMABLE_DETR_HEAD, MMDET_DETR_HEAD, MMDET_DINO_HEAD,
                                MMDetDETRHeadConvention)
from oracle.criteria import MMDetDETRHeadLoss, SetCriterion, SetCriterionConfig, assign_result

SIZE = (100.0, 200.0)  # img_shape (h, w)
PRED = [[0.5, 0.5, 0.2, 0.4], [0.3, 0.7, 0.1, 0.1]]
GT = [[0.55, 0.45, 0.3, 0.4]]
IDX = [(torch.tensor([0]), torch.tensor([0]))]


def _targets(n=1, size=SIZE):
    return [{"labels": torch.tensor([1]), "boxes": torch.tensor(GT), "image_size": size}] * n


def _focal(x, t, alpha=0.25, gamma=2.0):
    p = 1 / (1 + math.exp(-x))
    ce = -(t * math.log(p) + (1 - t) * math.log(1 - p))
    p_t = p * t + (1 - p) * (1 - t)
    return (alpha * t + (1 - alpha) * (1 - t)) * (1 - p_t) ** gamma * ce


def _pixel_giou():
    # pred xyxy [0.4, 0.3, 0.6, 0.7] -> pixels [80, 30, 120, 70]; gt [0.4, 0.25, 0.7, 0.65] -> [80, 25, 140, 65]
    # inter 40 x 35 = 1400, areas 1600 and 2400, union 2600, enclosing 60 x 45 = 2700.
    return 1400 / 2600 - 100 / 2700


def test_detr_head_softmax_by_hand():
    head = MMDetDETRHeadLoss(MMDET_DETR_HEAD, num_classes=2)
    logits = [[0.5, 2.0, -1.0], [1.0, 0.0, 3.0]]
    out = head(torch.tensor([[logits]]), torch.tensor([[PRED]]), _targets(), indices={"d0": IDX})
    lse = [math.log(sum(math.exp(v) for v in row)) for row in logits]
    ce0, ce1 = lse[0] - logits[0][1], lse[1] - logits[1][2]
    # cls_avg_factor = num_pos + num_neg * bg_cls_weight = 1 + 0.1; FLT_EPS added by weight_reduce_loss.
    assert out["loss_cls"].item() == pytest.approx((ce0 + 0.1 * ce1) / (1.1 + FLT_EPS), rel=1e-14)
    assert out["loss_bbox"].item() == pytest.approx(5 * 0.2 / (1 + FLT_EPS), rel=1e-13)
    assert out["loss_iou"].item() == pytest.approx(2 * (1 - _pixel_giou()) / (1 + FLT_EPS), rel=1e-13)
    assert set(out) == {"loss_cls", "loss_bbox", "loss_iou"}


def test_deformable_head_focal_by_hand():
    head = MMDetDETRHeadLoss(MMDET_DEFORMABLE_DETR_HEAD, num_classes=2)
    logits = [[0.5, 2.0], [1.0, -0.5]]
    out = head(torch.tensor([[logits]]), torch.tensor([[PRED]]), _targets(), indices={"d0": IDX})
    s = _focal(0.5, 0) + _focal(2.0, 1) + _focal(1.0, 0) + _focal(-0.5, 0)
    assert out["loss_cls"].item() == pytest.approx(2.0 * s / (1 + FLT_EPS), rel=1e-14)  # loss_weight 2


def test_num_pos_counts_matched_queries_not_targets():
    # 3 targets, 2 queries: mmdet divides by 2 matched queries (+eps); DETR would divide by 3 targets.
    head = MMDetDETRHeadLoss(MMDET_DINO_HEAD, num_classes=2)
    boxes = torch.tensor([[[[0.5, 0.5, 0.2, 0.2], [0.4, 0.4, 0.2, 0.2]]]])
    targets = [{"labels": torch.tensor([0, 1, 1]), "image_size": SIZE,
                "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.45, 0.4, 0.2, 0.2], [0.6, 0.6, 0.1, 0.1]])}]
    out = head(torch.zeros(1, 1, 2, 2), boxes, targets, indices={"d0": [(torch.tensor([0, 1]), torch.tensor([0, 1]))]})
    assert out["loss_bbox"].item() == pytest.approx(5 * 0.05 / (2 + FLT_EPS), rel=1e-13)


def test_relation_to_the_detr_criterion():
    # One process, T <= Q: mmdet's DETRHead equals DETR's criterion up to FLT_EPS and the loss weights.
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 4, generator=g)
    boxes = torch.rand(2, 5, 4, generator=g) * 0.4 + 0.1
    targets = [{"labels": torch.tensor([0, 2]), "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.6, 0.5, 0.3, 0.2]]),
                "image_size": (480.0, 640.0)},
               {"labels": torch.tensor([1]), "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.4]]),
                "image_size": (300.0, 500.0)}]
    detr = SetCriterion(SetCriterionConfig.from_profile("detr", num_classes=3))
    idx = detr.match(*_layer(logits, boxes), _plain(targets))
    ours = detr({"pred_logits": logits, "pred_boxes": boxes}, targets, indices={"": idx})
    mm = MMDetDETRHeadLoss(MMDET_DETR_HEAD, num_classes=3)(logits[None], boxes[None], targets, indices={"d0": idx})
    avg = 3 + 7 * 0.1
    assert mm["loss_cls"].item() == pytest.approx(ours["loss_ce"].item() * avg / (avg + FLT_EPS), rel=1e-13)
    assert mm["loss_bbox"].item() == pytest.approx(5 * ours["loss_bbox"].item() * 3 / (3 + FLT_EPS), rel=1e-13)
    # GIoU is invariant to the anisotropic pixel scaling; only rounding differs.
    assert mm["loss_iou"].item() == pytest.approx(2 * ours["loss_giou"].item() * 3 / (3 + FLT_EPS), rel=1e-12)


def _layer(logits, boxes):
    from oracle.criteria._inputs import layer_arg
    return (layer_arg("outputs", {"pred_logits": logits, "pred_boxes": boxes}),)


def _plain(targets):
    from oracle.criteria._inputs import targets_arg
    return targets_arg(targets, len(targets), 3, need_image_size=True)


def test_keys_layers_enc_and_dn():
    head = MMDetDETRHeadLoss(MMDET_DINO_HEAD, num_classes=3)
    g = torch.Generator().manual_seed(1)
    targets = [{"labels": torch.tensor([0, 2]), "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.6, 0.5, 0.3, 0.2]]),
                "image_size": SIZE}]
    meta = {"pad_size": 8, "num_dn_group": 2}
    out = head(torch.randn(3, 1, 4, 3, generator=g), torch.rand(3, 1, 4, 4, generator=g) * 0.4 + 0.1, targets,
               enc_cls_scores=torch.randn(1, 6, 3, generator=g),
               enc_bbox_preds=torch.rand(1, 6, 4, generator=g) * 0.4 + 0.1,
               dn_cls_scores=torch.randn(3, 1, 8, 3, generator=g),
               dn_bbox_preds=torch.rand(3, 1, 8, 4, generator=g) * 0.4 + 0.1, dn_meta=meta)
    names = ("loss_cls", "loss_bbox", "loss_iou")
    want = {f"{p}{n}" for p in ("", "d0.", "d1.", "enc_", "dn_", "d0.dn_", "d1.dn_") for n in names}
    assert set(out) == want
    assert MMDetDETRHeadLoss.total(out).item() == pytest.approx(sum(v.item() for v in out.values()), rel=1e-14)


def test_dn_losses_by_relation():
    head = MMDetDETRHeadLoss(MMDET_DINO_HEAD, num_classes=3)
    g = torch.Generator().manual_seed(2)
    targets = [{"labels": torch.tensor([0, 2]), "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.6, 0.5, 0.3, 0.2]]),
                "image_size": SIZE}]
    dn_boxes = torch.rand(1, 1, 8, 4, generator=g) * 0.4 + 0.1
    out = head(torch.randn(1, 1, 4, 3, generator=g), torch.rand(1, 1, 4, 4, generator=g) * 0.4 + 0.1, targets,
               dn_cls_scores=torch.randn(1, 1, 8, 3, generator=g), dn_bbox_preds=dn_boxes,
               dn_meta={"pad_size": 8, "num_dn_group": 2})
    src = dn_boxes[0, 0, [0, 1, 4, 5]]
    tgt = targets[0]["boxes"].repeat(2, 1)
    assert out["dn_loss_bbox"].item() == pytest.approx(5 * (src - tgt).abs().sum().item() / (4 + FLT_EPS), rel=1e-13)


def test_zero_targets():
    empty = [{"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4), "image_size": SIZE}] * 2
    logits = torch.randn(1, 2, 3, 3, generator=torch.Generator().manual_seed(3), requires_grad=True)
    boxes = torch.full((1, 2, 3, 4), 0.3)
    soft = MMDetDETRHeadLoss(MMDET_DETR_HEAD, num_classes=2)(logits, boxes, empty)
    ce = torch.nn.functional.cross_entropy(logits[0].reshape(-1, 3).detach(), torch.full((6,), 2), reduction="sum")
    # every query is background: cls_avg_factor = max(0.1 * B * Q, 1) = max(0.6, 1) = 1
    assert soft["loss_cls"].item() == pytest.approx(0.1 * ce.item() / (1 + FLT_EPS), rel=1e-13)
    assert soft["loss_bbox"].item() == 0.0 and soft["loss_iou"].item() == 0.0
    many = torch.randn(1, 2, 10, 3, generator=torch.Generator().manual_seed(5))
    big = MMDetDETRHeadLoss(MMDET_DETR_HEAD, num_classes=2)(many, torch.full((1, 2, 10, 4), 0.3), empty)
    ce = torch.nn.functional.cross_entropy(many[0].reshape(-1, 3), torch.full((20,), 2), reduction="sum")
    # 20 background queries: cls_avg_factor = 0.1 * 20 = 2, above the floor of 1
    assert big["loss_cls"].item() == pytest.approx(0.1 * ce.item() / (2 + FLT_EPS), rel=1e-13)
    focal = MMDetDETRHeadLoss(MMDET_DINO_HEAD, num_classes=3)
    out = focal(logits, boxes, empty, dn_meta={"pad_size": 0, "num_dn_group": 1})
    assert out["dn_loss_cls"].shape == (1,) and out["dn_loss_cls"].item() == 0.0
    (grad,) = torch.autograd.grad(focal.total(out), logits)
    assert bool(torch.isfinite(grad).all())


def test_enc_targets_binary_vs_real():
    g = torch.Generator().manual_seed(4)
    targets = [{"labels": torch.tensor([2]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]]), "image_size": SIZE}]
    enc_cls, enc_box = torch.randn(1, 5, 3, generator=g), torch.rand(1, 5, 4, generator=g) * 0.4 + 0.1
    layers = (torch.randn(1, 1, 2, 3, generator=g), torch.rand(1, 1, 2, 4, generator=g) * 0.4 + 0.1)
    deform = MMDetDETRHeadLoss(MMDET_DEFORMABLE_DETR_HEAD, 3)(*layers, targets, enc_cls_scores=enc_cls,
                                                              enc_bbox_preds=enc_box)
    binary = [{**targets[0], "labels": torch.tensor([0])}]
    direct = MMDetDETRHeadLoss(MMDET_DEFORMABLE_DETR_HEAD, 3)(enc_cls[None], enc_box[None], binary)
    assert deform["enc_loss_cls"].item() == pytest.approx(direct["loss_cls"].item(), rel=1e-14)
    dino = MMDetDETRHeadLoss(MMDET_DINO_HEAD, 3)(*layers, targets, enc_cls_scores=enc_cls, enc_bbox_preds=enc_box)
    real = MMDetDETRHeadLoss(MMDET_DINO_HEAD, 3)(enc_cls[None], enc_box[None], targets)
    assert dino["enc_loss_cls"].item() == pytest.approx(real["loss_cls"].item(), rel=1e-14)


def test_assign_result_encoding():
    gt_inds, labels = assign_result((torch.tensor([0, 3]), torch.tensor([1, 0])), 5, torch.tensor([7, 4]))
    assert gt_inds.tolist() == [2, 0, 0, 1, 0] and labels.tolist() == [4, -1, -1, 7, -1]


def test_errors():
    head = MMDetDETRHeadLoss(MMDET_DETR_HEAD, num_classes=2)
    with pytest.raises(OracleInputError, match=r"targets\[0\]: expected an 'image_size' \(height, width\) entry"):
        head(torch.zeros(1, 1, 2, 3), torch.full((1, 1, 2, 4), 0.3), [{"labels": torch.tensor([0]),
                                                                        "boxes": torch.full((1, 4), 0.3)}])
    with pytest.raises(OracleInputError, match=r"all_cls_scores: expected K = 3 scores per query"):
        head(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 4), 0.3), _targets())
    with pytest.raises(OracleInputError, match=r"bg_cls_weight: expected 0 with focal"):
        MMDetDETRHeadConvention(classification="focal", matcher=MMDET_DINO_HEAD.matcher, bg_cls_weight=0.1)


def test_giou_is_computed_in_pixels():
    # Boxes 5e-4 of the image wide: their normalised areas (~2.5e-7) are below GIoULoss's 1e-6 clamp, their
    # pixel areas (0.05 x 0.1 px in a 100 x 200 image) are not, so only pixel units give the exact GIoU.
    head = MMDetDETRHeadLoss(MMDET_DETR_HEAD, num_classes=2)
    pred = torch.tensor([[[[0.5, 0.5, 5e-4, 5e-4]]]])
    targets = [{"labels": torch.tensor([0]), "boxes": torch.tensor([[0.5002, 0.5001, 5e-4, 5e-4]]), "image_size": SIZE}]
    out = head(torch.zeros(1, 1, 1, 3), pred, targets)
    exact = box_ops.giou(box_ops.convert(pred[0, 0], "cxcywh", "xyxy"),
                         box_ops.convert(targets[0]["boxes"], "cxcywh", "xyxy")).item()
    assert out["loss_iou"].item() == pytest.approx(2 * (1 - exact) / (1 + FLT_EPS), rel=1e-9)
    clamped_in_normalised_units = box_ops.giou(box_ops.convert(pred[0, 0], "cxcywh", "xyxy"),
                                         box_ops.convert(targets[0]["boxes"], "cxcywh", "xyxy"),
                                         convention=MMDET_DETR_HEAD.iou).item()
    assert abs(clamped_in_normalised_units - exact) > 0.1


def test_in_a_process_group_the_normalisers_are_the_ranks_means_by_hand():
    # This rank: 1 matched query of 2, its other rank 3 matched of 8. DETRHead (softmax, bg_cls_weight 0.1, no
    # sync_cls_avg_factor): the class factor stays this rank's 1 + 1 * 0.1, num_pos for the boxes is the mean
    # (1 + 3) / 2 = 2. The deformable head (focal, sync): the class factor is the ranks' mean (1 + 3) / 2 too.
    world = [{"d0": (1.0, 1.1)}, {"d0": (3.0, 3.5)}]
    logits = [[0.5, 2.0, -1.0], [1.0, 0.0, 3.0]]
    detr = MMDetDETRHeadLoss(MMDET_DETR_HEAD, num_classes=2)
    out = detr(torch.tensor([[logits]]), torch.tensor([[PRED]]), _targets(), indices={"d0": IDX}, world=world)
    lse = [math.log(sum(math.exp(v) for v in row)) for row in logits]
    ce0, ce1 = lse[0] - logits[0][1], lse[1] - logits[1][2]
    assert out["loss_cls"].item() == pytest.approx((ce0 + 0.1 * ce1) / (1.1 + FLT_EPS), rel=1e-14)
    assert out["loss_bbox"].item() == pytest.approx(5 * 0.2 / (2 + FLT_EPS), rel=1e-13)
    assert out["loss_iou"].item() == pytest.approx(2 * (1 - _pixel_giou()) / (2 + FLT_EPS), rel=1e-13)
    focal = [[0.5, 2.0], [1.0, -0.5]]
    deform = MMDetDETRHeadLoss(MMDET_DEFORMABLE_DETR_HEAD, num_classes=2)
    world = [{"d0": (1.0, 1.0)}, {"d0": (3.0, 3.0)}]
    out = deform(torch.tensor([[focal]]), torch.tensor([[PRED]]), _targets(), indices={"d0": IDX}, world=world)
    s = _focal(0.5, 0) + _focal(2.0, 1) + _focal(1.0, 0) + _focal(-0.5, 0)
    assert out["loss_cls"].item() == pytest.approx(2.0 * s / (2 + FLT_EPS), rel=1e-14)
    # the class factor is clamped to 1 after the mean: two ranks without a match give 1, not 0
    empty = [{"d0": (0.0, 0.0)}, {"d0": (0.0, 0.0)}]
    out = deform(torch.tensor([[focal]]), torch.tensor([[PRED]]), _targets(), indices={"d0": IDX}, world=empty)
    assert out["loss_cls"].item() == pytest.approx(2.0 * s / (1 + FLT_EPS), rel=1e-14)


def test_a_world_of_one_rank_is_one_process():
    g = torch.Generator().manual_seed(4)
    head = MMDetDETRHeadLoss(MMDET_DINO_HEAD, num_classes=3)
    targets = [{"labels": torch.tensor([0, 2]), "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.6, 0.5, 0.3, 0.2]]),
                "image_size": SIZE}]
    args = (torch.randn(2, 1, 4, 3, generator=g), torch.rand(2, 1, 4, 4, generator=g) * 0.4 + 0.1, targets)
    kwargs = {"enc_cls_scores": torch.randn(1, 6, 3, generator=g),
              "enc_bbox_preds": torch.rand(1, 6, 4, generator=g) * 0.4 + 0.1,
              "dn_cls_scores": torch.randn(2, 1, 8, 3, generator=g),
              "dn_bbox_preds": torch.rand(2, 1, 8, 4, generator=g) * 0.4 + 0.1,
              "dn_meta": {"pad_size": 8, "num_dn_group": 2}}
    stats = head.statistics(*args, **kwargs)
    assert stats == {"d0": (2.0, 2.0), "d1": (2.0, 2.0), "enc": (2.0, 2.0), "dn": (4.0, 4.0)}
    alone, grouped = head(*args, **kwargs), head(*args, **kwargs, world=[stats])
    assert alone.keys() == grouped.keys() and all(torch.equal(alone[k], grouped[k]) for k in alone)
    with pytest.raises(OracleInputError, match=r"world\[0\]: expected a mapping with the layers"):
        head(*args, **kwargs, world=[{"d0": (1.0, 1.0)}])
    with pytest.raises(OracleInputError, match=r"world\[1\]\['d0'\]: expected \(num_pos, cls_avg_factor\)"):
        head(*args, **kwargs, world=[stats, {**stats, "d0": (math.nan, 1.0)}])
