"""The suite's power: run the conformance suite on every registered fault (tests/meta/faults.py) and tabulate which
checks catch it.

    python -m tests.meta.power [--components C ...] [--faults NAME ...] [--profile ci|dev] [--write docs/suite-power.md]
                               [--json R.json] [--merge EARLIER.json ...]

Each fault runs in its own process, with ``CI=1``: ``python -m pytest conformance
--impl=py:tests.meta.faults:NAME -k <the component's tests> --conformance-report=R.json -p no:cacheprovider
-p tests.meta.power_profiles --hypothesis-profile=P-no-shrink`` (tests/meta/power_profiles.py: profile P without
shrinking, which decides nothing here). A component's tests are
its golden cases (ids ``test_golden[component/...]``) and the generated tests that call it (read from
conformance/test_*.py: :func:`generated_tests`); only the report's records of that component count. A fault is
caught when one of them fails. One progress line per fault goes to stderr.

A full run takes hours on a small machine; ``--merge`` takes the results of earlier runs (their ``--json``) for the
registered faults this run does not select, so one table covers the registry, each row with the commit it ran at
(``--faults`` with no name runs none: the table of the merged runs alone).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime
import fnmatch
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "conformance"


def generated_tests() -> dict[str, list[tuple[str, str]]]:
    """``{component: [(test function, id keyword), ...]}`` of the generated tests: each test function of
    conformance/test_*.py calling ``detconf.check_generated(COMPONENT, ...)``. A component written as an f-string
    (``f"losses.{name}"``) maps to every component with that prefix, the rest being a keyword of the test's id."""
    from components.contract import COMPONENTS
    out: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(SUITE.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test_"):
                continue
            for call in ast.walk(node):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                        and call.func.attr == "check_generated" and call.args):
                    continue
                arg = call.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    out.setdefault(arg.value, []).append((node.name, ""))
                elif isinstance(arg, ast.JoinedStr) and isinstance(arg.values[0], ast.Constant):
                    prefix = arg.values[0].value
                    for name in COMPONENTS:
                        if name.startswith(prefix):
                            out.setdefault(name, []).append((node.name, name[len(prefix):]))
    return out


def selection(component: str, generated: dict[str, list[tuple[str, str]]]) -> str:
    """The ``-k`` expression of a component's tests."""
    terms = [f"{component}/"] + [f"({fn} and {kw})" if kw else fn for fn, kw in generated.get(component, [])]
    return " or ".join(terms)


@dataclass
class Result:
    fault: str
    component: str
    kind: str
    what: str
    run: int = 0
    caught: list[tuple[str, str]] = field(default_factory=list)  # (test id, class)
    error: str = ""
    seconds: float = 0.0
    commit: str = ""  # the project's commit the fault ran at (git describe: "-dirty" for uncommitted changes)
    field_read: bool | None = None  # a convention mutant: whether a formula read its field (None: not known)
    dtype: str = "float32"  # the run's --dtype (the fault's own)

    @property
    def equivalence(self) -> str | None:
        """Why the mutant is no fault, if it is none: no check's formula read its field (it changes nothing the suite
        runs), or the reason tests/meta/faults.py ``EQUIVALENT_IN_EFFECT`` gives for it (read, but unable to change
        what a check compares)."""
        if self.field_read is False:
            return "no check reads the field"
        from .faults import equivalent_in_effect
        return equivalent_in_effect(self.fault)

    @property
    def equivalent(self) -> bool:
        """An equivalent mutant (:attr:`equivalence`) that no check caught: left out of the count."""
        return not self.caught and self.equivalence is not None

    @property
    def wrong_equivalence(self) -> bool:
        """A mutant listed as equivalent in effect that a check caught: the listed reason is wrong. (A caught
        mutant that no formula read is simply caught: one whose field only validation reads, and which the
        candidate's validation refuses where the reference computes.)"""
        from .faults import equivalent_in_effect
        return bool(self.caught) and equivalent_in_effect(self.fault) is not None

    @property
    def rate(self) -> float:
        return len(self.caught) / self.run if self.run else 0.0

    @property
    def by_generated(self) -> bool:
        return any("test_golden[" not in t for t, _ in self.caught)


