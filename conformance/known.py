"""Known, intended differences of an adapter, as data (DESIGN §7).

A TOML file per adapter lists expected failures::

    [[expected_failure]]
    test = "test_losses.py::test_golden[losses.sigmoid_focal_loss/edge-saturated-logits]"   # a test id prefix
    category = "upstream-bug"          # upstream-bug | convention-not-modelled | precision | no-input-check
    reason = "the mmcv CUDA op saturates log(1 - p) at log(FLT_MIN)"
    link = "https://github.com/..."     # an issue, or the upstream file and line
    dtypes = ["float16"]               # optional: only runs in these dtypes, or "autocast-bfloat16" (default: every)
    devices = ["cpu"]                  # optional: only runs on these devices (default: cpu and cuda)
    ranks = "several"                  # optional: only runs in one process ("one") or under --world-size=N > 1

Each matching test runs as a strict xfail, so an upstream fix is noticed; entries that match no
collected test are reported with a warning. Test ids are given from the test module's file name on
(``test_<area>.py::...``), wherever the suite is installed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

CATEGORIES = ("upstream-bug", "convention-not-modelled", "precision", "no-input-check")
#: An --autocast run is named autocast-<dtype> (its inputs are float32).
DTYPE_NAMES = ("float64", "float32", "float16", "bfloat16", "autocast-float16", "autocast-bfloat16")
DEVICE_NAMES = ("cpu", "cuda")
RANKS = ("one", "several")


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
        dtypes = entry.get("dtypes", list(DTYPE_NAMES))
        if not isinstance(dtypes, list) or not dtypes or set(dtypes) - set(DTYPE_NAMES):
            raise pytest.UsageError(f"{path}: expected_failure #{i} has dtypes {dtypes!r}; expected a non-empty "
                                    f"list of {', '.join(DTYPE_NAMES)}")
        devices = entry.get("devices", list(DEVICE_NAMES))
        if not isinstance(devices, list) or not devices or set(devices) - set(DEVICE_NAMES):
            raise pytest.UsageError(f"{path}: expected_failure #{i} has devices {devices!r}; expected a non-empty "
                                    f"list of {', '.join(DEVICE_NAMES)}")
        if entry.get("ranks", "one") not in RANKS:
            raise pytest.UsageError(f"{path}: expected_failure #{i} has ranks {entry['ranks']!r}; expected one of "
                                    f"{', '.join(RANKS)}")
    return entries


def applies(entry: dict, dtype: str, device: str = "cpu", world_size: int = 1) -> bool:
    """Whether an entry is expected in a run of ``dtype`` (``"float32"``, ...) on ``device`` (``"cpu"``, ``"cuda"``)
    with ``world_size`` ranks (an entry without ``ranks`` applies to any)."""
    ranks = entry.get("ranks")
    return (dtype in entry.get("dtypes", DTYPE_NAMES) and device in entry.get("devices", DEVICE_NAMES)
            and (ranks is None or ranks == ("one" if world_size == 1 else "several")))


def short_id(item: pytest.Item) -> str:
    return f"{Path(str(item.fspath)).name}::{item.name}"


def apply_known_differences(path: Path, items: list[pytest.Item], dtype: str = "float32",
                            device: str = "cpu", world_size: int = 1) -> list[str]:
    """Mark matching items as strict xfails in a run of ``dtype`` on ``device`` with ``world_size`` ranks; return
    the entries for this run that matched nothing."""
    entries = [e for e in load_known_differences(path) if applies(e, dtype, device, world_size)]
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
