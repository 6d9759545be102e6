"""``python -m golden regenerate | check | list | spread``.

Exit codes: 0 success; 1 ``check`` found a difference (an output moved beyond its drift budget, a
fixture is missing, damaged, orphaned or disagrees with the catalogue, or the manifest is missing);
2 usage error.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from . import platforms
from .catalogue import Case, catalogue, run_case
from .compare import Difference, Figures, budget, compare_exact, format_table, reference_differences
from .store import (GOLDEN_DIR, FixtureError, encode, flatten, read_case_file, read_manifest, sha256, tensor_specs,
                    write_manifest)


def _selected(pattern: str | Sequence[str] | None) -> list[Case]:
    """The catalogue's cases whose name matches the glob ``pattern`` (any of several); all without one."""
    patterns = [pattern] if isinstance(pattern, str) else pattern
    return [c for c in catalogue() if patterns is None or any(fnmatch.fnmatchcase(c.name, p) for p in patterns)]


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


def _split(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def _platform_of(manifest: dict, name: str) -> dict[str, str]:
    """The platform a case's fixture was written on ({} when the manifest does not say)."""
    return manifest.get("platforms", {}).get(manifest["cases"].get(name, {}).get("platform", ""), {})


# --------------------------------------------------------------------------- regenerate

def input_differences(root: Path, cases: Sequence[Case], manifest: dict | None) -> list[Difference]:
    """The stored inputs of ``cases`` against the inputs their builders make now, bit for bit (a determinism
    check: the builders' float arithmetic, such as box-format conversions, may round differently on another
    platform). Cases without a readable fixture are left out."""
    if manifest is None:
        return []
    out = []
    for case in cases:
        entry = manifest["cases"].get(case.name)
        if entry is None or "file" not in entry:
            continue
        try:
            stored, _ = read_case_file(root / entry["file"], entry)
        except FixtureError:
            continue
        out += compare_exact(case.name, flatten(case.inputs(), "in"), _split(stored, "in"))
    return out


def _report_inputs(differences: list[Difference], manifest: dict | None, here: dict[str, str]) -> int:
    """Print regenerated inputs that differ from the stored ones. A difference on the platform that wrote the
    fixture is non-determinism (returns 1); on another platform it is information (returns 0)."""
    if not differences:
        return 0
    same = [d for d in differences if manifest is not None and _platform_of(manifest, d.case) == here]
    where = ("on the platform that wrote them: the builders are not deterministic" if same
             else "written on another platform: information, not a failure")
    print(f"{len({d.case for d in differences})} case(s): inputs rebuilt from their seeds differ from the stored "
          f"ones ({where})")
    print(format_table(differences))
    written = _platform_of(manifest, differences[0].case) if manifest else {}
    if written and written != here:
        print(platforms.side_by_side(written, here))
    return 1 if same else 0


def regenerate(root: Path, pattern: str | Sequence[str] | None) -> int:
    selected = _selected(pattern)
    data_dir = root / "data"
    manifest_path = root / "MANIFEST.json"
    try:
        old = read_manifest(manifest_path) if manifest_path.is_file() else None
    except FixtureError:
        old = None
    here = platforms.describe()
    status = _report_inputs(input_differences(root, selected, old), old, here)
    entries = dict(old["cases"]) if (pattern is not None and old is not None) else {}
    table = dict(old.get("platforms", {})) if (pattern is not None and old is not None) else {}
    here_key = platforms.key(here)
    table[here_key] = here
    progress = _Progress(len(selected), "regenerated")
    for i, case in enumerate(selected, 1):
        progress.step(i, case.name)
        inputs, outputs = run_case(case)
        tensors = {**flatten(inputs, "in"), **flatten(outputs, "out")}
        payload = encode(tensors, case.to_json())
        path = root / case.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
        entries[case.name] = {"file": case.file, "sha256": sha256(payload), "component": case.component,
                              "profile": case.profile, "tags": list(case.tags), "config": dict(case.config),
                              "seed": case.seed, "tensors": tensor_specs(tensors), "platform": here_key}
    progress.done()
    if pattern is None:  # a full regeneration also removes fixtures whose case is gone
        known = {root / c.file for c in catalogue()}
        for path in sorted(data_dir.rglob("*.safetensors")) if data_dir.is_dir() else []:
            if path not in known:
                path.unlink()
                print(f"removed orphaned fixture {path.relative_to(root)}")
    used = {e.get("platform") for e in entries.values()}
    write_manifest({"platforms": {k: v for k, v in sorted(table.items()) if k in used},
                    "cases": dict(sorted(entries.items()))}, manifest_path)
    print(f"wrote {len(selected)} fixtures and {manifest_path}")
    return status


# --------------------------------------------------------------------------- check

def _metadata_problems(case: Case, entry: dict, case_json: dict) -> list[Difference]:
    """The catalogue's record of a case against the fixture's own JSON and its manifest entry."""
    want = json.loads(json.dumps(case.to_json()))
    out = []
    for field in ("component", "profile", "config", "seed", "tags"):
        if case_json.get(field) != want[field]:
            detail = f"the fixture's {field} {case_json.get(field)!r} is not the catalogue's {want[field]!r}"
            out.append(Difference(case.name, "", "metadata", detail=detail))
        elif entry.get(field) != want[field]:
            out.append(Difference(case.name, "", "metadata", detail=f"MANIFEST.json's {field} {entry.get(field)!r} is "
                                                                    f"not the catalogue's {want[field]!r}"))
    return out


def find_differences(root: Path, pattern: str | Sequence[str] | None = None, manifest: dict | None = None,
                     figures: dict[str, dict[str, Figures]] | None = None) -> tuple[list[Difference], int, float]:
    """``(differences, cases checked, seconds)``: the reference run on every fixture's stored inputs, its outputs
    against the stored outputs under the drift policy (golden/compare.py). ``figures``, when given, receives
    every float output's figures per case."""
    manifest = read_manifest(root / "MANIFEST.json") if manifest is None else manifest
    entries = manifest["cases"]
    selected = _selected(pattern)
    problems: list[Difference] = []
    progress = _Progress(len(selected), "checked")
    for i, case in enumerate(selected, 1):
        progress.step(i, case.name)
        entry = entries.get(case.name)
        if entry is None:
            problems.append(Difference(case.name, "", "missing", detail="in the catalogue, not in MANIFEST.json"))
            continue
        if not isinstance(entry, dict) or "file" not in entry or "sha256" not in entry or "tensors" not in entry:
            problems.append(Difference(case.name, "", "damaged",
                                       detail="MANIFEST.json's entry lacks file, sha256 or tensors"))
            continue
        try:
            stored, case_json = read_case_file(root / entry["file"], entry)
        except FixtureError as err:
            problems.append(Difference(case.name, "", "damaged", detail=str(err)))
            continue
        metadata = _metadata_problems(case, entry, case_json)
        if metadata:
            problems += metadata
            continue
        per_output: dict[str, Figures] = {}
        problems += reference_differences(case.name, case.component, case.config, case.profile, stored,
                                          figures=per_output)
        if figures is not None:
            figures[case.name] = per_output
    elapsed = progress.done()
    if pattern is None:
        known = {c.name for c in catalogue()}
        for name in sorted(set(entries) - known):
            problems.append(Difference(name, "", "orphaned", detail="in MANIFEST.json, not in the catalogue"))
        listed = {(root / e["file"]).resolve() for e in entries.values() if isinstance(e, dict) and "file" in e}
        data_dir = root / "data"
        for path in sorted(data_dir.rglob("*.safetensors")) if data_dir.is_dir() else []:
            if path.resolve() not in listed:
                problems.append(Difference(str(path.relative_to(root)), "", "orphaned",
                                           detail="file not listed in MANIFEST.json"))
    return problems, len(selected), elapsed


def _write_figures(path: Path, figures: dict[str, dict[str, Figures]], here: dict[str, str]) -> None:
    components = {c.name: c.component for c in catalogue()}
    path.write_text(json.dumps({"platform": here, "cases": {
        case: {"component": components[case], "outputs": {name: {"max_abs": f.max_abs, "ulps": f.ulps,
                                                                   "norm_ulps": f.norm_ulps, "scale": f.scale}
                                                          for name, f in outputs.items()}}
        for case, outputs in figures.items()}}, indent=1, sort_keys=True) + "\n")


def check(root: Path, pattern: str | Sequence[str] | None, figures_path: Path | None = None,
          inputs: bool = False) -> int:
    try:
        manifest = read_manifest(root / "MANIFEST.json")
    except FixtureError as err:
        print(f"golden check: {err}")
        return 1
    here = platforms.describe()
    figures: dict[str, dict[str, Figures]] = {}
    problems, checked, elapsed = find_differences(root, pattern, manifest, figures)
    if figures_path is not None:
        _write_figures(figures_path, figures, here)
        print(f"wrote the figures of every output to {figures_path}")
    status = _report_inputs(input_differences(root, _selected(pattern), manifest), manifest, here) if inputs else 0
    if problems:
        cases_hit = sorted({p.case for p in problems})
        print(f"golden check: {len(cases_hit)} of {checked} cases differ (outputs within each component's drift budget "
              f"of float64 ULPs of their scale, golden/drift.toml), in {elapsed:.1f} s\n")
        print(format_table(problems))
        written = {json.dumps(_platform_of(manifest, c), sort_keys=True) for c in cases_hit}
        for description in sorted(written):
            if json.loads(description) and json.loads(description) != here:
                print("\nThe fixtures that differ were written on another platform:\n"
                      + platforms.side_by_side(json.loads(description), here))
        print("\nIf the change is intended: python -m golden regenerate [--only PATTERN], review this table, "
              "and commit the fixtures with the reason (README: 'Changing the reference').")
        return 1
    print(f"golden check: {checked} cases agree (outputs within their drift budget, golden/drift.toml), "
          f"in {elapsed:.1f} s")
    elsewhere = {k: v for k, v in manifest.get("platforms", {}).items() if v != here}
    for description in elsewhere.values():
        fields = ", ".join(f for f in dict.fromkeys([*description, *here]) if description.get(f) != here.get(f))
        print(f"note: fixtures written on another platform (it differs in {fields}) agree here")
    return status


# --------------------------------------------------------------------------- spread

def spread(paths: Sequence[Path]) -> int:
    """Per component, the greatest normwise and elementwise ULPs over the figure files of several platforms
    (``python -m golden check --figures FILE`` on each), beside the component's budget."""
    worst: dict[str, dict[str, Any]] = {}
    runs = []
    for path in paths:
        data = json.loads(path.read_text())
        p = data["platform"]
        runs.append(f"{path.name}: torch {p['torch']}, {p['cpu_capability']}, {p['blas']}"
                    f"{', MKL_CBWR=' + p['mkl_cbwr'] if p.get('mkl_cbwr') else ''}, {p['threads']} thread(s)")
        for case, record in data["cases"].items():
            row = worst.setdefault(record["component"], {"norm": 0.0, "elem": 0.0, "where": ""})
            for name, f in record["outputs"].items():
                if f["norm_ulps"] > row["norm"]:
                    row.update(norm=f["norm_ulps"], where=f"{case} {name} ({path.name})")
                row["elem"] = max(row["elem"], f["ulps"])
    print("\n".join(runs) + "\n")
    rows = [("component", "ULPs of scale", "ULPs of element", "budget", "worst")]
    over = 0
    for component, row in sorted(worst.items()):
        limit = budget(component).normwise_ulps
        over += row["norm"] > limit
        rows.append((component, f"{row['norm']:.3g}", f"{row['elem']:.3g}", f"{limit:g}", row["where"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 1 if over else 0


def list_cases(pattern: str | None, component: str | None, profile: str | None, tag: str | None) -> int:
    rows = [(c.name, c.component, c.profile, ",".join(c.tags)) for c in _selected(pattern)
            if (component is None or c.component == component) and (profile is None or c.profile == profile)
            and (tag is None or tag in c.tags)]
    width = [max([len(r[i]) for r in rows] + [4]) for i in range(3)]
    for name, comp, prof, tags in rows:
        print(f"{name.ljust(width[0])}  {comp.ljust(width[1])}  {prof.ljust(width[2])}  {tags}")
    print(f"{len(rows)} cases", file=sys.stderr)
    return 0


def diff(root: Path, ref: str) -> int:
    """Print the fixtures that moved since ``ref`` (golden/diff.py); exit 2 when the revision cannot be read."""
    from .diff import DiffError, fixture_diff
    try:
        differences = fixture_diff(root, ref)
    except DiffError as err:
        print(f"golden diff: {err}", file=sys.stderr)
        return 2
    if not differences:
        print(f"golden diff: no fixture differs from {ref}")
        return 0
    print(format_table(differences))
    cases = {d.case for d in differences}
    moved = [d for d in differences if d.what == "values"]
    worst = max(moved, key=lambda d: d.norm_ulps, default=None)
    largest = f"; the largest move: {worst.case} {worst.tensor}, {worst.norm_ulps:.3g} ULPs of scale" if worst else ""
    print(f"golden diff: {len(cases)} case(s) differ from {ref}{largest}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m golden",
        description="Golden fixtures of the detconf reference: regenerate them, check them, list them.",
        epilog="Exit codes: 0 success (diff: whatever it found); 1 check found differences (outputs beyond their drift "
               "budget, missing, damaged, orphaned or mislabelled fixtures); 2 usage error or unreadable revision.")
    parser.add_argument("--root", type=Path, default=GOLDEN_DIR,
                        help="directory holding MANIFEST.json and data/ (default: the golden package)")
    sub = parser.add_subparsers(dest="command", required=True)
    p_regen = sub.add_parser("regenerate", help="write the fixture files and MANIFEST.json from the reference",
                             description="Write fixtures deterministically from the catalogue. Without --only, "
                                         "every fixture is rewritten and orphaned files are removed. Inputs rebuilt "
                                         "from their seeds are first compared with the stored ones, bit for bit: a "
                                         "difference on the platform that wrote them fails (exit 1, after writing), "
                                         "on another platform it is reported as information.")
    p_regen.add_argument("--only", metavar="PATTERN", action="append",
                         help="only cases whose name matches this glob, e.g. 'losses.*' (repeatable: any of them)")
    p_check = sub.add_parser("check", help="run the reference on the stored inputs and compare with the stored outputs",
                             description="Run the reference on every fixture's stored inputs and compare its outputs "
                                         "with the stored ones, within each component's drift budget in float64 ULPs "
                                         "of the output's scale (golden/drift.toml); integers and matchings exactly. "
                                         "Missing, damaged, orphaned and mislabelled fixtures also fail.")
    p_check.add_argument("--only", metavar="PATTERN", action="append",
                         help="only cases whose name matches this glob (repeatable: any of them)")
    p_check.add_argument("--figures", metavar="FILE.json", type=Path,
                         help="also write every output's figures (ULPs of scale and of element) to this file")
    p_check.add_argument("--inputs", action="store_true",
                         help="also rebuild the inputs from their seeds and compare them bit for bit (determinism; "
                              "on another platform than the fixture's, a difference is information)")
    p_list = sub.add_parser("list", help="list the cases with component, profile and tags",
                            description="List catalogue cases, filtered by a name glob, component, profile or tag.")
    p_list.add_argument("pattern", nargs="?", help="a glob on the case name, e.g. '*dino*'")
    p_list.add_argument("--component")
    p_list.add_argument("--profile")
    p_list.add_argument("--tag", help="e.g. edge:empty-targets or random")
    p_diff = sub.add_parser("diff", help="which fixtures moved since a git revision, and by how much",
                            description="Compare every fixture of the working tree with the same file at a git "
                                        "revision (default HEAD): added, removed and changed cases, inputs bit for "
                                        "bit, outputs with their largest absolute, relative and ULP changes.")
    p_diff.add_argument("ref", nargs="?", default="HEAD", help="the git revision to compare with (default HEAD)")
    p_spread = sub.add_parser("spread", help="the cross-platform spread per component from several --figures files",
                              description="Per component, the greatest error over figure files written by "
                                          "`check --figures` on several platforms, beside its budget (exit 1 when a "
                                          "budget is exceeded).")
    p_spread.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.command == "regenerate":
        return regenerate(args.root, args.only)
    if args.command == "check":
        return check(args.root, args.only, args.figures, args.inputs)
    if args.command == "spread":
        return spread(args.files)
    if args.command == "diff":
        return diff(args.root, args.ref)
    return list_cases(args.pattern, args.component, args.profile, args.tag)
