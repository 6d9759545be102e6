"""Loss primitives: golden cases and generated inputs (values and gradients)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import strategies as S
from conformance._cases import costly, generated, golden_params
from oracle.conventions import profiles_with


@pytest.mark.parametrize("case", golden_params("losses."))
def test_golden(case, detconf, request):
    detconf.check_case(case, request)


@generated
@given(logits=S.logits((4, 3), bound=12.0), targets=S.probabilities((4, 3)),
       alpha=st.sampled_from([0.25, 0.5, None]), gamma=st.sampled_from([0.0, 1.5, 2.0]),
       reduction=st.sampled_from(["none", "sum", "mean"]))
def test_sigmoid_focal_generated(detconf, request, logits, targets, alpha, gamma, reduction):
    detconf.check_generated("losses.sigmoid_focal_loss", {"logits": logits, "targets": targets},
                            {"alpha": alpha, "gamma": gamma, "reduction": reduction}, "dino", request)


#: Per-class weights ``[C]`` of a cross-entropy: DETR's ``empty_weight`` (1 per class, ``eos_coef`` 0.1 for the
#: no-object class, last) or per-class values on a dyadic grid; and per-logit ``pos_weight``s of a binary one.
def class_weights(c: int) -> st.SearchStrategy[list[float]]:
    return st.one_of(st.just([1.0] * (c - 1) + [0.1]),
                     st.lists(st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0]), min_size=c, max_size=c))


@generated
@given(logits=S.logits((5, 4), bound=12.0), labels=st.lists(st.integers(0, 3), min_size=5, max_size=5),
       class_weight=st.one_of(st.none(), class_weights(4)), reduction=st.sampled_from(["none", "sum", "mean"]))
def test_softmax_cross_entropy_generated(detconf, request, logits, labels, class_weight, reduction):
    import torch
    inputs = {"logits": logits, "labels": torch.tensor(labels)}
    if class_weight is not None:
        inputs["class_weight"] = torch.tensor(class_weight, dtype=torch.float64)
    detconf.check_generated("losses.softmax_cross_entropy", inputs, {"reduction": reduction}, "detr", request)


#: (loss, profile, convention): GIoU under every profile's iou_loss convention, and the DIoU/CIoU losses of the
#: libraries that have them (mmdet's CIoULoss has a convention of its own).
BOX_LOSSES = ([("giou_loss", p, "iou_loss") for p in profiles_with("iou_loss")]
              + [("diou_loss", "torchvision", "iou_loss"), ("ciou_loss", "torchvision", "iou_loss"),
                 ("ciou_loss", "ultralytics", "iou_loss"), ("ciou_loss", "mmdet", "IOU_MMDET_CIOU_LOSS")])


@pytest.mark.parametrize("name, profile, convention", BOX_LOSSES)
@generated
@given(data=st.data())
def test_box_losses_generated(detconf, request, name, profile, convention, data):
    pred, target = data.draw(S.box_pair(st.just(4), st.just(4), small=S.small_boxes_fit(detconf.dtype)))
    detconf.check_generated(f"losses.{name}", {"pred": pred, "target": target},
                            {"convention": convention, "reduction": "sum"}, profile, request)


#: Per-box weights ``[n]``: on a dyadic grid, with zeros; in about half the draws all zero (mmdet's IoU losses
#: return early there, models/losses/iou_loss.py ``GIoULoss.forward``: ``(pred * weight).sum()``, which broadcasts
#: a ``[n, 4]`` pred with a ``[n]`` weight only for n = 1 or 4: n is 3 or 5).
def box_weights(n: int) -> st.SearchStrategy[list[float]]:
    return st.one_of(st.just([0.0] * n), st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0]), min_size=n, max_size=n))


@pytest.mark.parametrize("name, profile, convention", BOX_LOSSES)
@costly(4)
@given(data=st.data(), reduction=st.sampled_from(["none", "sum", "mean"]))
def test_box_losses_weighted_generated(detconf, request, name, profile, convention, data, reduction):
    # weight [n] (one per box, as the contract's [N] element-wise loss): reduction 'none' keeps shape [n], zeros
    # included, whatever the weights. mmdet's IoU losses also take a weight per coordinate [n, 4] (its box heads'
    # bbox_weights), averaged over the four: drawn on about half of mmdet's draws.
    import torch
    n = data.draw(st.sampled_from([3, 5]), label="boxes")
    per_coordinate = profile == "mmdet" and data.draw(st.booleans(), label="per_coordinate")
    weight = data.draw(box_weights(4 * n) if per_coordinate else box_weights(n), label="weight")
    if per_coordinate:
        weight = [weight[i:i + 4] for i in range(0, 4 * n, 4)]
    pred, target = data.draw(S.box_pair(st.just(n), st.just(n), small=S.small_boxes_fit(detconf.dtype)))
    detconf.check_generated(f"losses.{name}", {"pred": pred, "target": target,
                                                "weight": torch.tensor(weight, dtype=torch.float64)},
                            {"convention": convention, "reduction": reduction}, profile, request)


#: beta of mmdet's configs (RetinaNet-style 1/9 and 1.0) and between; 0 is plain L1 (PyTorch; mmdet asserts beta > 0).
SMOOTH_L1_BETAS = [1.0 / 9, 0.5, 1.0, 2.0]


@generated
@given(pred=S.logits((6, 4), bound=3.0), target=S.logits((6, 4), bound=3.0), beta=st.sampled_from(SMOOTH_L1_BETAS),
       reduction=st.sampled_from(["none", "sum", "mean"]))
def test_smooth_l1_generated(detconf, request, pred, target, beta, reduction):
    # Differences on the 1/64 grid span both sides of beta (and hit 0.5, 1 and 2 exactly).
    detconf.check_generated("losses.smooth_l1_loss", {"pred": pred, "target": target},
                            {"beta": beta, "reduction": reduction}, "mmdet", request)


@generated
@given(pred=S.logits((5, 4), bound=2.0), target=S.logits((5, 4), bound=2.0),
       reduction=st.sampled_from(["none", "sum", "mean"]), avg_factor=st.sampled_from([None, 3.0]))
def test_l1_generated(detconf, request, pred, target, reduction, avg_factor):
    config = {"reduction": reduction} if avg_factor is None or reduction != "mean" else \
        {"reduction": reduction, "avg_factor": avg_factor}
    detconf.check_generated("losses.l1_loss", {"pred": pred, "target": target}, config, "detr", request)


@generated
@given(logits=S.logits((4, 6), bound=8.0), targets=S.probabilities((4, 6)), binary=st.booleans(),
       reduction=st.sampled_from(["none", "sum", "mean"]), pos_weight=st.one_of(st.none(), class_weights(6)))
def test_sigmoid_binary_cross_entropy_generated(detconf, request, logits, targets, binary, reduction, pos_weight):
    import torch
    targets = (targets > 0.5).to(targets.dtype) if binary else targets
    inputs = {"logits": logits, "targets": targets}
    if pos_weight is not None:
        inputs["pos_weight"] = torch.tensor(pos_weight, dtype=torch.float64)
    detconf.check_generated("losses.sigmoid_binary_cross_entropy", inputs, {"reduction": reduction}, "mmdet",
                            request)


@generated
@given(logits=S.logits((3, 8), bound=8.0), targets=S.probabilities((3, 8)), binary=st.booleans(),
       reduction=st.sampled_from(["none", "sum", "mean"]))
def test_dice_generated(detconf, request, logits, targets, binary, reduction):
    # DETR divides the summed dice loss by num_boxes: reduction "mean" with avg_factor.
    targets = (targets > 0.5).to(targets.dtype) if binary else targets
    config = {"reduction": reduction, **({"avg_factor": 2.0} if reduction == "mean" else {})}
    detconf.check_generated("losses.dice_loss", {"logits": logits, "targets": targets}, config, "detr", request)


#: ultralytics' reg_max (16 bins, 0 .. 15): targets are clamped to 15 - 0.01.
REG_MAX = 16


@generated
@given(logits=S.logits((3, 4, REG_MAX), bound=8.0), targets=S.dfl_targets((3, 4), REG_MAX),
       reduction=st.sampled_from(["none", "sum", "mean"]))
def test_distribution_focal_generated(detconf, request, logits, targets, reduction):
    detconf.check_generated("losses.distribution_focal_loss", {"logits": logits, "targets": targets},
                            {"reduction": reduction}, "ultralytics", request)
