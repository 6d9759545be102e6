"""mmdet-style anchor heads: MaxIoU assignment and the AnchorHead loss (golden cases and generated inputs)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import strategies as S
from conformance._cases import costly, generated, golden_params
from oracle.conventions import AnchorHeadConfig, MaxIoUConvention, named, presets_of


@pytest.mark.parametrize("case", golden_params("assign.max_iou", "criteria.anchor_head"))
def test_golden(case, detconf, request):
    detconf.check_case(case, request)


@pytest.mark.parametrize("convention", presets_of(MaxIoUConvention))
@generated
@given(data=st.data())
def test_max_iou_generated(detconf, request, convention, data):
    # Positive sizes: torchvision's box_iou has no eps, so a zero-area pair is 0/0 (the reference raises).
    # At least one GT: images without GT are golden edge cases (torchvision's Matcher raises on them).
    # About half the draws put a prior exactly at one of the convention's thresholds (S.max_iou_inputs).
    # About a third of the draws have ignore regions: under the preset (ignore_iof_thr -1, off) or, as mmdet's configs
    # that use them set it, 0.5 with IoF relative to the prior (mmdet's default) or to the ignore box.
    inputs = data.draw(S.max_iou_inputs(named(convention, MaxIoUConvention), max_coord=64.0), label="inputs")
    config = {"convention": convention}
    if "gt_boxes_ignore" in inputs:
        overrides = data.draw(st.sampled_from([{}, {"ignore_iof_thr": 0.5},
                                              {"ignore_iof_thr": 0.5, "ignore_wrt_candidates": False}]),
                           label="convention_overrides")
        if overrides:
            config["convention_overrides"] = overrides
    detconf.check_generated("assign.max_iou", inputs, config, "mmdet", request)


@pytest.mark.parametrize("head", presets_of(AnchorHeadConfig))
@costly(4)
@given(data=st.data())
def test_anchor_head_generated(detconf, request, head, data):
    # A whole batch's loss per draw (a thousand anchors): a quarter of the profile's examples. About half the draws
    # replace the head's loss fields (S.anchor_head_inputs): a constant where a config has a number shows.
    inputs, config = data.draw(S.anchor_head_inputs(head), label="batch")
    detconf.check_generated("criteria.anchor_head", inputs, config, "mmdet", request)
