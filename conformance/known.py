"""Known, intended differences of an adapter, as data (DESIGN §7).

A TOML file per adapter lists expected failures, each with what it expects to fail::

    [[expected_failure]]
    test = "test_losses.py::test_golden[losses.sigmoid_focal_loss/edge-saturated-logits]"   # a test id prefix
    category = "upstream-bug"          # upstream-bug | convention-not-modelled | precision | no-input-check
    reason = "the mmcv CUDA op saturates log(1 - p) at log(FLT_MIN)"
    link = "https://github.com/..."     # an issue, or the upstream file and line
    class = "non-finite"               # the failure's class, or a list of them (below)
    outputs = ["loss", "grad.logits"]  # globs of the output paths allowed to differ; and/or
    message = "saturat"                # a regular expression searched in the failure's message
    dtypes = ["float16"]               # optional: only runs in these dtypes, or "autocast-bfloat16" (default: every)
    devices = ["cpu"]                  # optional: only runs on these devices (default: cpu and cuda)
    ranks = "several"                  # optional: only runs in one process ("one") or under --world-size=N > 1

``class`` is the class the runner gives the failure (conformance/runner.py, the report's ``class``): precision,
semantic, non-finite, internal-precision, unclassified, timeout; or ``raised`` for a library that raises where the
reference computes (any exception other than the suite's own failure; its message is ``<ExceptionType>: <text>``,
so ``message`` can name the type). ``outputs`` are ``fnmatch`` globs of the output paths as the failure names them
(``value``, ``losses.loss_giou*``, ``grad.outputs.pred_boxes``, ``indices.*`` for a matching); every path that
differs must match one, and a failure with no differing path (a raised call) never matches ``outputs``. An entry
gives ``class`` and at least one of ``outputs`` and ``message``; an entry whose classes are all ``raised`` or
``timeout`` gives ``message``.

Each matching test runs as a strict xfail (``raises=KnownDifferenceObserved``): when it fails as its entry expects
the failure is converted (conformance/plugin.py, ``pytest_pyfunc_call``) and the test is xfailed with the entry's
reason; when it fails otherwise (another class, an output path the entry does not list, a message that does not
match) it fails with :class:`FailedDifferently`, whose message names the entry and says how; when it passes, the
strict xfail fails it, so an upstream fix is noticed. A generated test's failure is hypothesis' final (shrunk)
one; when hypothesis reports several distinct failures, each must be the expected one, and a flaky failure never
is. Entries that match no collected test are reported with a warning. Test ids are given from the test module's
file name on (``test_<area>.py::...``), wherever the suite is installed.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

CATEGORIES = ("upstream-bug", "convention-not-modelled", "precision", "no-input-check")
#: The runner's failure classes (conformance/runner.py ConformanceFailure.kind), and raised: any other exception.
CLASSES = ("precision", "semantic", "non-finite", "internal-precision", "unclassified", "timeout", "raised",
           "accepted-invalid-input")
#: Classes of a failure that names no output path.
WITHOUT_PATHS = ("raised", "timeout", "accepted-invalid-input")
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
        _check_expectation(path, i, entry)
    return entries


def _strings(value) -> list[str] | None:
    """``value`` as a non-empty list of non-empty strings (a string is one), or None."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        return None
    return values


def _check_expectation(path: Path, i: int, entry: dict) -> None:
    where = f"{path}: expected_failure #{i} ({entry['test']})"
    if "class" not in entry:
        raise pytest.UsageError(f"{where} lacks class: the failure class it expects, one or a list of "
                                f"{', '.join(CLASSES)}")
    classes = _strings(entry["class"])
    if classes is None or set(classes) - set(CLASSES):
        raise pytest.UsageError(f"{where} has class {entry['class']!r}; expected one or a list of "
                                f"{', '.join(CLASSES)}")
    if "outputs" not in entry and "message" not in entry:
        raise pytest.UsageError(f"{where} says neither outputs (globs of the output paths allowed to differ) nor "
                                f"message (a regular expression the failure's message matches)")
    if "outputs" in entry and _strings(entry["outputs"]) is None:
        raise pytest.UsageError(f"{where} has outputs {entry['outputs']!r}; expected a glob or a non-empty list of "
                                f"globs of output paths")
    if "message" in entry:
        if not isinstance(entry["message"], str) or not entry["message"]:
            raise pytest.UsageError(f"{where} has message {entry['message']!r}; expected a regular expression")
        try:
            re.compile(entry["message"])
        except re.error as err:
            raise pytest.UsageError(f"{where} has message {entry['message']!r}, not a regular expression: "
                                    f"{err}") from None
    elif set(classes) <= set(WITHOUT_PATHS):
        raise pytest.UsageError(f"{where} expects class {entry['class']!r}, a failure without output paths: "
                                f"give message")


