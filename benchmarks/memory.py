"""Peak memory of each workload and implementation, each in a fresh process.

``python -m benchmarks.memory --out benchmarks/memory.json [--only NAME ...] [--results results.json]`` runs,
for every workload and installed implementation (or the pairs a benchmark JSON timed), a child process that
builds the inputs, runs the call once as benchmarks/test_workloads.py does (a warm-up: modules imported
and state initialised on first use stay for the process, e.g. the 153 MiB of ``torch._dynamo`` that
``torch.utils.checkpoint`` imports on its first call), resets the kernel's high-water mark of its resident
set (``/proc/self/clear_refs``), runs the call again and records the high-water mark (``VmHWM``) over the
resident set before that call: the call's peak working memory beyond its inputs. CPU and Linux only.

Each pair is measured twice. ``peak_mib`` runs the child with glibc's mmap threshold fixed at 1 MiB
(``MALLOC_MMAP_THRESHOLD_``), so that every tensor of 1 MiB or more has its own mapping, returned when the
tensor is freed: the peak is then that of the tensors alive at once, the code's own memory.
``peak_mib_default_malloc`` keeps glibc's default, whose threshold rises to the largest block freed so far
(up to 32 MiB): blocks below it come from the heap, which a long-lived block above freed ones keeps from
shrinking, so that figure also measures how the allocations happened to interleave.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from .workloads import WORKLOADS, profile_for
from .workloads import workload as find_workload

IMPLEMENTATIONS = ("oracle", "torchvision", "transformers", "ultralytics", "mmdet")


def _status_mib(field: str) -> float:
    """``VmRSS`` or ``VmHWM`` (the resident set's high-water mark) of this process, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"/proc/self/status has no {field} (benchmarks.memory needs Linux)")


def _reset_peak() -> None:
    """Reset VmHWM to the current resident set (Linux >= 4.0: ``echo 5 > /proc/PID/clear_refs``)."""
    Path("/proc/self/clear_refs").write_text("5")


def measure_one(workload_name: str, impl: str) -> dict:
    """In this process: the peak-RSS increase of one call after a warm-up call, or why it did not run."""
    import torch

    from conformance.adapters import resolve
    from conformance.runner import run_candidate

    workload = find_workload(workload_name)
    adapter = resolve(impl)
    if not adapter.available():
        return {"skipped": adapter.available().reason}
    dtype = torch.float64 if impl == "oracle" else torch.float32
    profile = profile_for(adapter, workload, impl, "cpu", dtype)
    if profile is None:
        return {"skipped": f"{impl} provides no {workload.component} for this workload"}
    inputs = workload.inputs()
    run_candidate(adapter, workload.component, inputs, workload.config, profile, dtype, "cpu")  # warm-up
    before = _status_mib("VmRSS")
    _reset_peak()  # VmHWM := the resident set now, >= before
    run_candidate(adapter, workload.component, inputs, workload.config, profile, dtype, "cpu")
    # max: a call that allocates nothing beyond what the warm-up left can read a fraction of a MiB below 0
    return {"peak_mib": max(0.0, _status_mib("VmHWM") - before), "profile": profile}


MMAP_THRESHOLD = "MALLOC_MMAP_THRESHOLD_"


def _child(workload_name: str, impl: str, malloc_env: dict[str, str]) -> dict:
    """measure_one in a fresh process whose environment has exactly ``malloc_env`` of glibc's malloc settings."""
    env = {k: v for k, v in os.environ.items() if k != MMAP_THRESHOLD and not k.startswith("GLIBC_TUNABLES")}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.memory", "--child", workload_name, impl],
                          capture_output=True, text=True, env={**env, **malloc_env})
    lines = proc.stdout.strip().splitlines()
    return json.loads(lines[-1]) if proc.returncode == 0 and lines else {
        "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/memory.json"))
    parser.add_argument("--only", nargs="*", default=None, help="workload names")
    parser.add_argument("--results", type=Path, help="a pytest-benchmark JSON: measure only the (workload, "
                                                      "implementation) pairs it timed")
    parser.add_argument("--child", nargs=2, metavar=("WORKLOAD", "IMPL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure_one(*args.child)))
        return 0
    timed = None
    if args.results:
        timed = {(b["group"], b["extra_info"]["impl"]) for b in json.loads(args.results.read_text())["benchmarks"]}
    results = {}
    for workload in WORKLOADS:
        if args.only and workload.name not in args.only:
            continue
        for impl in IMPLEMENTATIONS:
            if timed is not None and (workload.name, impl) not in timed:
                continue
            result = _child(workload.name, impl, {MMAP_THRESHOLD: str(1 << 20)})
            if "peak_mib" in result:
                default = _child(workload.name, impl, {})
                result["peak_mib_default_malloc"] = default.get("peak_mib", default.get("error"))
            results.setdefault(workload.name, {})[impl] = result
            print(f"{workload.name:34s} {impl:13s} {result}", flush=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
