"""Bad input raises OracleInputError naming the argument, what was expected and what was found."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from oracle import OracleInputError
from oracle import boxes as box_ops
from oracle import losses as L
from oracle.assign.hungarian import evaluate_matching, hungarian_match, matching_cost_matrix
from oracle.conventions import IoUConvention, MatcherConvention, get_profile

GOOD = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.2, 0.2, 0.6, 0.9]], dtype=torch.float64)


def test_is_a_value_error():
    assert issubclass(OracleInputError, ValueError)


@pytest.mark.parametrize("bad, match", [
    ([[0.0, 0.0, math.nan, 1.0]],
     r"boxes1: expected finite values, got 1 non-finite value\(s\), first nan at index \(0, 2\)"),
    ([[0.0, math.inf, 1.0, 1.0]], r"boxes1: expected finite values, got 1 non-finite value\(s\), first inf"),
    ([[0.5, 0.0, 0.2, 1.0]],
     r"boxes1: expected x2 >= x1 and y2 >= y1 \(xyxy\), got box \[0.5, 0.0, 0.2, 1.0\] at index \(0,\)"),
    ([[0.0, 0.0, 1.0]], r"boxes1: expected last dimension 4"),
    ([0.0, 0.0, 1.0, 1.0], r"boxes1: expected rank 2"),
], ids=["nan", "inf", "x2<x1", "last-dim", "rank"])
def test_bad_boxes(bad, match):
    for fn in (box_ops.iou, box_ops.giou, box_ops.diou, box_ops.ciou):
        with pytest.raises(OracleInputError, match=match):
            fn(torch.tensor(bad), GOOD)


def test_negative_width_in_cxcywh_and_xywh():
    for fmt in ("cxcywh", "xywh"):
        with pytest.raises(OracleInputError, match=rf"boxes: expected non-negative width and height \({fmt}\)"):
            box_ops.convert(torch.tensor([[0.5, 0.5, -0.1, 0.2]]), fmt, "xyxy")


def test_unknown_format_and_mode():
    with pytest.raises(OracleInputError, match=r"src: expected one of 'xyxy', 'cxcywh', 'xywh', got 'ltrb'"):
        box_ops.convert(GOOD, "ltrb", "xyxy")
    with pytest.raises(OracleInputError, match=r"mode: expected one of 'iou', 'iof', got 'giou'"):
        box_ops.iou(GOOD, GOOD, mode="giou")


def test_aligned_needs_equal_counts():
    with pytest.raises(OracleInputError,
                       match=r"boxes2: expected as many boxes as boxes1 \(2\) with aligned=True, got 1"):
        box_ops.giou(GOOD, GOOD[:1], aligned=True)


def test_non_numeric_and_bool_boxes():
    with pytest.raises(OracleInputError, match="boxes1: expected a real-valued tensor, array or list, got str"):
        box_ops.iou("boxes", GOOD)
    with pytest.raises(OracleInputError, match="boxes1: expected a real-valued tensor, got dtype torch.bool"):
        box_ops.iou(torch.ones(1, 4, dtype=torch.bool), GOOD)


def test_non_finite_logits_and_targets():
    with pytest.raises(OracleInputError, match="logits: expected finite values"):
        L.sigmoid_focal_loss(torch.tensor([math.nan]), torch.tensor([1.0]))
    with pytest.raises(OracleInputError, match="logits: expected finite values"):
        L.softmax_cross_entropy(torch.tensor([[0.0, -math.inf]]), torch.tensor([0]))
    with pytest.raises(OracleInputError, match=r"targets: expected values <= 1.0, got 1.5"):
        L.sigmoid_binary_cross_entropy(torch.tensor([0.0]), torch.tensor([1.5]))
    with pytest.raises(OracleInputError, match=r"targets: expected the shape of logits \(2,\), got shape \(3,\)"):
        L.sigmoid_focal_loss(torch.zeros(2), torch.zeros(3))


def test_finiteness_check_is_not_fooled_by_its_sum_shortcut():
    # check_finite first sums the tensor: opposite infinities sum to NaN and must still be refused,
    # finite values whose sum overflows must still pass.
    with pytest.raises(OracleInputError, match=r"logits: expected finite values, got 2 non-finite value\(s\), first "
                                               r"inf at index \(0,\)"):
        L.sigmoid_focal_loss(torch.tensor([math.inf, -math.inf, 0.0], dtype=torch.float64), torch.zeros(3))
    huge = torch.full((3,), 1e308, dtype=torch.float64)
    assert math.isinf(float(huge.sum()))
    assert torch.isfinite(L.sigmoid_binary_cross_entropy(huge, torch.ones(3), reduction="none")).all()


def test_labels_out_of_range_and_wrong_dtype():
    x = torch.zeros(3, 4, dtype=torch.float64)
    with pytest.raises(OracleInputError, match=r"labels: expected labels in \[0, 4\), got 4 at index \(1,\)"):
        L.softmax_cross_entropy(x, torch.tensor([0, 4, 1]))
    with pytest.raises(OracleInputError, match=r"labels: expected labels in \[0, 4\) or -100 \(ignore_index\), got -1"):
        L.softmax_cross_entropy(x, torch.tensor([0, -1, -100]), ignore_index=-100)
    with pytest.raises(OracleInputError, match="labels: expected an integer dtype"):
        L.softmax_cross_entropy(x, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(OracleInputError, match=r"labels: expected shape \(3,\)"):
        L.softmax_cross_entropy(x, torch.tensor([0, 1]))


def test_bad_loss_parameters():
    x, t = torch.zeros(2), torch.zeros(2)
    with pytest.raises(OracleInputError, match=r"alpha: expected a number <= 1.0, got 1.5"):
        L.sigmoid_focal_loss(x, t, alpha=1.5)
    with pytest.raises(OracleInputError, match=r"gamma: expected a number >= 0.0, got -1.0"):
        L.sigmoid_focal_loss(x, t, gamma=-1.0)
    with pytest.raises(OracleInputError, match=r"beta: expected a number >= 0.0, got -0.5"):
        L.smooth_l1_loss(x, t, beta=-0.5)
    with pytest.raises(OracleInputError, match=r"reduction: expected one of 'none', 'sum', 'mean', got 'avg'"):
        L.l1_loss(x, t, reduction="avg")
    with pytest.raises(OracleInputError, match=r"weight: expected values >= 0.0, got -1.0"):
        L.l1_loss(x, t, weight=torch.tensor([1.0, -1.0]))
    with pytest.raises(OracleInputError,
                       match=r"weight: expected a shape that broadcasts to the element-wise loss \(2,\)"):
        L.l1_loss(x, t, weight=torch.ones(3))
    with pytest.raises(OracleInputError, match=r"avg_factor: expected a finite number, got nan"):
        L.l1_loss(x, t, avg_factor=math.nan)
    with pytest.raises(OracleInputError, match=r"class_weight: expected 4 entries \(one per logit\), got 3"):
        L.softmax_cross_entropy(torch.zeros(1, 4), torch.tensor([0]), class_weight=torch.ones(3))


def _targets(n=1):
    return [{"labels": torch.tensor([0]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]])} for _ in range(n)]


def test_matcher_batch_and_target_errors():
    logits = torch.zeros(2, 3, 4, dtype=torch.float64)
    boxes = torch.full((2, 3, 4), 0.3, dtype=torch.float64)
    with pytest.raises(OracleInputError,
                       match=r"targets: expected 2 per-image mappings \(the batch size of pred_logits\), got 1"):
        hungarian_match(logits, boxes, _targets(1))
    with pytest.raises(OracleInputError, match=r"targets: expected a sequence of per-image mappings, got dict"):
        hungarian_match(logits, boxes, _targets(1)[0])
    with pytest.raises(OracleInputError, match=r"pred_logits: expected a batch of at least one image, got B = 0"):
        hungarian_match(logits[:0], boxes[:0], [])
    with pytest.raises(OracleInputError, match=r"pred_logits: expected rank 3"):
        hungarian_match(logits[0], boxes[0], _targets(1))
    with pytest.raises(OracleInputError, match=r"pred_boxes: expected shape \(2, 3, 4\) to match pred_logits"):
        hungarian_match(logits, boxes[:, :2], _targets(2))
    bad_label = [{"labels": torch.tensor([3]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]])}] * 2
    # softmax: 4 logit columns = 3 classes + no-object, so label 3 (the no-object column) is refused.
    with pytest.raises(OracleInputError, match=r"image 0: targets\['labels'\]: expected labels in \[0, 3\), got 3"):
        hungarian_match(logits, boxes, bad_label)
    nan_box = [{"labels": torch.tensor([0]), "boxes": torch.tensor([[0.5, math.nan, 0.2, 0.2]])}] * 2
    with pytest.raises(OracleInputError, match=r"image 0: targets\['boxes'\]: expected finite values"):
        hungarian_match(logits, boxes, nan_box)
    neg_box = [{"labels": torch.tensor([0]), "boxes": torch.tensor([[0.5, 0.5, -0.2, 0.2]])}] * 2
    with pytest.raises(OracleInputError, match=r"image 0: targets\['boxes'\]: expected non-negative width"):
        hungarian_match(logits, boxes, neg_box)
    count = [{"labels": torch.tensor([0, 1]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]])}] * 2
    with pytest.raises(OracleInputError,
                       match=r"image 0: targets\['boxes'\]: expected shape \(2, 4\), one box per label"):
        hungarian_match(logits, boxes, count)
    with pytest.raises(OracleInputError, match=r"image 1: targets: expected a 'labels' entry"):
        hungarian_match(logits, boxes, [_targets(1)[0], {"boxes": torch.zeros(0, 4)}])
    nan_logits = logits.clone()
    nan_logits[1, 2, 0] = math.nan
    with pytest.raises(OracleInputError, match=r"image 1: pred_logits: expected finite values"):
        hungarian_match(nan_logits, boxes, _targets(2))


def test_matcher_image_size_errors():
    conv = get_profile("mmdet").matcher
    target = {**_targets(1)[0], "image_size": (0, 640)}
    with pytest.raises(OracleInputError,
                       match=r"target\['image_size'\]: expected positive \(height, width\), got \(0.0, 640.0\)"):
        matching_cost_matrix(torch.zeros(1, 3), torch.full((1, 4), 0.3), target, convention=conv)


def test_bad_conventions():
    with pytest.raises(OracleInputError, match=r"IoUConvention.eps: expected 0 when eps_mode is 'none', got 1e-06"):
        IoUConvention(eps=1e-6)
    with pytest.raises(OracleInputError, match=r"IoUConvention.eps: expected a positive eps for eps_mode 'add', got 0"):
        IoUConvention(eps_mode="add")
    with pytest.raises(OracleInputError, match=r"IoUConvention.eps_mode: expected one of"):
        IoUConvention(eps_mode="max")
    with pytest.raises(OracleInputError, match=r"MatcherConvention: expected at least one non-zero cost weight"):
        MatcherConvention(weight_class=0, weight_bbox=0, weight_giou=0)
    with pytest.raises(OracleInputError, match=r"name: expected one of .*detr.*, got 'yolo'"):
        get_profile("yolo")


def test_evaluate_matching_malformed_arguments():
    with pytest.raises(OracleInputError, match=r"cost_matrix: expected finite values"):
        evaluate_matching(torch.tensor([[math.nan]]), [0], [0])
    with pytest.raises(OracleInputError, match=r"pred_idx: expected an integer dtype"):
        evaluate_matching(torch.zeros(2, 2), torch.tensor([0.0, 1.0]), [0, 1])
    with pytest.raises(OracleInputError, match=r"cost_matrix: expected rank 2"):
        evaluate_matching(np.zeros(3), [0], [0])


# --------------------------------------------------------------------------- empty inputs, argument names, overflow

def test_ciou_of_an_image_without_boxes_is_empty():
    # A zero-size box on the other side has no pair to be undefined in: the result is empty, not an error.
    assert box_ops.ciou(torch.zeros(0, 4), torch.zeros(1, 4)).shape == (0, 1)
    assert box_ops.ciou(torch.zeros(1, 4), torch.zeros(0, 4)).shape == (1, 0)
    assert box_ops.ciou(torch.zeros(0, 4), torch.zeros(0, 4), aligned=True).shape == (0,)


@pytest.mark.parametrize("loss", [L.giou_loss, L.diou_loss, L.ciou_loss], ids=["giou", "diou", "ciou"])
def test_iou_losses_name_pred_and_target(loss):
    nan = GOOD.clone()
    nan[0, 1] = math.nan
    with pytest.raises(OracleInputError, match=r"^pred: expected finite values"):
        loss(nan, GOOD)
    with pytest.raises(OracleInputError, match=r"^target: expected x2 >= x1 and y2 >= y1 \(xyxy\)"):
        loss(GOOD, GOOD[:, [2, 3, 0, 1]])
    with pytest.raises(OracleInputError, match=r"^target: expected as many boxes as pred \(2\) with aligned=True"):
        loss(GOOD, GOOD[:1])
    with pytest.raises(OracleInputError, match=r"^pred: expected rank 2"):
        loss(GOOD[None], GOOD)
    point = torch.tensor([[0.5, 0.5, 0.5, 0.5]], dtype=torch.float64)
    with pytest.raises(OracleInputError, match=r"^pred/target: the union area is 0 for the pair at \(0,\)"):
        loss(point, point)


def test_prepare_for_cdn_refuses_nan_draws():
    from oracle.criteria import CdnDraws, prepare_for_cdn
    targets = [{"labels": torch.tensor([0]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]])}]
    part = torch.full((4, 4), 0.5, dtype=torch.float64)  # dn_number 1: 2 groups x 2 parts x 1 target
    part[2, 1] = math.nan
    draws = CdnDraws(label_p=torch.ones(4), relabel=torch.zeros(0, dtype=torch.int64),
                     box_sign=torch.zeros(4, 4, dtype=torch.int64), box_part=part)
    with pytest.raises(OracleInputError, match=r"^draws.box_part: expected values in \[0.0, 1.0\], got nan at index "
                                               r"\(2, 1\)"):
        prepare_for_cdn(targets, dn_number=1, label_noise_ratio=0.5, box_noise_scale=1.0, num_classes=3,
                        num_queries=2, draws=draws)


def test_reduce_loss_checks_loss():
    non_finite = r"^loss: expected finite values, got 1 non-finite value\(s\), first "
    with pytest.raises(OracleInputError, match=non_finite + "nan"):
        L.reduce_loss(torch.tensor([1.0, math.nan]))
    with pytest.raises(OracleInputError, match=non_finite + "inf"):
        L.reduce_loss(torch.tensor([1.0, math.inf]), reduction="sum")
    with pytest.raises(OracleInputError, match=r"^loss: expected a real-valued tensor, array or list, got str"):
        L.reduce_loss("loss")
    assert L.reduce_loss([1.0, 3.0]).item() == 2.0


def test_coordinates_that_would_overflow_are_refused_by_name():
    huge = torch.tensor([[0.0, 0.0, 1e160, 1e160]], dtype=torch.float64)
    msg = r"coordinates up to 1e\+160 overflow float64 in box areas and squared distances \(\|coordinate\| must be " \
          r"at most 1e\+150\)"
    for fn in (box_ops.iou, box_ops.giou, box_ops.diou, box_ops.ciou):
        with pytest.raises(OracleInputError, match="^boxes1: " + msg):
            fn(huge, GOOD)
        with pytest.raises(OracleInputError, match="^boxes2: " + msg):
            fn(GOOD, huge)
    with pytest.raises(OracleInputError, match="^boxes: " + msg):
        box_ops.area(huge)
    with pytest.raises(OracleInputError, match="^target: " + msg):
        L.giou_loss(GOOD[:1], huge)
    # At the bound the squares still fit: finite values, not inf/NaN.
    edge = torch.tensor([[-1e150, -1e150, 1e150, 1e150]], dtype=torch.float64)
    far = torch.tensor([[1e150, -1e150, 1e150, 1e150]], dtype=torch.float64)
    for fn in (box_ops.giou, box_ops.diou, box_ops.ciou):
        assert torch.isfinite(fn(edge, torch.cat([edge, far]))).all()


def test_matcher_cost_of_huge_boxes_is_refused_not_nan():
    logits = torch.zeros(1, 3, 4, dtype=torch.float64)
    boxes = torch.full((1, 3, 4), 1e155, dtype=torch.float64)
    with pytest.raises(OracleInputError, match=r"^image 0: pred_boxes: coordinates up to 1e\+155 overflow float64"):
        hungarian_match(logits, boxes, _targets(1))
    with pytest.raises(OracleInputError, match=r"^pred_logits: values up to 1e\+200 overflow float64 in the focal"):
        matching_cost_matrix(torch.full((3, 4), 1e200), torch.full((3, 4), 0.3), _targets(1)[0])


def test_shape_mismatches_raise_by_name():
    from oracle import transformer as T
    from oracle.anchors import images_to_levels
    from oracle.coders import bbox2dist, dist2bbox
    from oracle.params import encoder_layer_weights
    src = torch.zeros(2, 3, 4, dtype=torch.float64)
    w = encoder_layer_weights(4, 8, 0)
    with pytest.raises(OracleInputError, match=r"^pos: expected a shape that broadcasts to that of src \(2, 3, 4\), "
                                               r"got shape \(0, 3, 4\)"):
        T.encoder_layer(src, w, 2, pos=src[:0])
    with pytest.raises(OracleInputError, match=r"^query_pos: expected a shape that broadcasts to that of tgt"):
        T.decoder_layer(src, src, {}, 2, query_pos=src[:, :2])
    with pytest.raises(OracleInputError, match=r"^points: expected leading dimensions that broadcast with those of "
                                               r"distances \(3, 4\), got shape \(0, 2\)"):
        dist2bbox(torch.zeros(3, 4), torch.zeros(0, 2))
    with pytest.raises(OracleInputError, match=r"^boxes: expected leading dimensions that broadcast"):
        bbox2dist(torch.zeros(3, 2), torch.zeros(2, 4))
    with pytest.raises(OracleInputError, match=r"^per_image\[1\]: expected the shape of per_image\[0\] \(5, 4\)"):
        images_to_levels([torch.zeros(5, 4), torch.zeros(0, 4)], [3, 2])
    with pytest.raises(OracleInputError, match=r"^pos_weight: expected a shape that broadcasts to \(3, 2\), got "
                                               r"shape \(0, 2\)"):
        L.sigmoid_binary_cross_entropy(torch.zeros(3, 2), torch.zeros(3, 2), pos_weight=torch.ones(0, 2))
