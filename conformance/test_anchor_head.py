"""mmdet-style anchor heads: MaxIoU assignment and the AnchorHead loss (golden cases and generated inputs)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conformance import strategies as S
from conformance._cases import generated, golden_params
from oracle.conventions import MaxIoUConvention, presets_of


@pytest.mark.parametrize("case", golden_params("assign.max_iou", "criteria.anchor_head"))
def test_golden(case, detconf, request):
    detconf.check_case(case, request)


@pytest.mark.parametrize("convention", presets_of(MaxIoUConvention))
@generated
@given(priors=S.boxes_xyxy(st.integers(1, 8), min_size=1.0, max_coord=64.0),
       gt=S.boxes_xyxy(st.integers(1, 4), min_size=1.0, max_coord=64.0), data=st.data())
def test_max_iou_generated(detconf, request, convention, priors, gt, data):
    # Positive sizes: torchvision's box_iou has no eps, so a zero-area pair is 0/0 (the reference raises).
    # At least one GT: images without GT are golden edge cases (torchvision's Matcher raises on them).
    labels = torch.tensor(data.draw(st.lists(st.integers(0, 3), min_size=len(gt), max_size=len(gt))), dtype=torch.int64)
    detconf.check_generated("assign.max_iou", {"priors": priors, "gt_boxes": gt, "gt_labels": labels},
                            {"convention": convention}, "mmdet", request)
