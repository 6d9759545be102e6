"""The suite survives what a user's adapter, a forged fixture or a parallel run does to it: every usage error is
one line and exit status 4, a hanging call fails as a timeout, a call that ends its process fails its test and
the run goes on (pytest-xdist), parallel runs give the serial run's outcomes, and saved examples and reports
of one run are never overwritten by another."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import golden
from conformance.runner import save_failure
from golden import FixtureError

from .suite_runs import faulty, outcomes, run_suite, run_suite_subprocess


def assert_one_line_usage_error(result, expected: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-2000:]
    errors = [line for line in result.stderr.lines if line.startswith("ERROR: ")]
    assert len(errors) == 1 and expected in errors[0], result.stderr.str()
    text = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in text and "Traceback" not in text, text[-3000:]


@pytest.mark.parametrize("source, expected", [
    ("def make_adapter(:\n    pass\n", "cannot import user_adapter (SyntaxError: invalid syntax"),
    ("raise RuntimeError('no licence\\nfound')\n", "cannot import user_adapter (RuntimeError: no licence found)"),
    ("def make_adapter():\n    raise RuntimeError('no GPU')\n",
     "--impl=py:user_adapter:make_adapter: the adapter factory raised RuntimeError: no GPU"),
    ("def make_adapter():\n    return 3\n", "returned int, expected a conformance.adapters.Adapter"),
], ids=["syntax-error", "import-raises", "factory-raises", "factory-returns-junk"])
def test_an_adapter_that_cannot_load_is_a_usage_error(pytester, source, expected):
    pytester.makepyfile(user_adapter=source)
    pytester.syspathinsert()
    result, _ = run_suite(pytester, "py:user_adapter:make_adapter")
    assert_one_line_usage_error(result, expected)


def test_unknown_hypothesis_profile_is_a_usage_error(pytester):
    result, _ = run_suite(pytester, "oracle", "--hypothesis-profile=nightly")
    assert_one_line_usage_error(result, "--hypothesis-profile: unknown hypothesis profile 'nightly'; the suite's are "
                                        "dev, ci, thorough")


def test_a_bad_replay_file_is_a_usage_error(pytester):
    unknown = save_failure("t", "boxes.volume", {"boxes": torch.zeros(1, 4)}, {}, "detr", impl="x")
    result, _ = run_suite(pytester, "oracle", f"--conformance-replay={unknown}")
    assert_one_line_usage_error(result, "unknown component 'boxes.volume'; known: anchors.grid")
    junk = pytester.path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    result, _ = run_suite(pytester, "oracle", f"--conformance-replay={junk}")
    assert_one_line_usage_error(result, f"--conformance-replay={junk}: not a saved failing example (SafetensorError")
    result, _ = run_suite(pytester, "oracle", "--conformance-timeout=-1")
    assert_one_line_usage_error(result, "--conformance-timeout=-1: expected a number of seconds >= 0")


def test_a_report_another_run_is_writing_is_a_usage_error(pytester):
    report = pytester.path / "report.json"
    lock = report.with_name(".report.json.lock")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(str(other.pid))
        result, _ = run_suite(pytester, "oracle", "-k", "test_golden and boxes.area")
        assert_one_line_usage_error(result, f"--conformance-report={report}: another run (process {other.pid}) is "
                                            "writing this report")
    finally:
        other.kill()
        other.wait()
    # a lock left by a run that has ended is taken over, and released when this run ends
    result, report_data = run_suite(pytester, "oracle", "-k", "test_golden and boxes.area")
    assert result.ret == 0 and report_data["tests"] and not lock.exists()
    assert not list(pytester.path.glob(".*.partial"))  # written under a temporary name, then renamed


def test_a_hanging_call_fails_as_a_timeout_and_the_run_goes_on(pytester):
    start = time.monotonic()
    result, report = run_suite(pytester, faulty("hangs"), "--conformance-timeout=0.5", "-k",
                               "test_golden and (boxes.area or boxes.convert)")
    got = outcomes(report)
    areas = {k: v for k, v in got.items() if "boxes.area" in k}
    assert areas and set(areas.values()) == {("failed", "timeout")}, got
    assert {v for k, v in got.items() if k not in areas} == {("passed", None)}
    assert "ran past --conformance-timeout=0.5 s [timeout]" in result.stdout.str()
    assert time.monotonic() - start < 30 + 1.5 * len(areas)


def test_a_slow_but_correct_adapter_passes(pytester):
    # Its first call takes 2.5 s, beyond the dev profile's 2 s deadline: the suite runs without the deadline.
    result, report = run_suite(pytester, faulty("slow_first_call"), "-k", "test_overlap_generated and detr-iou")
    got = outcomes(report)
    assert got["test_overlap_generated[detr-iou]"] == ("passed", None), result.stdout.str()[-3000:]
    assert set(got.values()) == {("passed", None)} and result.ret == 0
    assert "hypothesis profile 'dev-no-deadline'" in result.stdout.str()


def test_a_call_that_ends_its_process_fails_its_test_and_the_run_goes_on(pytester, monkeypatch):
    # pytest-xdist replaces the worker the candidate ended; the test is a failure of class crashed.
    result, report = run_suite_subprocess(pytester, monkeypatch, faulty("kills_its_process"), "-n", "1", "-k",
                                          "test_golden and (boxes.area or boxes.convert)")
    got = outcomes(report)
    crashed = {k: v for k, v in got.items() if v == ("failed", "crashed")}
    assert crashed and all("boxes.area" in k for k in crashed), got
    assert ("passed", None) in got.values() and result.ret == 1
    assert result.stdout.str().count("detconf conformance summary") == 1
    assert re.search(r"boxes\.area +0 passed +\d+ failed \(\d+ crashed\)", result.stdout.str())


def test_a_parallel_run_gives_the_serial_outcomes_with_one_summary(pytester, monkeypatch):
    # One hypothesis seed for both: the same generated examples, so the same worst figures.
    select = ("--hypothesis-seed=1", "-k",
              "(test_golden and (boxes.overlap or boxes.area)) or (test_overlap_generated and giou)")
    serial, serial_report = run_suite_subprocess(pytester, monkeypatch, faulty("wrong_giou_eps"), *select,
                                                 report="serial.json")
    parallel, parallel_report = run_suite_subprocess(pytester, monkeypatch, faulty("wrong_giou_eps"), "-n", "2",
                                                     *select, report="parallel.json")
    assert outcomes(parallel_report) == outcomes(serial_report)
    assert ("failed", "semantic") in outcomes(serial_report).values()
    assert parallel_report["components"] == serial_report["components"]
    assert parallel.ret == serial.ret == 1
    assert parallel.stdout.str().count("detconf conformance summary") == 1
    assert "AttributeError" not in parallel.stdout.str() + parallel.stderr.str()


def test_saved_examples_are_named_by_run_and_example(pytester):
    # One failing example from two runs of other dtypes: two files, neither overwriting the other, each
    # replayed by its own printed command.
    paths = {}
    for dtype in ("float32", "float64"):
        result, _ = run_suite(pytester, faulty("greedy_matcher"), f"--dtype={dtype}", "-k",
                              "test_hungarian_generated and detr-tie-free")
        match = re.search(r"failing example saved to (\S+); replay: (pytest .*)$", result.stdout.str(), re.M)
        assert match, result.stdout.str()[-2000:]
        paths[dtype] = (Path(match.group(1)), match.group(2))
    (path32, replay32), (path64, _) = paths["float32"], paths["float64"]
    assert path32 != path64 and path32.is_file() and path64.is_file()
    assert "greedy_matcher/float32-cpu/assign.hungarian/test_hungarian_generated_detr-tie-free-" in str(path32)
    assert f"--dtype=float32 --device=cpu --conformance-replay={path32}" in replay32
    args = replay32.split()[1:]
    result, report = run_suite(pytester, args[1].removeprefix("--impl="), *args[2:])
    assert [(t["outcome"], t.get("class")) for t in report["tests"]] == [("failed", "semantic")]


@pytest.fixture
def golden_copy(tmp_path) -> Path:
    """A copy of the golden fixtures to tamper with."""
    root = tmp_path / "golden"
    shutil.copytree(Path(golden.__file__).parent / "data", root / "data")
    shutil.copy(Path(golden.__file__).parent / "MANIFEST.json", root / "MANIFEST.json")
    return root


def _edit_manifest(root: Path, case: str, **fields) -> None:
    manifest = json.loads((root / "MANIFEST.json").read_text())
    for key, value in fields.items():
        if value is None:
            del manifest["cases"][case][key]
        else:
            manifest["cases"][case][key] = value
    (root / "MANIFEST.json").write_text(json.dumps(manifest))


CASE = "giou-detr-pairwise"


def _case(root: Path):
    (found,) = [c for c in golden.cases(root=root) if c.name.endswith(CASE) and c.component == "boxes.overlap"]
    return found


@pytest.mark.parametrize("field, value", [("profile", "mmdet"), ("component", "boxes.area"), ("seed", 7),
                                          ("tags", ["edge:forged"])])
def test_an_edited_identity_in_the_manifest_fails_loading_naming_the_case(golden_copy, field, value):
    name = _case(golden_copy).name
    _edit_manifest(golden_copy, name, **{field: value})
    (case,) = [c for c in golden.cases(root=golden_copy) if c.name == name]
    with pytest.raises(FixtureError, match=rf"case '{re.escape(name)}': MANIFEST.json's {field} .* is not the "
                                           r"fixture's own .*; the manifest was edited by hand"):
        case.load()


def test_an_edited_config_fails_loading_and_golden_check(golden_copy):
    case = _case(golden_copy)
    _edit_manifest(golden_copy, case.name, config={**case.config, "op": "iou"})
    (edited,) = [c for c in golden.cases(root=golden_copy) if c.name == case.name]
    with pytest.raises(FixtureError, match=rf"case '{re.escape(case.name)}': MANIFEST.json's config"):
        edited.load()
    from golden.cli import find_differences
    problems, _, _ = find_differences(golden_copy, case.name)
    assert [(p.case, p.what) for p in problems] == [(case.name, "metadata")]


def test_a_manifest_entry_without_its_file_names_the_case(golden_copy):
    name = _case(golden_copy).name
    _edit_manifest(golden_copy, name, file=None)
    with pytest.raises(FixtureError, match=rf"case '{re.escape(name)}' lacks file"):
        golden.cases(root=golden_copy)


def test_a_forged_output_fails_verification_at_every_dtype(golden_copy):
    # Outputs replaced and the sha256 recomputed: the file is consistent, its numbers are not the reference's.
    from golden.store import encode, read_case_file, sha256
    case = _case(golden_copy)
    tensors, case_json = read_case_file(case.path, case.entry)
    tensors["out.value"] = tensors["out.value"] * (1 + 1e-6)
    data = encode(tensors, case_json)
    case.path.write_bytes(data)
    _edit_manifest(golden_copy, case.name, sha256=sha256(data))
    (forged,) = [c for c in golden.cases(root=golden_copy) if c.name == case.name]
    forged.load()  # integrity of the file alone: consistent
    with pytest.raises(FixtureError, match=rf"case '{re.escape(case.name)}': its stored outputs are not the "
                                           r"reference's on its stored inputs"):
        forged.load(verify=True)


def test_examples_draw_no_constants_from_the_project_source():
    # A derandomized example must not move when a constant elsewhere in the project changes
    # (conformance/hypothesis_profiles.py): the pool hypothesis collects from local modules stays empty.
    from hypothesis.internal.conjecture import providers

    import conformance.strategies  # noqa: F401  (a local module full of constants)
    from conformance.hypothesis_profiles import register_profiles
    register_profiles()
    assert len(providers._get_local_constants()) == 0
    assert len(providers.GLOBAL_CONSTANTS) > 0  # the global ones (0, -1, inf, NaN, ...) stay
