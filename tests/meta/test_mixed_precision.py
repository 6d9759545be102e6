"""--autocast: the candidate runs on float32 inputs inside torch.autocast, as mixed-precision training does; a
matcher whose cost goes wrong in the autocast dtype is caught there (and only there)."""

from __future__ import annotations

import pytest

from .suite_runs import faulty, outcomes, run_suite

SATURATED = "test_golden and assign.hungarian/edge-one-saturated-query"


def test_a_matcher_that_computes_its_cost_in_half_under_autocast_is_caught(pytester):
    result, report = run_suite(pytester, faulty("focal_cost_in_autocast_dtype"), "-k", SATURATED)
    assert set(outcomes(report).values()) == {("passed", None)}, result.stdout.str()[-3000:]
    result, report = run_suite(pytester, faulty("focal_cost_in_autocast_dtype"), "--autocast=float16", "-k", SATURATED)
    (got,) = outcomes(report).values()
    assert got[0] == "failed", result.stdout.str()[-3000:]
    assert "not optimal" in result.stdout.str() or "invalid" in result.stdout.str(), result.stdout.str()[-3000:]
    assert report["header"]["autocast"] == "float16"


def test_autocast_runs_of_the_reference_pass_and_say_how_they_were_judged(pytester):
    result, report = run_suite(pytester, "oracle", "--autocast=bfloat16", "-k",
                               "test_golden and (assign.hungarian or transformer.encoder)")
    assert set(outcomes(report).values()) == {("passed", None)}, result.stdout.str()[-3000:]
    # the reference computes in float64 whatever autocast says: every output is the float32 run's
    notes = {n for t in report["tests"] for n in t["notes"] if n.startswith("autocast")}
    assert notes == {"autocast bfloat16: every output bit-identical to the float32 run, judged as float32"}


@pytest.mark.parametrize("args, message", [
    (("--autocast=bfloat16", "--dtype=float16"), "--autocast=bfloat16 runs the candidate on float32 inputs"),
    (("--autocast=bfloat16", "--world-size=2"), "--autocast and --world-size are run separately"),
])
def test_autocast_usage_errors(pytester, args, message):
    result, _ = run_suite(pytester, "oracle", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR and message in result.stderr.str()
