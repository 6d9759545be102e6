"""``python -m golden regenerate | check | list``.

Exit codes: 0 success; 1 ``check`` found a difference (an output moved, a fixture is missing,
damaged or orphaned, or the manifest is missing); 2 usage error.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy
import safetensors
import torch

import oracle

from .catalogue import Case, catalogue, run_case
from .compare import MAX_ULPS, Difference, compare_tensors, format_table
from .store import (GOLDEN_DIR, FixtureError, encode, flatten, read_case_file, read_manifest, sha256, tensor_specs,
                    write_manifest)


def versions() -> dict[str, str]:
    return {"oracle": oracle.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "safetensors": safetensors.__version__}


def _selected(pattern: str | None) -> list[Case]:
    return [c for c in catalogue() if pattern is None or fnmatch.fnmatchcase(c.name, pattern)]


class _Progress:
    """One line on stderr: rewritten in place on a terminal, every 25 cases otherwise."""

    def __init__(self, total: int, verb: str):
        self.total, self.verb, self.start = total, verb, time.perf_counter()
        self.tty = sys.stderr.isatty()

    def step(self, i: int, name: str) -> None:
        if self.tty:
            sys.stderr.write(f"\r\x1b[K{self.verb} [{i}/{self.total}] {name}")
            sys.stderr.flush()
        elif i % 25 == 0:
            sys.stderr.write(f"{self.verb} [{i}/{self.total}]\n")

    def done(self) -> float:
        elapsed = time.perf_counter() - self.start
        if self.tty:
            sys.stderr.write("\r\x1b[K")
        sys.stderr.write(f"{self.verb} {self.total} cases in {elapsed:.1f} s\n")
        return elapsed


def _tensors(case: Case) -> dict[str, torch.Tensor]:
    inputs, outputs = run_case(case)
    return {**flatten(inputs, "in"), **flatten(outputs, "out")}


def regenerate(root: Path, pattern: str | None) -> int:
    selected = _selected(pattern)
    data_dir = root / "data"
    manifest_path = root / "MANIFEST.json"
    entries = {}
    if pattern is not None and manifest_path.is_file():
        entries = dict(read_manifest(manifest_path)["cases"])
    progress = _Progress(len(selected), "regenerated")
    for i, case in enumerate(selected, 1):
        progress.step(i, case.name)
        tensors = _tensors(case)
        payload = encode(tensors, case.to_json())
        path = root / case.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
        entries[case.name] = {"file": case.file, "sha256": sha256(payload), "component": case.component,
                              "profile": case.profile, "tags": list(case.tags), "config": dict(case.config),
                              "seed": case.seed, "tensors": tensor_specs(tensors)}
    progress.done()
    if pattern is None:  # a full regeneration also removes fixtures whose case is gone
        known = {root / c.file for c in catalogue()}
        for path in sorted(data_dir.rglob("*.safetensors")) if data_dir.is_dir() else []:
            if path not in known:
                path.unlink()
                print(f"removed orphaned fixture {path.relative_to(root)}")
    write_manifest({"versions": versions(), "cases": dict(sorted(entries.items()))}, manifest_path)
    print(f"wrote {len(selected)} fixtures and {manifest_path}")
    return 0


def find_differences(root: Path, pattern: str | None = None, max_ulps: float = MAX_ULPS,
                     manifest: dict | None = None) -> tuple[list[Difference], int, float]:
    """``(differences, cases checked, seconds)``: the fixtures under ``root`` against the reference."""
    manifest = read_manifest(root / "MANIFEST.json") if manifest is None else manifest
    entries = manifest["cases"]
    selected = _selected(pattern)
    problems: list[Difference] = []
    progress = _Progress(len(selected), "checked")
    for i, case in enumerate(selected, 1):
        progress.step(i, case.name)
        if case.name not in entries:
            problems.append(Difference(case.name, "", "missing", detail="in the catalogue, not in MANIFEST.json"))
            continue
        try:
            stored, _ = read_case_file(root / entries[case.name]["file"], entries[case.name])
        except FixtureError as err:
            problems.append(Difference(case.name, "", "damaged", detail=str(err)))
            continue
        fresh = _tensors(case)
        stored_in = {k: v for k, v in stored.items() if k.startswith("in.")}
        fresh_in = {k: v for k, v in fresh.items() if k.startswith("in.")}
        # Inputs are made from the seed: they must come out identical, or the outputs mean nothing.
        problems += compare_tensors(case.name, fresh_in, stored_in, max_ulps=0)
        problems += compare_tensors(case.name, {k: v for k, v in fresh.items() if k.startswith("out.")},
                                    {k: v for k, v in stored.items() if k.startswith("out.")}, max_ulps=max_ulps)
    elapsed = progress.done()
    if pattern is None:
        known = {c.name for c in catalogue()}
        for name in sorted(set(entries) - known):
            problems.append(Difference(name, "", "orphaned", detail="in MANIFEST.json, not in the catalogue"))
        listed = {(root / e["file"]).resolve() for e in entries.values()}
        data_dir = root / "data"
        for path in sorted(data_dir.rglob("*.safetensors")) if data_dir.is_dir() else []:
            if path.resolve() not in listed:
                problems.append(Difference(str(path.relative_to(root)), "", "orphaned",
                                           detail="file not listed in MANIFEST.json"))
    return problems, len(selected), elapsed


def check(root: Path, pattern: str | None, max_ulps: float) -> int:
    try:
        manifest = read_manifest(root / "MANIFEST.json")
    except FixtureError as err:
        print(f"golden check: {err}")
        return 1
    problems, checked, elapsed = find_differences(root, pattern, max_ulps, manifest)
    stored_versions = manifest.get("versions", {})
    if stored_versions != versions():
        print(f"note: fixtures were written with {stored_versions}; checking with {versions()}")
    if problems:
        cases_hit = sorted({p.case for p in problems})
        print(f"golden check: {len(cases_hit)} of {checked} cases differ (tolerance {max_ulps:g} float64 ULPs "
              f"for outputs, exact for inputs), in {elapsed:.1f} s\n")
        print(format_table(problems))
        print("\nIf the change is intended: python -m golden regenerate [--only PATTERN], review this table, "
              "and commit the fixtures with the reason (README: 'Changing the reference').")
        return 1
    print(f"golden check: {checked} cases agree within {max_ulps:g} float64 ULPs, in {elapsed:.1f} s")
    return 0


def list_cases(pattern: str | None, component: str | None, profile: str | None, tag: str | None) -> int:
    rows = [(c.name, c.component, c.profile, ",".join(c.tags)) for c in _selected(pattern)
            if (component is None or c.component == component) and (profile is None or c.profile == profile)
            and (tag is None or tag in c.tags)]
    width = [max([len(r[i]) for r in rows] + [4]) for i in range(3)]
    for name, comp, prof, tags in rows:
        print(f"{name.ljust(width[0])}  {comp.ljust(width[1])}  {prof.ljust(width[2])}  {tags}")
    print(f"{len(rows)} cases", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m golden",
        description="Golden fixtures of the detconf reference: regenerate them, check them, list them.",
        epilog="Exit codes: 0 success; 1 check found differences (moved outputs, missing, damaged or orphaned "
               "fixtures); 2 usage error.")
    parser.add_argument("--root", type=Path, default=GOLDEN_DIR,
                        help="directory holding MANIFEST.json and data/ (default: the golden package)")
    sub = parser.add_subparsers(dest="command", required=True)
    p_regen = sub.add_parser("regenerate", help="write the fixture files and MANIFEST.json from the reference",
                             description="Write fixtures deterministically from the catalogue. Without --only, "
                                         "every fixture is rewritten and orphaned files are removed.")
    p_regen.add_argument("--only", metavar="PATTERN", help="only cases whose name matches this glob, e.g. 'losses.*'")
    p_check = sub.add_parser("check", help="regenerate in memory and compare with the files",
                             description="Compare every fixture with the reference: inputs exactly, outputs within "
                                         f"--max-ulps float64 ULPs (default {MAX_ULPS}). Missing, damaged and "
                                         "orphaned fixtures also fail.")
    p_check.add_argument("--only", metavar="PATTERN", help="only cases whose name matches this glob")
    p_check.add_argument("--max-ulps", type=float, default=MAX_ULPS, help=argparse.SUPPRESS)
    p_list = sub.add_parser("list", help="list the cases with component, profile and tags",
                            description="List catalogue cases, filtered by a name glob, component, profile or tag.")
    p_list.add_argument("pattern", nargs="?", help="a glob on the case name, e.g. '*dino*'")
    p_list.add_argument("--component")
    p_list.add_argument("--profile")
    p_list.add_argument("--tag", help="e.g. edge:empty-targets or random")
    args = parser.parse_args(argv)
    if args.command == "regenerate":
        return regenerate(args.root, args.only)
    if args.command == "check":
        return check(args.root, args.only, args.max_ulps)
    return list_cases(args.pattern, args.component, args.profile, args.tag)
