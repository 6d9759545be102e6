"""oracle.box_decode: YOLOv8's inference box decode by hand, by brute force, and against ultralytics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from oracle.box_decode import yolov8_box_decode
from oracle.errors import OracleInputError


def test_hand_computed_one_cell():
    # reg_max 2: bins 0 and 1; logits (0, ln 3) give p = (1/4, 3/4), expectation 0.75 per side.
    logits = torch.zeros(1, 8, 1, 1, dtype=torch.float64)
    logits[0, 1::2] = math.log(3.0)
    boxes = yolov8_box_decode([logits], [8], fmt="xyxy")
    # the cell centre is (0.5, 0.5) grid units; x1 = 0.5 - 0.75, x2 = 0.5 + 0.75, times stride 8.
    torch.testing.assert_close(boxes, torch.tensor([[[-2.0, -2.0, 10.0, 10.0]]], dtype=torch.float64), rtol=0,
                               atol=1e-14)
    torch.testing.assert_close(yolov8_box_decode([logits], [8]),
                               torch.tensor([[[4.0, 4.0, 12.0, 12.0]]], dtype=torch.float64), rtol=0, atol=1e-14)


def test_anchor_order_and_levels_by_brute_force():
    rng = np.random.default_rng(0)
    sizes, strides, bins = [(2, 3), (1, 2)], [8, 16], 4
    maps = [torch.from_numpy(rng.standard_normal((2, 4 * bins, h, w))) for h, w in sizes]
    boxes = yolov8_box_decode(maps, strides, fmt="xyxy", offset=0.25)
    a = 0
    for (h, w), s, m in zip(sizes, strides, maps):
        for y in range(h):
            for x in range(w):
                for b in range(2):
                    dist = []
                    for side in range(4):
                        z = m[b, side * bins:(side + 1) * bins, y, x].tolist()
                        e = [math.exp(v) for v in z]
                        dist.append(sum(k * v for k, v in enumerate(e)) / sum(e))
                    left, top, right, bottom = dist
                    expected = [(x + 0.25 - left) * s, (y + 0.25 - top) * s, (x + 0.25 + right) * s,
                                (y + 0.25 + bottom) * s]
                    assert boxes[b, a].tolist() == pytest.approx(expected, rel=1e-13, abs=1e-12)
                a += 1
    assert boxes.shape == (2, a, 4)


def test_matches_ultralytics_detect_decode():
    head_module = pytest.importorskip("ultralytics.nn.modules.head")
    rng = np.random.default_rng(1)
    maps = [torch.from_numpy(rng.standard_normal((2, 64, h, w)) * 3) for h, w in [(5, 7), (3, 4), (2, 2)]]
    head = head_module.Detect(nc=1, reg_max=16, ch=(1, 1, 1)).double().eval()
    head.stride = torch.tensor([8.0, 16.0, 32.0], dtype=torch.float64)
    preds = {"boxes": torch.cat([m.flatten(2) for m in maps], 2), "feats": maps}
    theirs = head._get_decode_boxes(preds).transpose(1, 2)
    torch.testing.assert_close(yolov8_box_decode(maps, [8, 16, 32]), theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("maps, strides, message", [
    ([], [8], "box_maps"),
    ([torch.zeros(1, 6, 2, 2)], [8], "4 \\* reg_max"),
    ([torch.zeros(1, 8, 2, 2), torch.zeros(2, 8, 1, 1)], [8, 16], "level 0"),
    ([torch.zeros(1, 8, 2, 2)], [8, 16], "one per level"),
    ([torch.zeros(1, 8, 2, 2)], [0], "strides\\[0\\]"),
    ([torch.full((1, 8, 2, 2), float("nan"))], [8], "box_maps\\[0\\]"),
])
def test_bad_input_raises(maps, strides, message):
    with pytest.raises(OracleInputError, match=message):
        yolov8_box_decode(maps, strides)
