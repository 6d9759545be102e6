"""benchmarks/profile.py: the per-operator profile that docs/benchmarks.md quotes."""

from __future__ import annotations

import pytest
import torch

from benchmarks.profile import operator_times


def test_operator_times_of_the_reference_name_the_workloads_operators():
    times = operator_times("sine-position-25x38", "oracle", torch.float64, calls=1)
    assert times["aten::sin"] > 0 and times["aten::cos"] > 0 and "aten::mm" not in times


def test_an_unknown_workload_is_refused_with_the_known_names():
    with pytest.raises(SystemExit, match="sine-position-25x38"):
        operator_times("no-such-workload", "oracle", torch.float64)
