"""The reference computes in float64 on CPU whatever it is given (DESIGN §3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oracle import boxes as box_ops
from oracle import losses as L


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.int64])
def test_inputs_are_upcast_and_outputs_are_float64(dtype):
    a = torch.tensor([[0, 0, 2, 2]], dtype=dtype)
    b = torch.tensor([[1, 1, 3, 4]], dtype=dtype)
    out = box_ops.giou(a, b)
    assert out.dtype == torch.float64
    # Integer-valued corners are exact in every dtype here, so the value is the float64 one.
    assert out.item() == box_ops.giou(a.double(), b.double()).item() == pytest.approx(1 / 9 - 3 / 12, rel=1e-15)


def test_numpy_and_lists_are_accepted():
    assert box_ops.iou(np.array([[0.0, 0.0, 1.0, 1.0]]), [[0.0, 0.0, 1.0, 1.0]]).item() == 1.0


def test_float32_inputs_are_converted_not_recomputed_in_float32():
    x32 = torch.tensor([0.3], dtype=torch.float32)
    got = L.sigmoid_focal_loss(x32, torch.tensor([1.0], dtype=torch.float32), reduction="sum")
    want = L.sigmoid_focal_loss(x32.double(), torch.tensor([1.0]), reduction="sum")
    assert got.dtype == torch.float64 and got.item() == want.item()


def test_gradients_flow_to_float64_inputs():
    x = torch.tensor([0.2, -1.0], requires_grad=True)
    L.sigmoid_focal_loss(x, torch.tensor([1.0, 0.0]), reduction="sum").backward()
    assert x.grad is not None and x.grad.dtype == torch.float64
