"""A known difference says what it expects (conformance/known.py): the test is xfailed when it fails that way and
fails, naming the entry, when it fails any other way."""

from __future__ import annotations

import pytest

from conformance.known import FailedDifferently, Known, KnownDifferenceObserved, difference, observe
from conformance.runner import ConformanceFailure

from .suite_runs import faulty, outcomes, run_suite

GOLDEN = ("-k", "test_golden and giou-detr-pairwise")


def test_a_test_that_fails_as_its_known_difference_expects_is_xfailed(pytester):
    # The entry: internal-precision on value and grad.boxes*, which is what the wrong eps gives at float64.
    _, report = run_suite(pytester, faulty("wrong_giou_eps_known"), "--dtype=float64", *GOLDEN)
    (test,) = report["tests"]
    assert (test["outcome"], test["class"]) == ("xfailed", "internal-precision")
    assert test["paths"] == ["grad.boxes1", "grad.boxes2", "value"]
    assert test["reason"].startswith("[convention-not-modelled] the test adapter always adds DINO's 1e-6")


def test_a_test_that_fails_otherwise_fails_naming_its_known_difference(pytester):
    # The same entry; the adapter also returns a NaN, so the failure is non-finite (before the entries said what
    # they expect, this test was xfailed on the entry).
    result, report = run_suite(pytester, faulty("wrong_giou_eps_nan_known"), "--dtype=float64", *GOLDEN)
    assert outcomes(report) == {"test_golden[boxes.overlap/giou-detr-pairwise]": ("failed", "non-finite")}
    message = report["tests"][0]["message"]
    assert message.startswith("failed differently from its known difference known_wrong_giou.toml #0 "
                              "(test_boxes.py::test_golden[boxes.overlap/giou-detr-pairwise]: class "
                              "'internal-precision', outputs ['value', 'grad.boxes*']): class non-finite, "
                              "expected internal-precision")
    assert "non-finite where the reference is finite: value" in message  # the failure itself follows
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_generated_test_is_judged_on_hypothesis_final_failure(pytester):
    _, report = run_suite(pytester, faulty("wrong_giou_eps_nan_generated_known"), "--dtype=float64", "-k",
                          "test_overlap_generated and detr-giou and not hf_ and not deformable")
    (test,) = report["tests"]
    assert (test["outcome"], test["class"]) == ("failed", "non-finite")
    assert test["message"].startswith("failed differently from its known difference "
                                      "known_wrong_giou_generated.toml #0")


ENTRY = {"test": "t", "class": ["precision", "semantic"], "outputs": ["value", "losses.loss_giou*"]}


@pytest.mark.parametrize(("err", "how"), [
    (ConformanceFailure("m", "semantic", ("losses.loss_giou", "value")), None),
    (ConformanceFailure("m", "precision", ("losses.loss_giou_0",)), None),
    (ConformanceFailure("m", "non-finite", ("value",)), "class non-finite, expected precision or semantic"),
    (ConformanceFailure("m", "semantic", ("value", "grad.boxes1")),
     "grad.boxes1 also differs, expected value, losses.loss_giou* only"),
    (ConformanceFailure("m", "semantic", ()), "no output path differs (a semantic failure), expected differences "
                                              "in value, losses.loss_giou* only"),
    (ValueError("no targets"), "class raised, expected precision or semantic"),
])
def test_a_failure_matches_when_its_class_and_every_differing_path_are_the_entrys(err, how):
    assert difference(ENTRY, err) == how


def test_a_raised_exception_is_matched_by_its_type_and_message():
    entry = {"test": "t", "class": "raised", "message": '^NotImplementedError: "cdist" not implemented'}
    assert difference(entry, NotImplementedError('"cdist" not implemented for \'Half\'')) is None
    assert difference(entry, RuntimeError('"cdist" not implemented')) == \
        f"its message does not match {entry['message']!r}"
    known = Known("lib.toml #3", entry)
    assert isinstance(observe(known, NotImplementedError('"cdist" not implemented')), KnownDifferenceObserved)
    other = observe(known, ConformanceFailure("m", "non-finite", ("cost",)))
    assert isinstance(other, FailedDifferently)
    assert str(other).startswith("failed differently from its known difference lib.toml #3 (t: class 'raised', "
                                 "message '^NotImplementedError: \"cdist\" not implemented'): class non-finite, "
                                 "expected raised")


def test_several_distinct_failures_match_only_when_each_is_the_expected_one():
    # hypothesis raises an ExceptionGroup when it finds several distinct failures.
    expected = ConformanceFailure("m", "semantic", ("value",))
    assert difference(ENTRY, ExceptionGroup("two", [expected, expected])) is None
    assert difference(ENTRY, ExceptionGroup("two", [expected, KeyError("x")])) == \
        "one of 2 distinct failures: class raised, expected precision or semantic"
    from hypothesis.errors import FlakyFailure
    assert difference(ENTRY, FlakyFailure("flaky", [expected])).startswith("hypothesis found the failure flaky")


BASE = 'test = "x"\ncategory = "precision"\nreason = "r"\nlink = "l"\n'


@pytest.mark.parametrize(("fields", "error"), [
    ('outputs = "value"\n', "lacks class"),
    ('class = "wrong"\noutputs = "value"\n', "has class 'wrong'"),
    ('class = []\noutputs = "value"\n', "has class []"),
    ('class = "semantic"\n', "says neither outputs"),
    ('class = "semantic"\noutputs = []\n', "has outputs []"),
    ('class = "semantic"\noutputs = [1]\n', "has outputs [1]"),
    ('class = "raised"\noutputs = "value"\n', "a failure without output paths: give message"),
    ('class = "raised"\nmessage = "("\n', "not a regular expression"),
    ('class = "raised"\nmessage = ""\n', "has message ''"),
])
def test_an_entry_must_say_what_it_expects(tmp_path, fields, error):
    from conformance.known import load_known_differences
    path = tmp_path / "k.toml"
    path.write_text('[[expected_failure]]\ntest = "ok"\ncategory = "precision"\nreason = "r"\nlink = "l"\n'
                    'class = "precision"\noutputs = "value"\n\n[[expected_failure]]\n' + BASE + fields)
    with pytest.raises(pytest.UsageError) as raised:
        load_known_differences(path)
    assert str(raised.value).startswith(f"{path}: expected_failure #1 (x) ") and error in str(raised.value)


def test_every_built_in_known_difference_says_what_it_expects():
    from pathlib import Path

    import conformance
    from conformance.known import load_known_differences
    files = sorted((Path(conformance.__file__).parent / "adapters" / "known_differences").glob("*.toml"))
    from conformance.onnx.sources import SOURCES
    sources = {f"onnx-{name}" for name, source in SOURCES.items() if source.library}
    assert {f.stem for f in files} == {"mmdet", "onnx", "torchvision", "transformers", "ultralytics"} | sources
    for path in files:
        assert all("class" in e and ("outputs" in e or "message" in e) for e in load_known_differences(path))
