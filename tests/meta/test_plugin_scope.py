"""The plugin acts only in a session that runs the conformance suite: a project in the same environment with
its own --device and --dtype options, its own hypothesis profile and torch's TF32 default is unaffected, and
the suite still runs by name (``pytest conformance``, ``pytest --pyargs conformance``, ``--impl=...``)."""

from __future__ import annotations

import pytest

from conformance.plugin import CONFORMANCE_DIR, runs_conformance

TOY_CONFTEST = """
import hypothesis

hypothesis.settings.register_profile("toy", max_examples=7)
hypothesis.settings.load_profile("toy")


def pytest_addoption(parser):
    parser.addoption("--device", default="toy-device")
    parser.addoption("--dtype", default="toy-dtype")
"""

TOY_TESTS = """
import hypothesis
import torch


def test_its_own_options(request):
    assert request.config.getoption("device") == "toy-device"
    assert request.config.getoption("dtype") == "toy-dtype"


def test_its_own_profile_and_torch_defaults():
    assert hypothesis.settings.default.max_examples == 7
    assert torch.backends.cudnn.allow_tf32 is True
"""


def test_a_project_with_its_own_options_is_unaffected(pytester):
    # A subprocess, as the project's own pytest: detconf's entry point is installed in this environment.
    pytester.makeconftest(TOY_CONFTEST)
    pytester.makepyfile(test_toy=TOY_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert "detconf conformance" not in result.stdout.str()


def test_the_suite_still_runs_by_name(pytester):
    pytester.mkdir("elsewhere")
    pytester.chdir()
    result = pytester.runpytest_subprocess("--pyargs", "conformance", "-p", "no:cacheprovider", "-k",
                                           "test_golden and boxes.area", "--rootdir", str(pytester.path / "elsewhere"))
    result.assert_outcomes(passed=2)
    assert "detconf conformance: impl oracle" in result.stdout.str()


@pytest.mark.parametrize("targets, args, pyargs, runs", [
    (["conformance"], [], False, True),
    ([str(CONFORMANCE_DIR / "test_boxes.py") + "::test_golden"], [], False, True),
    (["conformance"], [], True, True), (["tests"], ["--impl=mmdet"], False, True),
    (["tests"], ["--impl", "mmdet"], False, True), (["."], [], False, True),
    (["tests"], [], False, False), ([], [], False, False), (["tests"], ["-k", "conformance"], False, False),
    (["tests"], [], True, False), (["elsewhere/conformance"], [], False, False),
])
def test_which_sessions_run_the_suite(targets, args, pyargs, runs, monkeypatch):
    monkeypatch.chdir(CONFORMANCE_DIR.parent)  # this checkout's root: "." contains the suite
    assert runs_conformance(targets, targets + args, pyargs=pyargs) is runs
