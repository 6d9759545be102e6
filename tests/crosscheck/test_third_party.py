"""Cross-checks of the reference against independent implementations: torchvision and transformers.

Each library is called through its public functions on the same float64 inputs, under the profile
that describes it. A missing library skips with the install command, except under
DETCONF_REQUIRE_THIRD_PARTY=1 (CI), where it fails.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conformance import strategies as S
from oracle import boxes as box_ops
from oracle import losses as L
from oracle.assign.hungarian import evaluate_matching, hungarian_match
from oracle.conventions import (IOU_EXACT, IOU_TORCHVISION_LOSS, IOU_TORCHVISION_PAIRWISE, get_profile)

from ..conftest import import_or_skip

TV_INSTALL = 'pip install -c constraints.txt -e ".[torchvision]"'
HF_INSTALL = 'pip install -c constraints.txt -e ".[transformers]"'


@pytest.fixture(scope="module")
def tv_ops():
    return import_or_skip("torchvision.ops", TV_INSTALL)


@pytest.fixture(scope="module")
def hf_loss():
    return import_or_skip("transformers.loss.loss_for_object_detection", HF_INSTALL)


def close(a, b, tol=1e-13):
    torch.testing.assert_close(a, b.to(torch.float64), rtol=tol, atol=tol)


# --------------------------------------------------------------------------- torchvision

@given(S.boxes_xyxy(st.integers(0, 5), min_size=1e-3), st.sampled_from(box_ops.FORMATS),
       st.sampled_from(box_ops.FORMATS))
def test_torchvision_box_convert_and_area(tv_ops, xyxy, src, dst):
    x = box_ops.convert(xyxy, "xyxy", src)
    close(box_ops.convert(x, src, dst), tv_ops.box_convert(x, src, dst))
    close(box_ops.area(xyxy), tv_ops.box_area(xyxy))


@given(S.boxes_positive(st.integers(0, 5)), S.boxes_positive(st.integers(0, 5)))
def test_torchvision_pairwise_overlaps(tv_ops, a, b):
    close(box_ops.iou(a, b, convention=IOU_TORCHVISION_PAIRWISE), tv_ops.box_iou(a, b))
    close(box_ops.giou(a, b, convention=IOU_TORCHVISION_PAIRWISE), tv_ops.generalized_box_iou(a, b))
    close(box_ops.diou(a, b, convention=IOU_TORCHVISION_PAIRWISE), tv_ops.distance_box_iou(a, b))
    close(box_ops.ciou(a, b, convention=IOU_TORCHVISION_PAIRWISE), tv_ops.complete_box_iou(a, b))


@given(S.boxes_positive(st.integers(1, 5)), S.boxes_positive(st.integers(1, 5)),
       st.sampled_from(["none", "sum", "mean"]))
def test_torchvision_iou_losses(tv_ops, a, b, reduction):
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    for mine, theirs in ((L.giou_loss, tv_ops.generalized_box_iou_loss), (L.diou_loss, tv_ops.distance_box_iou_loss),
                         (L.ciou_loss, tv_ops.complete_box_iou_loss)):
        close(mine(a, b, convention=IOU_TORCHVISION_LOSS, reduction=reduction), theirs(a, b, reduction=reduction))


def test_torchvision_losses_on_zero_area_pairs(tv_ops):
    # upstream_sources.md / api survey §1.2: a zero-area pair gives generalized_box_iou_loss 1.0 (its eps).
    z = torch.tensor([[0.2, 0.2, 0.2, 0.2]])
    close(L.giou_loss(z, z, convention=IOU_TORCHVISION_LOSS, reduction="none"),
          tv_ops.generalized_box_iou_loss(z, z))
    assert L.giou_loss(z, z, convention=IOU_TORCHVISION_LOSS, reduction="sum").item() == 1.0


@given(S.logits((4, 3), bound=30.0), S.probabilities((4, 3)), st.sampled_from([0.25, 0.5, None]),
       st.sampled_from([0.0, 1.5, 2.0]), st.sampled_from(["none", "sum", "mean"]))
def test_torchvision_sigmoid_focal_loss(tv_ops, x, t, alpha, gamma, reduction):
    theirs = tv_ops.sigmoid_focal_loss(x, t, alpha=-1 if alpha is None else alpha, gamma=gamma, reduction=reduction)
    close(L.sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction=reduction), theirs, tol=1e-12)


# --------------------------------------------------------------------------- transformers

@pytest.mark.parametrize("profile, config_name", [("hf_detr", "DetrConfig"),
                                                  ("hf_deformable_detr", "DeformableDetrConfig")])
def test_transformers_matcher_weights_are_the_library_defaults(hf_loss, profile, config_name):
    import transformers
    config = getattr(transformers, config_name)()
    m = get_profile(profile).matcher
    assert (m.weight_class, m.weight_bbox, m.weight_giou) == (config.class_cost, config.bbox_cost, config.giou_cost)

@given(S.normalized_cxcywh(4))
def test_transformers_center_to_corners(hf_loss, cxcywh):
    from transformers.image_transforms import center_to_corners_format, corners_to_center_format
    close(box_ops.convert(cxcywh, "cxcywh", "xyxy"), center_to_corners_format(cxcywh))
    xyxy = box_ops.convert(cxcywh, "cxcywh", "xyxy")
    close(box_ops.convert(xyxy, "xyxy", "cxcywh"), corners_to_center_format(xyxy))


@given(S.boxes_positive(st.integers(0, 5)), S.boxes_positive(st.integers(0, 5)))
def test_transformers_box_iou_and_giou(hf_loss, a, b):
    iou, _union = hf_loss.box_iou(a, b)
    close(box_ops.iou(a, b, convention=IOU_EXACT), iou)
    close(box_ops.giou(a, b, convention=IOU_EXACT), hf_loss.generalized_box_iou(a, b))


@given(S.logits((5, 6), bound=20.0), S.probabilities((5, 6)), st.floats(1.0, 10.0))
def test_transformers_focal_and_dice(hf_loss, x, t, num_boxes):
    # transformers: focal loss.mean(1).sum() / num_boxes over [N, P] = sum / (num_boxes * P).
    close(L.sigmoid_focal_loss(x, t, avg_factor=num_boxes * x.shape[1]),
          hf_loss.sigmoid_focal_loss(x, t, num_boxes), tol=1e-12)
    close(L.dice_loss(x, t, avg_factor=num_boxes), hf_loss.dice_loss(x, t, num_boxes), tol=1e-12)


def _assert_optimal_under_reference(mine, theirs):
    """Tie-aware (DESIGN §6): each library matching is valid and optimal under the reference's costs."""
    for m, (rows, cols) in zip(mine, theirs, strict=True):
        assert rows.dtype == torch.int64 and cols.dtype == torch.int64
        ev = evaluate_matching(m.cost_matrix, rows, cols)
        assert ev.valid, ev.problems
        assert ev.gap == pytest.approx(0.0, abs=1e-12 * max(1.0, abs(ev.optimal_cost)))