def applies(entry: dict, dtype: str, device: str = "cpu", world_size: int = 1) -> bool:
    """Whether an entry is expected in a run of ``dtype`` (``"float32"``, ...) on ``device`` (``"cpu"``, ``"cuda"``)
    with ``world_size`` ranks (an entry without ``ranks`` applies to any)."""
    ranks = entry.get("ranks")
    return (dtype in entry.get("dtypes", DTYPE_NAMES) and device in entry.get("devices", DEVICE_NAMES)
            and (ranks is None or ranks == ("one" if world_size == 1 else "several")))


class KnownDifferenceObserved(Exception):
    """A test failed as its known difference expects (what the strict xfail of the entry waits for)."""


class FailedDifferently(AssertionError):
    """A test with a known difference failed, but not as the entry expects."""


@dataclass(frozen=True)
class Known:
    """One entry as applied to a test: ``where`` is ``<file> #<index>``."""

    where: str
    entry: dict

    def describe(self) -> str:
        e = self.entry
        parts = [f"class {e['class']!r}"] + [f"{k} {e[k]!r}" for k in ("outputs", "message") if k in e]
        return f"{self.where} ({e['test']}: {', '.join(parts)})"


KNOWN = pytest.StashKey[Known]()


def _leaves(err: BaseException) -> list[BaseException]:
    if isinstance(err, BaseExceptionGroup):
        return [leaf for sub in err.exceptions for leaf in _leaves(sub)]
    return [err]


def difference(entry: dict, err: BaseException) -> str | None:
    """None when ``err`` is the failure ``entry`` expects; otherwise how it differs (one line)."""
    from hypothesis.errors import Flaky
    if isinstance(err, Flaky):
        return f"hypothesis found the failure flaky ({type(err).__name__})"
    leaves = _leaves(err)
    for leaf in leaves:
        how = _leaf_difference(entry, leaf)
        if how is not None:
            return how if len(leaves) == 1 else f"one of {len(leaves)} distinct failures: {how}"
    return None


def _leaf_difference(entry: dict, err: BaseException) -> str | None:
    from .runner import ConformanceFailure
    if isinstance(err, ConformanceFailure):
        kind, paths, message = err.kind, err.paths, str(err)
    else:
        kind, paths, message = "raised", (), f"{type(err).__name__}: {err}"
    classes = _strings(entry["class"])
    if kind not in classes:
        return f"class {kind}, expected {' or '.join(classes)}"
    if "outputs" in entry:
        globs = _strings(entry["outputs"])
        if not paths:
            return f"no output path differs (a {kind} failure), expected differences in {', '.join(globs)} only"
        others = [p for p in paths if not any(fnmatch.fnmatchcase(p, g) for g in globs)]
        if others:
            return f"{', '.join(others)} also differ{'s' if len(others) == 1 else ''}, expected {', '.join(globs)} only"
    if "message" in entry and not re.search(entry["message"], message):
        return f"its message does not match {entry['message']!r}"
    return None


def observe(known: Known, err: Exception) -> Exception:
    """The exception a test with known difference ``known`` raises for its failure ``err``:
    :class:`KnownDifferenceObserved` when it is the expected failure, else :class:`FailedDifferently`."""
    how = difference(known.entry, err)
    text = str(err) if not isinstance(err, BaseExceptionGroup) else "; ".join(str(e) for e in _leaves(err))
    if how is None:
        return KnownDifferenceObserved(f"failed as its known difference {known.where} expects: {text}")
    return FailedDifferently(f"failed differently from its known difference {known.describe()}: {how}\n{text}")


def short_id(item: pytest.Item) -> str:
    return f"{Path(str(item.fspath)).name}::{item.name}"


def apply_known_differences(path: Path, items: list[pytest.Item], dtype: str = "float32",
                            device: str = "cpu", world_size: int = 1) -> list[str]:
    """Mark matching items as strict xfails (``raises=KnownDifferenceObserved``) in a run of ``dtype`` on
    ``device`` with ``world_size`` ranks, each with its entry in ``item.stash[KNOWN]``; return the entries for
    this run that matched nothing. Where several entries match a test, the first in the file is its entry (a narrower
    one first: CPU half precision before every device's)."""
    entries = [(i, e) for i, e in enumerate(load_known_differences(path)) if applies(e, dtype, device, world_size)]
    used = set()
    for item in items:
        sid = short_id(item)
        matching = [(i, entry) for i, entry in entries if sid.startswith(entry["test"])]
        used.update(i for i, _ in matching)
        if matching:
            i, entry = matching[0]
            item.stash[KNOWN] = Known(f"{path.name} #{i}", entry)
            item.add_marker(pytest.mark.xfail(strict=True, raises=KnownDifferenceObserved,
                                              reason=f"[{entry['category']}] {entry['reason']} ({entry['link']})"))
    return [e["test"] for i, e in entries if i not in used]