def run_fault(fault, profile: str, generated, timeout: float = 1800.0) -> Result:
    """Run the suite on one fault (a subprocess) and read its report."""
    result = Result(fault.name, fault.component, fault.kind, fault.what, dtype=fault.dtype)
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        from .faults import READS_FILE
        report, reads = Path(tmp) / "report.json", Path(tmp) / "reads.txt"
        cmd = [sys.executable, "-m", "pytest", str(SUITE), f"--impl=py:tests.meta.faults:{fault.name}",
               "-k", selection(fault.component, generated), f"--conformance-report={report}",
               "-p", "no:cacheprovider", "-p", "tests.meta.power_profiles", f"--hypothesis-profile={profile}-no-shrink",
               f"--dtype={fault.dtype}", "-q"]
        env = {**os.environ, "CI": "1", READS_FILE: str(reads), "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                                              os.environ.get("PYTHONPATH")]))}
        try:
            done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            result.error = f"timed out after {timeout:g} s"
        else:
            if not report.exists():
                result.error = f"no report (pytest exit {done.returncode}): {(done.stdout + done.stderr)[-300:]}"
        if report.exists():
            records = [t for t in json.loads(report.read_text())["tests"] if t.get("component") == fault.component]
            ran = [t for t in records if t["outcome"] in ("passed", "failed")]
            result.run = len(ran)
            result.caught = [(t["test"].split("::", 1)[1], t.get("class") or "?") for t in ran
                             if t["outcome"] == "failed"]
        if fault.notes_reads and not result.error:
            result.field_read = reads.exists() and bool(reads.read_text().strip())
    result.seconds = time.monotonic() - start
    return result


def current_commit() -> str:
    """``git describe --always --dirty --abbrev=7`` of the project, or ``"unknown"`` outside a checkout."""
    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=7"], cwd=REPO,
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() or "unknown"


def load_results(path: Path) -> list[Result]:
    """The results a ``--json`` file holds (``rate`` and ``by_generated`` are recomputed)."""
    names = {f.name for f in dataclasses.fields(Result)}
    return [Result(**{k: (v if k != "caught" else [tuple(c) for c in v]) for k, v in record.items() if k in names})
            for record in json.loads(Path(path).read_text())]


def _classes(caught: list[tuple[str, str]]) -> str:
    by: dict[str, int] = {}
    for _, cls in caught:
        by[cls] = by.get(cls, 0) + 1
    return ", ".join(f"{n} {c}" for c, n in sorted(by.items()))


def _tests(caught: list[tuple[str, str]], limit: int = 3) -> str:
    names = [f"`{t}`" for t, _ in caught[:limit]]
    return ", ".join(names) + (f" (+{len(caught) - limit})" if len(caught) > limit else "")


def markdown(results: list[Result], *, command: str, profile: str, seconds: float) -> str:
    """The table, per-component summary, faults caught by golden cases only, and the uncaught ones."""
    today = datetime.date.today().isoformat()
    caught = [r for r in results if r.caught]
    equivalent = [r for r in results if r.equivalent]
    commits: dict[str, int] = {}
    for r in results:
        commits[r.commit or "unknown"] = commits.get(r.commit or "unknown", 0) + 1
    at = ", ".join(f"{n} at {c}" for c, n in commits.items())
    lines = ["# The suite's power: faulty implementations and the checks that catch them", "",
             f"Generated by `{command}` on {today} (hypothesis profile {profile} without shrinking, dtype float32 "
             "unless a row's kind names another, "
             f"one process; {len(results)} faults, {sum(r.seconds for r in results) / 60:.1f} min of runs: {at}; "
             f"this run {seconds / 60:.1f} min). Faults: tests/meta/faults.py. A fault is caught when one of its "
             "component's checks fails; the catch rate is failed / run.", "",
             f"**Caught: {len(caught)} / {len(results) - len(equivalent)}** ({len(equivalent)} equivalent mutants "
             "left out: convention fields that no check's formula reads, such as the CIoU fields where only GIoU is "
             "computed, and fields read where they cannot change what a check compares, each with its reason in "
             "tests/meta/faults.py `EQUIVALENT_IN_EFFECT`; listed at the end).", "",
             "| component | fault | kind | checks run | checks that caught it (failed) | catch rate | by a generated "
             "test? | commit |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        found = f"{len(r.caught)}: {_classes(r.caught)}; {_tests(r.caught)}" if r.caught else \
            f"equivalent: {r.equivalence}" if r.equivalent else \
            ("**none**" + (f" ({r.error})" if r.error else ""))
        kind = r.kind if r.dtype == "float32" else f"{r.kind} ({r.dtype} run)"
        lines.append(f"| {r.component} | `{r.fault}` | {kind} | {r.run} | {found} | {r.rate:.2f} | "
                     f"{'yes' if r.by_generated else 'no'} | {r.commit or 'unknown'} |")
    lines += ["", "## Per component", "", "| component | faults caught / total (equivalent mutants left out) |",
              "|---|---|"]
    for component in sorted({r.component for r in results}):
        rs = [r for r in results if r.component == component and not r.equivalent]
        lines.append(f"| {component} | {sum(1 for r in rs if r.caught)} / {len(rs)} |")
    golden_only = [r for r in caught if not r.by_generated]
    lines += ["", "## Caught by golden cases only", ""]
    lines += [f"- `{r.fault}` ({r.component}): {r.what}" for r in golden_only] or ["None."]
    lines += ["", "## Not caught", ""]
    lines += [f"- `{r.fault}` ({r.component}, {r.kind}, {r.run} checks run): {r.what}"
              + (f" -- {r.error}" if r.error else "")
              for r in results if not r.caught and not r.equivalent] or ["None."]
    wrong = [r for r in results if r.wrong_equivalence]
    if wrong:
        lines += ["", "## Listed as equivalent in effect, but caught: the reason is wrong", ""]
        from .faults import equivalent_in_effect
        lines += [f"- `{r.fault}` ({r.component}): {equivalent_in_effect(r.fault)}" for r in wrong]
    lines += ["", "## Equivalent mutants", ""]
    lines += [f"- `{r.fault}` ({r.component}): {r.equivalence}" for r in equivalent] or ["None."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.meta.power", description=__doc__.splitlines()[0])
    parser.add_argument("--components", nargs="*", default=None, metavar="GLOB",
                        help="components to run (globs: losses.*); default every one")
    parser.add_argument("--faults", nargs="*", default=None, metavar="GLOB", help="fault names to run (globs)")
    parser.add_argument("--profile", default="ci", choices=("ci", "dev"), help="hypothesis profile (default ci)")
    parser.add_argument("--write", default=None, metavar="PATH", help="write the markdown table here")
    parser.add_argument("--json", default=None, metavar="PATH", help="write the results as JSON here")
    parser.add_argument("--merge", nargs="*", default=(), metavar="JSON",
                        help="earlier runs' --json results: taken for the registered faults this run does not select "
                             "(a later file wins over an earlier one)")
    parser.add_argument("--list", action="store_true", help="list the selected faults and exit")
    args = parser.parse_args(argv)
    from .faults import FAULTS

    def chosen(name: str, globs) -> bool:
        return globs is None or any(fnmatch.fnmatchcase(name, g) for g in globs)
    faults = [f for f in FAULTS.values() if chosen(f.component, args.components) and chosen(f.name, args.faults)]
    faults.sort(key=lambda f: (f.component, f.kind != "convention field", f.name))
    if args.list:
        for f in faults:
            print(f"{f.component:32s} {f.kind:18s} {f.name}")
        return 0
    earlier: dict[str, Result] = {}
    for path in args.merge:
        earlier.update({r.fault: r for r in load_results(Path(path)) if r.fault in FAULTS})
    selected = {f.name for f in faults}
    order = {name: i for i, name in enumerate(sorted(
        FAULTS, key=lambda n: (FAULTS[n].component, FAULTS[n].kind != "convention field", n)))}
    kept = [r for name, r in earlier.items() if name not in selected]
    commit = current_commit()
    generated = generated_tests()
    results, start = [], time.monotonic()

    def table() -> list[Result]:
        return sorted(results + kept, key=lambda r: order[r.fault])
    command = "python -m tests.meta.power " + " ".join(argv if argv is not None else sys.argv[1:])

    def write(partial: bool) -> None:
        # After every fault, so that a long run interrupted leaves the table of the faults it finished.
        text = markdown(table(), command=command.strip(), profile=args.profile, seconds=time.monotonic() - start)
        if partial:
            text = text.replace("\n\n", f"\n\n**Partial: {len(results)} of {len(faults)} selected faults run.**\n\n", 1)
        missing = len(FAULTS) - len(table())
        if missing and args.merge:
            text = text.replace("\n\n", f"\n\n**{missing} of the {len(FAULTS)} registered faults are in no run merged "
                                          "here.**\n\n", 1)
        if args.write:
            Path(args.write).write_text(text)
        elif not partial:
            print(text)
        if args.json:
            Path(args.json).write_text(json.dumps([r.__dict__ | {"rate": r.rate, "by_generated": r.by_generated}
                                                   for r in table()], indent=1) + "\n")

    for i, fault in enumerate(faults, 1):
        r = run_fault(fault, args.profile, generated)
        r.commit = commit
        results.append(r)
        verdict = (f"caught by {len(r.caught)}/{r.run}" if r.caught else f"equivalent ({r.equivalence})"
                   if r.equivalent else f"NOT CAUGHT ({r.run} run){' ' + r.error if r.error else ''}")
        print(f"[{i}/{len(faults)}] {fault.name}: {verdict} ({r.seconds:.0f} s)", file=sys.stderr, flush=True)
        if i < len(faults):
            write(partial=True)
    elapsed = time.monotonic() - start
    write(partial=False)
    uncaught = [r.fault for r in table() if not r.caught and not r.equivalent]
    counted = [r for r in table() if not r.equivalent]
    print(f"caught {len(counted) - len(uncaught)} / {len(counted)} in {elapsed:.0f} s; not caught: "
          f"{', '.join(uncaught) or 'none'}", file=sys.stderr)
    wrong = [r.fault for r in table() if r.wrong_equivalence]
    if wrong:
        print(f"listed as equivalent in effect (tests/meta/faults.py EQUIVALENT_IN_EFFECT) but caught: "
              f"{', '.join(wrong)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
