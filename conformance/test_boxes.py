"""Box formats, areas and overlaps (IoU, IoF, GIoU, DIoU, CIoU): golden cases and generated inputs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import strategies as S
from conformance._cases import generated, golden_params
from oracle import boxes as box_ops
from oracle.conventions import profiles_with

#: Every profile with a box_iou convention (oracle.conventions.profiles_with).
PROFILES = profiles_with("box_iou")


@pytest.mark.parametrize("case", golden_params("boxes."))
def test_golden(case, detconf, request):
    detconf.check_case(case, request)


@pytest.mark.parametrize("op", ["iou", "giou", "diou", "ciou"])
@pytest.mark.parametrize("profile", PROFILES)
@generated
@given(data=st.data())
def test_overlap_generated(detconf, request, profile, op, data):
    boxes1, boxes2 = data.draw(S.box_pair(st.integers(1, 5), st.integers(1, 5), small=S.small_boxes_fit(detconf.dtype)))
    detconf.check_generated("boxes.overlap", {"boxes1": boxes1, "boxes2": boxes2},
                            {"op": op, "aligned": False, "fmt": "xyxy", "convention": "box_iou"}, profile, request)


#: The box formats of boxes.convert and boxes.area.
FORMATS = ("xyxy", "cxcywh", "xywh")


@generated
@given(boxes=S.boxes_xyxy(st.integers(0, 6), max_coord=64.0),
       formats=st.sampled_from([(a, b) for a in FORMATS for b in FORMATS if a != b]))
def test_convert_generated(detconf, request, boxes, formats):
    # Corners on the dyadic grid of S.boxes_xyxy, zero sizes and empty batches included, given in the source format.
    src, dst = formats
    detconf.check_generated("boxes.convert", {"boxes": box_ops.convert(boxes, "xyxy", src)}, {"src": src, "dst": dst},
                            "detr", request)


@generated
@given(boxes=S.boxes_xyxy(st.integers(0, 6), max_coord=64.0), fmt=st.sampled_from(FORMATS))
def test_area_generated(detconf, request, boxes, fmt):
    # Pixel-scale boxes (up to 96 px), zero-area ones included, in each format.
    detconf.check_generated("boxes.area", {"boxes": box_ops.convert(boxes, "xyxy", fmt)}, {"fmt": fmt}, "detr",
                            request)
