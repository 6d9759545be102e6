"""Padding masks, their nearest resizing, the YOLOv8 mask helpers, and the sine positional encoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