@pytest.mark.parametrize("profile, matcher_name", [("hf_detr", "HungarianMatcher"),
                                                   ("hf_deformable_detr", "DeformableDetrHungarianMatcher")])
@given(data=st.data())
def test_transformers_matchers_are_optimal_under_the_reference_cost(hf_loss, profile, matcher_name, data):
    from transformers.loss import loss_deformable_detr
    conv = get_profile(profile).matcher
    logits, pred, targets, _ = data.draw(S.matching_batch(softmax=conv.class_cost == "softmax"))
    matcher_class = getattr(hf_loss, matcher_name, None) or getattr(loss_deformable_detr, matcher_name)
    matcher = matcher_class(class_cost=conv.weight_class, bbox_cost=conv.weight_bbox, giou_cost=conv.weight_giou)
    theirs = matcher({"logits": logits, "pred_boxes": pred},
                     [{"class_labels": t["labels"], "boxes": t["boxes"]} for t in targets])
    _assert_optimal_under_reference(hungarian_match(logits, pred, targets, convention=conv), theirs)


# --------------------------------------------------------------------------- transformers criteria

def _hf(targets):
    return [{"class_labels": t["labels"], "boxes": t["boxes"]} for t in targets]


@pytest.mark.parametrize("family", ["detr", "yolos", "deformable"])
@given(data=st.data())
def test_transformers_detection_losses(hf_loss, family, data):
    """DETR / YOLOS (ForObjectDetectionLoss) and Deformable-DETR (DeformableDetrForObjectDetectionLoss),
    called through their config entry points, against the reference under the library's own matching."""
    import transformers
    from transformers.loss import loss_deformable_detr as hf_deform
    from oracle.criteria import SetCriterion, SetCriterionConfig
    c = 4
    layers = 1 if family == "yolos" else 3
    logits, boxes, targets = data.draw(S.criterion_batch(num_classes=c, softmax=family != "deformable", layers=layers))
    if family == "detr":
        config = transformers.DetrConfig(num_labels=c, auxiliary_loss=True, decoder_layers=layers)
        loss_fn, matcher, profile = hf_loss.ForObjectDetectionLoss, hf_loss.HungarianMatcher(1, 5, 2), "hf_detr"
    elif family == "yolos":  # YOLOS' aux loss is unusable upstream (no decoder_layers): tested without it
        config = transformers.YolosConfig(num_labels=c)
        loss_fn, matcher, profile = hf_loss.ForObjectDetectionLoss, hf_loss.HungarianMatcher(1, 5, 2), "hf_detr"
    else:
        config = transformers.DeformableDetrConfig(num_labels=c, auxiliary_loss=True, decoder_layers=layers)
        loss_fn = hf_deform.DeformableDetrForObjectDetectionLoss
        matcher, profile = hf_deform.DeformableDetrHungarianMatcher(1, 5, 2), "hf_deformable_detr"
    total, hf_dict, _ = loss_fn(logits[-1], _hf(targets), "cpu", boxes[-1], config,
                                outputs_class=logits, outputs_coord=boxes)
    indices = {"": matcher({"logits": logits[-1], "pred_boxes": boxes[-1]}, _hf(targets))}
    for i in range(layers - 1):
        indices[f"_{i}"] = matcher({"logits": logits[i], "pred_boxes": boxes[i]}, _hf(targets))
    crit = SetCriterion(SetCriterionConfig.from_profile(profile, num_classes=c))
    ours = crit({"pred_logits": logits[-1], "pred_boxes": boxes[-1],
                 "aux_outputs": [{"pred_logits": logits[i], "pred_boxes": boxes[i]} for i in range(layers - 1)]},
                targets, indices=indices)
    assert set(ours) == set(hf_dict)
    for key, value in hf_dict.items():
        # transformers computes cardinality_error in float32 (`card_pred.float()` in loss_cardinality), so
        # a mean such as 5/3 is off by up to half a float32 ULP: precision, not a formula difference.
        close(ours[key], value, tol=1.2e-7 if key.startswith("cardinality_error") else 1e-12)
    close(crit.total(ours), total, tol=1e-12)


