"""Anchors (mmdet grid anchors, YOLOv8 anchor points) and box coders: golden cases and generated inputs."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conformance import strategies as S
from conformance._cases import generated, golden_params


@pytest.mark.parametrize("case", golden_params("anchors.", "coders."))
def test_golden(case, detconf, request):
    detconf.check_case(case, request)


#: Boxes to encode: corners on a grid of 1/2 px up to 64 px (exact in bfloat16, so no side rounds to 0), sides >= 1/2.
_ENCODE_BOXES = S.boxes_xyxy(st.just(5), min_size=1.0, max_coord=64.0).map(lambda b: torch.floor(b * 2) / 2)


@generated
@given(anchors=_ENCODE_BOXES, gt=_ENCODE_BOXES, coder=S.coder_overrides())
def test_delta_xywh_encode_generated(detconf, request, anchors, gt, coder):
    # The coder's means and stds are drawn (S.CODER_FIELD_VALUES): a constant where the config has them fails.
    detconf.check_generated("coders.delta_xywh_encode", {"anchors": anchors, "gt": gt}, coder, "mmdet", request)


@generated
@given(anchors=S.boxes_xyxy(st.just(5), min_size=1.0 / 16, max_coord=64.0),
       deltas=S.logits((5, 4), bound=3.0), clip=st.booleans(), coder=S.decode_overrides(),
       wh_clamp=st.sampled_from(["both", "upper"]), data=st.data())
def test_delta_xywh_decode_generated(detconf, request, anchors, deltas, clip, coder, wh_clamp, data):
    # wh_clamp "upper" (no lower clamp of the size deltas) is torchvision's BoxCoder, "both" mmdet's coder. About
    # half the draws put size deltas past the clamp, on either side.
    config = {**coder, "wh_clamp": wh_clamp, "max_shape": [48, 64] if clip else None}
    deltas = data.draw(S.past_the_size_clamp(deltas, config), label="past the clamp")
    if clip:
        # About half the clipped draws put decoded corners exactly on the border, where the clip is a kink.
        anchors, deltas = data.draw(S.on_clip_border(anchors, deltas, (48, 64), coder.get("means")), label="border")
    detconf.check_generated("coders.delta_xywh_decode", {"anchors": anchors, "deltas": deltas}, config, "mmdet",
                            request)


@generated
@given(distances=S.probabilities((6, 4)), points=S.probabilities((6, 2)), fmt=st.sampled_from(["xyxy", "cxcywh"]))
def test_dist2bbox_generated(detconf, request, distances, points, fmt):
    detconf.check_generated("coders.dist2bbox", {"distances": distances * 16, "points": points * 64},
                            {"fmt": fmt}, "ultralytics", request)


@generated
@given(points=S.boxes_xyxy(st.just(6), max_coord=64.0), boxes=S.boxes_xyxy(st.just(6), max_coord=64.0),
       reg_max=st.sampled_from([16, 8]))
def test_bbox2dist_generated(detconf, request, points, boxes, reg_max):
    # Anchor points (a box's corner, on the 1/16 px grid) inside and outside their target boxes of up to 96 px, in
    # grid units: distances below 0 and beyond reg_max - 1 - 0.01 reach both clamps.
    detconf.check_generated("coders.bbox2dist", {"points": points[:, :2], "boxes": boxes}, {"reg_max": reg_max},
                            "ultralytics", request)


@generated
@given(logits=S.logits((3, 4, 16), bound=8.0))
def test_dfl_expectation_generated(detconf, request, logits):
    detconf.check_generated("coders.dfl_expectation", {"logits": logits}, {}, "ultralytics", request)


@generated
@given(config=S.anchor_grid_config())
def test_anchor_grid_generated(detconf, request, config):
    detconf.check_generated("anchors.grid", {}, config, "mmdet", request)


@generated
@given(config=S.anchor_points_config())
def test_anchor_points_generated(detconf, request, config):
    detconf.check_generated("anchors.points", {}, config, "ultralytics", request)
