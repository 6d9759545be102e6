"""benchmarks/bits.py: the bit-identity snapshot that speedups of the reference are checked with."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from benchmarks.bits import differences, same_bits, snapshot


def test_same_bits_tells_apart_one_ulp_dtype_and_shape_but_not_nan_positions_that_agree():
    x = torch.tensor([1.0, math.nan, -2.5], dtype=torch.float64)
    assert same_bits(x, x.clone())
    assert not same_bits(x, torch.nextafter(x, torch.full_like(x, math.inf)))
    assert not same_bits(x, x.float())
    assert not same_bits(x, x[None])
    assert not same_bits(x, torch.tensor([1.0, 0.0, -2.5], dtype=torch.float64))
    assert same_bits(torch.tensor([1, 2]), torch.tensor([1, 2])) and not same_bits(torch.tensor([1]), torch.tensor([2]))


def test_a_snapshot_repeats_and_one_ulp_in_a_primitive_shows(monkeypatch):
    saved = snapshot()
    assert len(saved) > 500 and differences(saved, snapshot()) == []
    logsigmoid = F.logsigmoid
    monkeypatch.setattr(F, "logsigmoid", lambda x: torch.nextafter(logsigmoid(x), torch.zeros_like(x)))
    moved = differences(saved, snapshot())
    assert any(k.startswith("losses.sigmoid_focal") for k in moved), moved[:5]
    assert differences({}, {"a": torch.zeros(1)}) == ["a"]  # a tensor the saved snapshot lacks
