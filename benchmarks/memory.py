"""Peak memory of each workload and implementation, each in a fresh process (issue 12).

``python -m benchmarks.memory --out benchmarks/memory.json [--only NAME ...] [--results results.json]`` runs,
for every workload and installed implementation (or the pairs a benchmark JSON timed), a child process that
builds the inputs, records its peak resident set (``ru_maxrss``), runs the call once as
benchmarks/test_workloads.py does, and records the peak again; the difference is the call's peak working
memory beyond its inputs. CPU only.

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
import resource
import subprocess
import sys
from pathlib import Path

from .workloads import WORKLOADS

IMPLEMENTATIONS = ("oracle", "torchvision", "transformers", "ultralytics", "mmdet")


def _peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def measure_one(workload_name: str, impl: str) -> dict:
    """In this process: the peak-RSS increase of one call, or why it did not run."""
    import torch

    from conformance.adapters import resolve
    from conformance.runner import run_candidate

    from .test_workloads import _profile
    workload = next(w for w in WORKLOADS if w.name == workload_name)
    adapter = resolve(impl)
    if not adapter.available():
        return {"skipped": adapter.available().reason}
    dtype = torch.float64 if impl == "oracle" else torch.float32
    profile = workload.profiles[0] if impl == "oracle" else _profile(adapter, workload, "cpu", dtype)
    if profile is None:
        return {"skipped": f"{impl} provides no {workload.component} for this workload"}
    inputs = workload.inputs()
    before = _peak_kib()
    run_candidate(adapter, workload.component, inputs, workload.config, profile, dtype, "cpu")
    return {"peak_mib": (_peak_kib() - before) / 1024, "profile": profile}


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
