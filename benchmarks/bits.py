"""Bit-identity snapshots of the reference, for changes that must not move a bit.

``python -m benchmarks.bits save FILE [--workloads NAME ...]`` runs the reference on every golden case
(golden/catalogue.py) and on the named benchmark workloads, and saves every output tensor, gradients
included; ``python -m benchmarks.bits compare FILE [--workloads NAME ...]`` runs them again and lists the
tensors that are not ``torch.equal`` to the saved ones (dtype and shape included, NaN equal to NaN). Save
before a change, compare after it: ``python -m golden check`` allows each component's drift budget
(golden/drift.toml), this allows none.
Exit status 1 when a tensor differs or is missing.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch

from conformance.adapters import resolve
from conformance.runner import run_candidate
from golden.catalogue import catalogue, run_case
from golden.store import flatten

from .workloads import workload as find_workload


def snapshot(workloads: Sequence[str] = ()) -> dict[str, torch.Tensor]:
    """``{"case:out.key": tensor}`` for every golden case and ``{"Wworkload:out.key": tensor}`` per workload."""
    try:
        chosen = [find_workload(name) for name in workloads]
    except KeyError as err:
        raise SystemExit(err.args[0]) from None
    out = {}
    for case in catalogue():
        _, outputs = run_case(case)
        out.update({f"{case.name}:{k}": v for k, v in flatten(outputs, "out").items()})
    oracle = resolve("oracle")
    for w in chosen:
        outputs, _ = run_candidate(oracle, w.component, w.inputs(), w.config, w.profiles[0], torch.float64, "cpu")
        out.update({f"W{w.name}:{k}": v for k, v in flatten(outputs, "out").items()})
    return out


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal dtype, shape and values, NaN where the other has NaN (``torch.equal`` treats ``-0.0 == 0.0``)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.is_floating_point():
        return torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())
    return torch.equal(a, b)


def differences(saved: dict[str, torch.Tensor], now: dict[str, torch.Tensor]) -> list[str]:
    """Keys of ``now`` that ``saved`` lacks or holds with other bits."""
    return [k for k, v in now.items() if k not in saved or not same_bits(saved[k], v)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bits", description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("save", "compare"))
    parser.add_argument("file", type=Path)
    parser.add_argument("--workloads", nargs="*", default=[], help="benchmark workload names to include")
    args = parser.parse_args(argv)
    now = snapshot(args.workloads)
    if args.mode == "save":
        torch.save(now, args.file)
        print(f"{args.file}: {len(now)} tensors saved")
        return 0
    bad = differences(torch.load(args.file), now)
    print(f"{len(now)} tensors compared, {len(bad)} differ" + (f": {bad[:20]}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
