"""Loss primitives: golden cases and generated inputs (values and gradients)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import strategies as S
from conformance._cases import generated, golden_params
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


@generated
@given(logits=S.logits((5, 4), bound=12.0), labels=st.lists(st.integers(0, 3), min_size=5, max_size=5))
def test_softmax_cross_entropy_generated(detconf, request, logits, labels):
    import torch
    detconf.check_generated("losses.softmax_cross_entropy", {"logits": logits, "labels": torch.tensor(labels)},
                            {"reduction": "mean"}, "detr", request)


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
