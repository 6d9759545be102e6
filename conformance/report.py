"""The conformance reports: the per-component summary of a run's test records, the JSON report, its
markdown rendering, and writing them (``--conformance-report=PATH``). The pytest plugin
(conformance/plugin.py) collects the records; conformance/table.py turns JSON reports into the README's table.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import torch


def component_summary(records: list[dict]) -> dict[str, dict]:
    """Per component (sorted): the count of each outcome, the failures' classes and the worst passed or failed
    error (relative, absolute, ULPs, and its case)."""
    table: dict[str, dict] = defaultdict(lambda: {"passed": 0, "failed": 0, "not provided": 0, "xfailed": 0,
                                                  "xpassed": 0, "skipped": 0, "worst_rel": 0.0, "worst_abs": 0.0,
                                                  "worst_ulps": 0.0, "worst_case": "", "classes": defaultdict(int)})
    for r in records:
        row = table[r["component"]]
        row[r["outcome"]] = row.get(r["outcome"], 0) + 1
        if r.get("class") and r["outcome"] == "failed":  # the classes of failures (xfails carry theirs too)
            row["classes"][r["class"]] += 1
        if r.get("max_rel", 0.0) >= row["worst_rel"] and r["outcome"] in ("passed", "failed"):
            row.update(worst_rel=r.get("max_rel", 0.0), worst_abs=r.get("max_abs", 0.0),
                       worst_ulps=r.get("ulps", 0.0), worst_case=r.get("case", ""))
    return {k: {**v, "classes": dict(v["classes"])} for k, v in sorted(table.items())}


def draw_coverage(records: list[dict]) -> dict[str, list[dict]]:
    """The generated tests whose adapter declined some of their draws (conformance/runner.py ``per_draw``):
    ``never_supported`` (every draw declined: reported as not provided) and ``partially_supported`` (checked on
    the supported draws only), each ``{"test", "draws", "supported_draws", "reasons"}``. A test not provided
    for its component, profile, dtype or device as a whole draws nothing and is in neither list."""
    out: dict[str, list[dict]] = {"never_supported": [], "partially_supported": []}
    for r in records:
        draws, supported = r.get("draws", 0), r.get("supported_draws", 0)
        if not draws or supported >= draws:
            continue
        entry = {"test": r.get("test", r.get("case", "")), "draws": draws, "supported_draws": supported,
                 "reasons": list(r.get("declined_reasons", []))}
        out["never_supported" if supported == 0 else "partially_supported"].append(entry)
    return {k: sorted(v, key=lambda e: e["test"]) for k, v in out.items()}


def build_report(adapter: object, *, impl: str, device: str, dtype: torch.dtype, allow_tf32: bool,
                 records: list[dict], unmatched_known_differences: Any, world_size: int = 1,
                 autocast: torch.dtype | None = None) -> dict[str, Any]:
    """The JSON report of a run: its header (implementation, versions, device, dtype), the per-component
    summary, every test's record and the known differences that matched no test."""
    import numpy
    import scipy
    return {
        "header": {"impl": getattr(adapter, "name", impl), "version": getattr(adapter, "version", "?"),
                   "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                   "detconf": _detconf_version(), "commit": _commit(), "manifest_sha256": _manifest_sha256(),
                   "profile": getattr(adapter, "profile", "?"), "device": device,
                   "dtype": str(dtype).removeprefix("torch."), "tf32": allow_tf32, "world_size": world_size,
                   "autocast": None if autocast is None else str(autocast).removeprefix("torch."),
                   "torch": torch.__version__, "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
                   "numpy": numpy.__version__, "scipy": scipy.__version__, "python": sys.version.split()[0]},
        "components": component_summary(records),
        "outcomes": dict(sorted(Counter(r["outcome"] for r in records).items())),
        "tests": records,
        "generated_draws": draw_coverage(records),
        "unmatched_known_differences": unmatched_known_differences,
    }


def _detconf_version() -> str:
    try:
        return importlib.metadata.version("detconf")
    except importlib.metadata.PackageNotFoundError:
        import oracle
        return oracle.__version__


