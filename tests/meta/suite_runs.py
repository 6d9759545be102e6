"""Running the conformance suite from a test: in-process (pytester) with a faulty adapter, reading the report."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hypothesis import settings

import conformance

SUITE = str(Path(conformance.__file__).resolve().parent)


def run_suite(pytester, impl: str, *args: str):
    """Run the suite; returns (result, report). The outer session's hypothesis profile is restored."""
    report_path = pytester.path / "report.json"
    previous = settings.get_current_profile_name()
    try:
        result = pytester.runpytest_inprocess(SUITE, f"--impl={impl}", "-p", "no:cacheprovider",
                                              "--hypothesis-profile=dev", f"--conformance-report={report_path}", *args)
    finally:
        settings.load_profile(previous)
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return result, report


#: The ci profile's draws without the shrink phase (tests/meta/power_profiles.py), for the checks that ask whether
#: and how a test fails, not what its minimal example is: shrinking is most of a failing generated test's time.
CI_NO_SHRINK = ("-p", "tests.meta.power_profiles", "--hypothesis-profile=ci-no-shrink")


def outcomes(report) -> dict[str, tuple[str, str | None]]:
    return {t["test"].split("::", 1)[1]: (t["outcome"], t.get("class")) for t in report["tests"]}


def faulty(name: str) -> str:
    return f"py:tests.meta.faulty_adapters:{name}"


REPO = Path(__file__).resolve().parents[2]


def run_suite_subprocess(pytester, monkeypatch, impl: str, *args: str, report: str = "report.json"):
    """:func:`run_suite` in a fresh Python process (pytest-xdist workers, a candidate that ends its process);
    the checkout is on its path, for the faulty adapters. Returns (result, report)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    report_path = pytester.path / report
    result = pytester.runpytest_subprocess(SUITE, f"--impl={impl}", "-p", "no:cacheprovider",
                                           "--hypothesis-profile=dev", f"--conformance-report={report_path}", *args,
                                           timeout=600)
    return result, (json.loads(report_path.read_text()) if report_path.exists() else None)
