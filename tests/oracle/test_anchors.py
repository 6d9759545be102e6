"""oracle.anchors: mmdet grid anchors, valid/inside flags, images_to_levels, YOLOv8 anchor points."""

from __future__ import annotations

import math

import pytest
import torch

from oracle.anchors import (ANCHOR_HEAD_ANCHOR_GENERATOR, RETINANET_ANCHOR_GENERATOR, AnchorGenerator,
                            anchor_inside_flags, anchor_points, images_to_levels)
from oracle.errors import OracleInputError

from ..conftest import import_or_skip

MMDET_INSTALL = "see docs/install.md (mmcv 2.1.0 built with ops, then mmdet 3.3.0)"


def test_base_anchors_by_hand():
    # stride 16, base size 16, scale 8: w = h = 128 at ratio 1; ratio 4 = h/w: h_ratio 2, w_ratio 1/2 -> 64 x 256.
    gen = AnchorGenerator(strides=(16,), ratios=(1.0, 4.0), scales=(8,))
    torch.testing.assert_close(gen.base_anchors()[0], torch.tensor(
        [[-64.0, -64.0, 64.0, 64.0], [-32.0, -128.0, 32.0, 128.0]]), rtol=0, atol=0)
    # centre offset 0.5 moves the centre to (8, 8); an explicit base size replaces the stride.
    gen = AnchorGenerator(strides=(16,), ratios=(1.0,), scales=(1,), base_sizes=(4,), center_offset=0.5)
    torch.testing.assert_close(gen.base_anchors()[0], torch.tensor([[0.0, 0.0, 4.0, 4.0]]), rtol=0, atol=0)
    gen = AnchorGenerator(strides=(16,), ratios=(1.0,), scales=(1,), centers=((3.0, 5.0),))
    torch.testing.assert_close(gen.base_anchors()[0], torch.tensor([[-5.0, -3.0, 11.0, 13.0]]), rtol=0, atol=0)


def test_octave_scales_retinanet():
    # 4 * 2**(i/3): 4, 5.0397, 6.3496; at stride 8, ratio 1: half-widths 16, 20.1587, 25.3984 (survey §5.5).
    base = RETINANET_ANCHOR_GENERATOR.base_anchors()[0]
    half = [16.0, 4 * 2 ** (1 / 3) * 4, 4 * 2 ** (2 / 3) * 4]
    torch.testing.assert_close(base[3:6, 2], torch.tensor(half), rtol=0, atol=1e-12)
    assert RETINANET_ANCHOR_GENERATOR.num_base_anchors == [9] * 5
    assert ANCHOR_HEAD_ANCHOR_GENERATOR.num_base_anchors == [9] * 5