def _commit() -> str | None:
    """The git commit of a source checkout of detconf (None for an installed wheel)."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def _manifest_sha256() -> str | None:
    """The sha256 of the golden fixtures' manifest the run checked against."""
    from golden.store import GOLDEN_DIR
    path = GOLDEN_DIR / "MANIFEST.json"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def markdown_report(report: dict[str, Any]) -> str:
    """The report as markdown: the header, the per-component table, the failures and the reasons not provided."""
    h = report["header"]
    tf32 = "on" if h["tf32"] else "off"
    commit = f" (commit {h['commit'][:12]})" if h.get("commit") else ""
    outcomes = ", ".join(f"{n} {k}" for k, n in report.get("outcomes", {}).items()) or "no tests"
    lines = [f"# detconf conformance report: {h['impl']} {h['version']}", "",
             f"Profile: {h['profile']}. Device {h['device']}, dtype {h['dtype']}, TF32 {tf32}, "
             f"{h.get('world_size', 1)} rank(s)" + (f", autocast {h['autocast']}" if h.get("autocast") else "") + ". "
             f"torch {h['torch']} (CUDA {h['cuda']}), numpy {h['numpy']}, scipy {h['scipy']}, python {h['python']}.",
             "", f"detconf {h.get('detconf', '?')}{commit}, golden manifest sha256 {h.get('manifest_sha256')}, "
             f"run at {h.get('timestamp', '?')}. Outcomes: {outcomes}.",
             "",
             "| component | passed | failed | not provided | xfailed | worst rel. error | worst ULPs | worst case |",
             "|---|---|---|---|---|---|---|---|"]
    for component, row in report["components"].items():
        failed = f"{row['failed']}" + (f" ({', '.join(f'{n} {k}' for k, n in row['classes'].items())})"
                                       if row["classes"] else "")
        lines.append(f"| {component} | {row['passed']} | {failed} | {row['not provided']} | {row['xfailed']} | "
                     f"{row['worst_rel']:.3g} | {row['worst_ulps']:.3g} | {row['worst_case']} |")
    failures = [t for t in report["tests"] if t["outcome"] == "failed"]
    if failures:
        lines += ["", "## Failures", ""]
        for t in failures:
            lines += [f"### `{t['test']}` [{t.get('class', '?')}]", "", "```", t.get("message", ""), "```", ""]
    expected = [t for t in report["tests"] if t["outcome"] in ("xfailed", "xpassed")]
    if expected:
        lines += ["", "## Expected failures (known differences)", ""]
        lines += [f"- `{t['test']}` ({t['outcome']}): {t.get('reason', '')}" for t in expected]
    coverage = report.get("generated_draws") or {}
    if coverage.get("never_supported") or coverage.get("partially_supported"):
        lines += ["", "## Generated tests with declined draws", "",
                  "| test | supported draws / draws | declined because |", "|---|---|---|"]
        for t in coverage.get("never_supported", []) + coverage.get("partially_supported", []):
            lines.append(f"| `{t['test']}` | {t['supported_draws']} / {t['draws']} | {'; '.join(t['reasons'])} |")
    not_provided = sorted({t.get("reason", "") for t in report["tests"] if t["outcome"] == "not provided"})
    if not_provided:
        lines += ["", "## Not provided", ""] + [f"- {r}" for r in not_provided]
    return "\n".join(lines) + "\n"


def write_reports(report: dict[str, Any], paths: list[str]) -> None:
    """Write ``report`` to each path: ``.json`` as JSON (sorted keys), ``.html`` as one self-contained page
    (conformance/html_report.py), anything else as markdown. Each is written to a temporary name beside it
    and renamed, so that a reader never sees half a report."""
    from .html_report import html_report
    for path in paths:
        if path.endswith(".json"):
            text = json.dumps(report, indent=1, sort_keys=True, default=str) + "\n"
        elif path.endswith(".html"):
            text = html_report(report)
        else:
            text = markdown_report(report)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        partial.write_text(text)
        os.replace(partial, target)
