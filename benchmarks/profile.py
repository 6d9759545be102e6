"""Per-operator profile of one workload: the reference against an implementation.

``python -m benchmarks.profile WORKLOAD IMPL [--top N]`` runs the workload's call (as the benchmarks do:
forward and backward) for the reference in float64 and for IMPL in float32 and float64, under
``torch.profiler``, and prints for each the total self CPU time of the operators and the largest ones:
the best of 3 profiled calls after 2 warm-up calls. CPU only.
"""

from __future__ import annotations

import argparse

import torch

from conformance.adapters import resolve
from conformance.runner import run_candidate

from .workloads import profile_for
from .workloads import workload as find_workload


def operator_times(workload_name: str, impl: str, dtype: torch.dtype, calls: int = 3) -> dict[str, float]:
    """``{operator: self CPU ms}`` of the fastest of ``calls`` profiled calls (after two warm-up calls)."""
    try:
        workload = find_workload(workload_name)
    except KeyError as err:
        raise SystemExit(err.args[0]) from None
    adapter = resolve(impl)
    if not adapter.available():
        raise SystemExit(f"{impl} is not usable here: {adapter.available().reason}")
    profile = profile_for(adapter, workload, impl, "cpu", dtype)
    if profile is None:
        raise SystemExit(f"{impl} provides no {workload.component} for {workload_name} in {dtype}")
    inputs = workload.inputs()
    for _ in range(2):
        run_candidate(adapter, workload.component, inputs, workload.config, profile, dtype, "cpu")
    best: dict[str, float] | None = None
    for _ in range(calls):
        with torch.profiler.profile() as prof:
            run_candidate(adapter, workload.component, inputs, workload.config, profile, dtype, "cpu")
        times = {e.key: e.self_cpu_time_total / 1000 for e in prof.key_averages()}
        if best is None or sum(times.values()) < sum(best.values()):
            best = times
    return best or {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__.splitlines()[0])
    parser.add_argument("workload")
    parser.add_argument("impl")
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args(argv)
    for impl, dtype in (("oracle", torch.float64), (args.impl, torch.float32), (args.impl, torch.float64)):
        times = operator_times(args.workload, impl, dtype)
        top = sorted(times.items(), key=lambda kv: -kv[1])[:args.top]
        ops = ", ".join(f"{name.removeprefix('aten::')} {ms:.1f}" for name, ms in top)
        print(f"{impl} {str(dtype).removeprefix('torch.')}: {sum(times.values()):.1f} ms | {ops}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