@pytest.mark.parametrize("scale_major", [True, False])
def test_grid_anchors_equal_a_direct_enumeration(scale_major):
    gen = AnchorGenerator(strides=((8, 4), 16), ratios=(0.5, 1.0, 2.0), scales=(2, 3),
                          scale_major=scale_major, center_offset=0.25)
    sizes = [(3, 5), (2, 1)]
    got = gen.grid_anchors(sizes)
    for level, ((sw, sh), (h, w)) in enumerate(zip([(8, 4), (16, 16)], sizes)):
        base = min(sw, sh)
        expected = []
        for y in range(h):
            for x in range(w):
                pairs = ([(r, s) for r in (0.5, 1.0, 2.0) for s in (2, 3)] if scale_major
                         else [(r, s) for s in (2, 3) for r in (0.5, 1.0, 2.0)])
                for r, s in pairs:
                    bw, bh = base * s / math.sqrt(r), base * s * math.sqrt(r)
                    cx, cy = 0.25 * base + x * sw, 0.25 * base + y * sh
                    expected.append([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
        torch.testing.assert_close(got[level], torch.tensor(expected), rtol=0, atol=1e-12)


def test_valid_flags_by_ceil_of_padded_size():
    gen = AnchorGenerator(strides=(8, 16), ratios=(1.0,), scales=(1, 2))
    # pad 20 x 33 px: level 0 (stride 8) valid rows ceil(20/8) = 3, cols ceil(33/8) = 5 (of a 4 x 6 map);
    # level 1 (stride 16): rows ceil(20/16) = 2, cols min(ceil(33/16), 2) = 2 (all of a 2 x 2 map).
    flags = gen.valid_flags([(4, 6), (2, 2)], pad_shape=(20, 33))
    for f, (h, w), (vh, vw) in zip(flags, [(4, 6), (2, 2)], [(3, 5), (2, 2)]):
        expected = [y < vh and x < vw for y in range(h) for x in range(w) for _ in range(2)]
        assert f.tolist() == expected


def test_anchor_inside_flags_far_side_is_strict():
    anchors = torch.tensor([[0.0, 0.0, 10.0, 5.0], [0.0, 0.0, 5.0, 8.0], [0.0, 0.0, 9.0, 7.0],
                            [-2.0, 0.0, 5.0, 5.0], [0.0, -1.0, 5.0, 5.0], [-1.0, 0.0, 5.0, 5.0]])
    valid = torch.tensor([True, True, True, True, True, False])
    # image (H, W) = (8, 10): x2 < 10 and y2 < 8 are required, so anchors 0 and 1 (touching the far
    # sides) are outside at border 0 and inside at border 1; x1 >= -b and y1 >= -b are not strict.
    assert anchor_inside_flags(anchors, valid, (8, 10), 0).tolist() == [False, False, True, False, False, False]
    assert anchor_inside_flags(anchors, valid, (8, 10), 1).tolist() == [True, True, True, False, True, False]
    assert anchor_inside_flags(anchors, valid, (8, 10), 2).tolist() == [True, True, True, True, True, False]
    assert anchor_inside_flags(anchors, valid, (8, 10), -1).tolist() == valid.tolist()


def test_images_to_levels():
    a = torch.arange(10.0).reshape(5, 2)
    levels = images_to_levels([a, a + 100], [2, 3])
    assert [tuple(t.shape) for t in levels] == [(2, 2, 2), (2, 3, 2)]
    torch.testing.assert_close(levels[1][1], a[2:] + 100, rtol=0, atol=0)
    with pytest.raises(OracleInputError, match="per_image"):
        images_to_levels([a], [2, 2])


def test_anchor_points_by_hand_and_against_ultralytics():
    points, stride = anchor_points([(2, 3), (1, 2)], [8, 16])
    assert points.tolist() == [[0.5, 0.5], [1.5, 0.5], [2.5, 0.5], [0.5, 1.5], [1.5, 1.5], [2.5, 1.5],
                               [0.5, 0.5], [1.5, 0.5]]
    assert stride.squeeze(1).tolist() == [8.0] * 6 + [16.0] * 2
    tal = import_or_skip("ultralytics.utils.tal", 'pip install -c constraints.txt -e ".[ultralytics]"')
    feats = [torch.zeros(1, 1, h, w, dtype=torch.float64) for h, w in [(4, 5), (2, 3), (1, 2)]]
    up, us = tal.make_anchors(feats, torch.tensor([8.0, 16.0, 32.0]), 0.5)
    points, stride = anchor_points([(4, 5), (2, 3), (1, 2)], [8, 16, 32])
    torch.testing.assert_close(points, up, rtol=0, atol=0)
    torch.testing.assert_close(stride, us, rtol=0, atol=0)


def test_against_mmdet_anchor_generator():
    mm = import_or_skip("mmdet.models.task_modules.prior_generators", MMDET_INSTALL)
    cfg = dict(strides=[8, 16, 32], ratios=[0.5, 1.0, 2.0], octave_base_scale=4, scales_per_octave=3)
    theirs = mm.AnchorGenerator(**cfg)
    ours = AnchorGenerator(strides=(8, 16, 32), ratios=(0.5, 1.0, 2.0), octave_base_scale=4, scales_per_octave=3)
    sizes = [(5, 7), (3, 4), (2, 2)]
    # mmdet builds its scales and base anchors in float32: agreement to float32 rounding of ~100 px values.
    for a, b in zip(ours.grid_anchors(sizes), theirs.grid_priors(sizes, dtype=torch.float64, device="cpu")):
        torch.testing.assert_close(a, b.double(), rtol=0, atol=1e-4)
    for a, b in zip(ours.valid_flags(sizes, (30, 50)), theirs.valid_flags(sizes, (30, 50), device="cpu")):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kwargs, match", [
    (dict(strides=(), ratios=(1.0,), scales=(1,)), "strides"),
    (dict(strides=(8,), ratios=(0.0,), scales=(1,)), r"ratios\[0\]"),
    (dict(strides=(8,), ratios=(1.0,)), "scales"),
    (dict(strides=(8,), ratios=(1.0,), scales=(1,), octave_base_scale=4, scales_per_octave=3), "scales"),
    (dict(strides=(8,), ratios=(1.0,), octave_base_scale=4, scales_per_octave=0), "scales_per_octave"),
    (dict(strides=(8,), ratios=(1.0,), scales=(1,), base_sizes=(8, 16)), "base_sizes"),
    (dict(strides=(8,), ratios=(1.0,), scales=(1,), center_offset=1.5), "center_offset"),
    (dict(strides=(8,), ratios=(1.0,), scales=(1,), center_offset=0.5, centers=((0, 0),)), "centers"),
    (dict(strides=((8, 8, 8),), ratios=(1.0,), scales=(1,)), "strides"),
])
def test_bad_generator_configuration(kwargs, match):
    with pytest.raises(OracleInputError, match=match):
        AnchorGenerator(**kwargs)


def test_bad_sizes_and_flags():
    gen = AnchorGenerator(strides=(8, 16), ratios=(1.0,), scales=(1,))
    with pytest.raises(OracleInputError, match="featmap_sizes"):
        gen.grid_anchors([(2, 2)])
    with pytest.raises(OracleInputError, match="featmap_sizes"):
        gen.grid_anchors([(2, 2), (1.5, 1)])
    with pytest.raises(OracleInputError, match="pad_shape"):
        gen.valid_flags([(2, 2), (1, 1)], (10,))
    with pytest.raises(OracleInputError, match="valid_flags"):
        anchor_inside_flags(torch.zeros(2, 4), torch.ones(3, dtype=torch.bool), (4, 4))
    with pytest.raises(OracleInputError, match="anchors"):
        anchor_inside_flags(torch.tensor([[0.0, 0.0, float("nan"), 1.0]]), torch.ones(1, dtype=torch.bool), (4, 4))
    with pytest.raises(OracleInputError, match="featmap_sizes: expected 2 levels"):
        anchor_points([(2, 2)], [8, 16])
    with pytest.raises(OracleInputError, match=r"strides\[0\]"):
        anchor_points([(2, 2)], [0])
