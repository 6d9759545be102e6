"""Each workload timed for the reference (float64) and every installed implementation (float32, and float64
for the same-dtype comparison), on the same inputs, in the same run: ``pytest benchmarks --benchmark-only``.
pytest-benchmark groups the timings by workload; ``python -m benchmarks.table`` turns the JSON into the README's table.

A call is what the conformance suite runs: the adapter's canonical call, with autograd through the
component's differentiable inputs where it has an objective (forward and backward), on CPU unless
``--device=cuda``.
"""

from __future__ import annotations

import pytest
import torch

from conformance.adapters import resolve
from conformance.runner import run_candidate

from .workloads import WORKLOADS, profile_for

IMPLEMENTATIONS = ("oracle", "torchvision", "transformers", "ultralytics", "mmdet")


@pytest.fixture(scope="session")
def adapters():
    found = {}
    for name in IMPLEMENTATIONS:
        try:
            adapter = resolve(name)
        except Exception as err:  # noqa: BLE001 - an adapter that cannot be built is reported as such
            found[name] = err
            continue
        found[name] = adapter if adapter.available() else adapter.available().reason
    return found


@pytest.fixture(scope="session")
def workload_inputs():
    cache = {}

    def get(workload):
        if workload.name not in cache:
            cache[workload.name] = workload.inputs()
        return cache[workload.name]
    return get


# The reference in float64; each implementation in float32 (the baseline: the reference within 2x of
# the fastest) and in float64 (the same dtype as the reference: what the dtype costs, apart from the code).
RUNS = [("oracle", "float64")] + [(impl, dtype) for impl in IMPLEMENTATIONS[1:] for dtype in ("float32", "float64")]


@pytest.mark.parametrize(("impl", "precision"), RUNS, ids=[f"{i}-{d}" for i, d in RUNS])
@pytest.mark.parametrize("workload", WORKLOADS, ids=[w.name for w in WORKLOADS])
def test_workload(benchmark, adapters, workload_inputs, request, workload, impl, precision):
    adapter = adapters[impl]
    if not hasattr(adapter, "run"):
        pytest.skip(f"{impl} is not usable here: {adapter}")
    device = "cpu" if impl == "oracle" else request.config.getoption("--device", default="cpu") or "cpu"
    dtype = getattr(torch, precision)
    profile = profile_for(adapter, workload, impl, device, dtype)
    if profile is None:
        pytest.skip(f"{impl} provides no {workload.component} for {workload.name} (profiles {workload.profiles})")
    inputs = workload_inputs(workload)
    benchmark.group = workload.name
    benchmark.extra_info.update(impl=impl, version=adapter.version, dtype=str(dtype).removeprefix("torch."),
                                device=device, profile=profile, component=workload.component, doc=workload.doc)

    def call():
        outputs, _ = run_candidate(adapter, workload.component, inputs, workload.config, profile, dtype, device)
        if device == "cuda":
            torch.cuda.synchronize()
        return outputs
    benchmark.pedantic(call, rounds=3, iterations=1, warmup_rounds=1)
