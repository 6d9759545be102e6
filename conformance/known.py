"""Known, intended differences of an adapter, as data (DESIGN §7).

A TOML file per adapter lists expected failures::

    [[expected_failure]]
    test = "test_losses.py::test_golden[losses.sigmoid_focal_loss/edge-saturated-logits]"   # a test id prefix
    category = "upstream-bug"          # upstream-bug | convention-not-modelled | precision
    reason = "the mmcv CUDA op saturates log(1 - p) at log(FLT_MIN)"
    link = "https://github.com/..."     # an issue, or the upstream file and line

Each matching test runs as a strict xfail, so an upstream fix is noticed; entries that match no
collected test are reported with a warning. Test ids are given from the test module's file name on
(``test_<area>.py::...``), wherever the suite is installed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

CATEGORIES = ("upstream-bug", "convention-not-modelled", "precision")


def load_known_differences(path: Path) -> list[dict]:
    data = tomllib.loads(path.read_text())
    entries = data.get("expected_failure", [])
    for i, entry in enumerate(entries):
        missing = {"test", "category", "reason", "link"} - set(entry)
        if missing:
            raise pytest.UsageError(f"{path}: expected_failure #{i} lacks {sorted(missing)}")
        if entry["category"] not in CATEGORIES:
            raise pytest.UsageError(f"{path}: expected_failure #{i} has category {entry['category']!r}; "
                                    f"expected one of {', '.join(CATEGORIES)}")
    return entries


def short_id(item: pytest.Item) -> str:
    return f"{Path(str(item.fspath)).name}::{item.name}"


def apply_known_differences(path: Path, items: list[pytest.Item]) -> list[str]:
    """Mark matching items as strict xfails; return the entries that matched nothing."""
    entries = load_known_differences(path)
    used = set()
    for item in items:
        sid = short_id(item)
        for i, entry in enumerate(entries):
            if sid.startswith(entry["test"]):
                used.add(i)
                item.add_marker(pytest.mark.xfail(strict=True, reason=f"[{entry['category']}] {entry['reason']} "
                                                                      f"({entry['link']})"))
                break
    return [e["test"] for i, e in enumerate(entries) if i not in used]