@given(data=st.data())
def test_transformers_mask_losses(hf_loss, data):
    from oracle.criteria import SetCriterion, SetCriterionConfig
    c = 3
    logits, boxes, targets = data.draw(S.criterion_batch(num_classes=c, max_images=2, max_queries=3, max_targets=3))
    b, q = logits.shape[1:3]
    pred_masks = data.draw(S.logits((b, q, 3, 4), bound=6.0))
    for i, t in enumerate(targets):
        h, w = data.draw(st.integers(2, 6)), data.draw(st.integers(2, 6))
        t["masks"] = (data.draw(S.probabilities((len(t["labels"]), h, w))) > 0.5).to(torch.float64)
    crit = SetCriterion(SetCriterionConfig.from_profile("hf_detr", num_classes=c))
    matches = crit.match(*_criterion_layer(logits[-1], boxes[-1]), _criterion_targets(targets, c))
    n = max(float(sum(len(t["labels"]) for t in targets)), 1.0)
    image_loss = hf_loss.ImageLoss(hf_loss.HungarianMatcher(1, 5, 2), num_classes=c, eos_coef=0.1, losses=["masks"])
    hf = image_loss.loss_masks({"pred_masks": pred_masks}, [{**h, "masks": t["masks"]} for h, t in
                                                           zip(_hf(targets), targets)], matches, n)
    ours = crit({"pred_logits": logits[-1], "pred_boxes": boxes[-1], "pred_masks": pred_masks}, targets,
                indices={"": matches})
    close(ours["loss_mask"], hf["loss_mask"], tol=1e-12)
    close(ours["loss_dice"], hf["loss_dice"], tol=1e-12)


def _criterion_layer(logits, boxes):
    from oracle.criteria._inputs import layer_arg
    return (layer_arg("outputs", {"pred_logits": logits, "pred_boxes": boxes}),)


def _criterion_targets(targets, c):
    from oracle.criteria._inputs import targets_arg
    return targets_arg(targets, len(targets), c)
