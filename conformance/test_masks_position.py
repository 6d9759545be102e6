"""Padding masks, their nearest resizing, the YOLOv8 mask helpers, and the sine positional encoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conformance._cases import generated, golden_params
from oracle.conventions import profiles_with

#: Every profile with a position convention (oracle.conventions.profiles_with).
PROFILES = profiles_with("position")


@pytest.mark.parametrize("case", golden_params("masks.", "position."))
def test_golden(case, detconf, request):
    detconf.check_case(case, request)


@st.composite
def padded_batch(draw, max_side: int = 12):
    """A padding mask [B, H, W] from 1-3 random image sizes."""
    from oracle.masks import padding_mask
    sizes = draw(st.lists(st.tuples(st.integers(1, max_side), st.integers(1, max_side)), min_size=1, max_size=3))
    padded = (max(h for h, _ in sizes), max(w for _, w in sizes))
    return padding_mask(sizes, padded)


@generated
@given(mask=padded_batch(40), size=st.tuples(st.integers(1, 30), st.integers(1, 30)))
def test_resize_generated(detconf, request, mask, size):
    detconf.check_generated("masks.resize", {"mask": mask}, {"size": list(size)}, "detr", request)


@pytest.mark.parametrize("profile", PROFILES)
@generated
@given(mask=padded_batch())
def test_position_generated(detconf, request, profile, mask):
    detconf.check_generated("position.sine", {"mask": mask}, {"num_feats": 8}, profile, request)


@generated
@given(sizes=st.lists(st.tuples(st.integers(1, 12), st.integers(1, 12)), min_size=1, max_size=3),
       extra=st.tuples(st.integers(0, 3), st.integers(0, 3)))
def test_padding_generated(detconf, request, sizes, extra):
    # 1-3 images padded to their largest size plus 0-3 px (a batch whose images all have the padded size included).
    padded = [max(h for h, _ in sizes) + extra[0], max(w for _, w in sizes) + extra[1]]
    detconf.check_generated("masks.padding", {"image_sizes": torch.tensor(sizes)}, {"padded_shape": padded}, "detr",
                            request)


@st.composite
def binary_masks(draw, max_side: int = 16) -> torch.Tensor:
    """``[N, H, W]`` random 0/1 masks (float64), N in 1-3, sides in 1-``max_side``."""
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, max_side)), draw(st.integers(1, max_side)))
    return torch.from_numpy(draw(hnp.arrays(np.bool_, shape)).astype(np.float64))


@st.composite
def crop_inputs(draw) -> dict:
    """masks ``[N, H, W]`` and one xyxy box per mask in its pixel frame, corners on a grid of 1/2 px within
    ``[0, W] x [0, H]`` (integer corners, where a pixel index is at an edge, and zero sizes included)."""
    masks = draw(binary_masks())
    h, w = masks.shape[1:]
    boxes = []
    for _ in range(len(masks)):
        x = sorted(draw(st.integers(0, 2 * w)) / 2 for _ in range(2))
        y = sorted(draw(st.integers(0, 2 * h)) / 2 for _ in range(2))
        boxes.append([x[0], y[0], x[1], y[1]])
    return {"masks": masks, "boxes": torch.tensor(boxes, dtype=torch.float64)}


@generated
@given(inputs=crop_inputs())
def test_crop_generated(detconf, request, inputs):
    detconf.check_generated("masks.crop", inputs, {}, "ultralytics", request)


@generated
@given(masks=binary_masks(), data=st.data())
def test_downsample_generated(detconf, request, masks, data):
    # Any target size up to the masks' own, odd factors and non-integer scales included.
    size = [data.draw(st.integers(1, masks.shape[1]), label="h"), data.draw(st.integers(1, masks.shape[2]), label="w")]
    detconf.check_generated("masks.downsample", {"masks": masks}, {"size": size}, "ultralytics", request)
