"""The conformance suite catches faulty implementations, and classes each failure correctly.

Each test runs `pytest conformance` in-process (pytester) with a faulty adapter from
tests/meta/faulty_adapters.py and reads the JSON report.
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import torch

import golden
from components.contract import COMPONENTS
from ..conftest import require_executable

from .suite_runs import CI_NO_SHRINK, SUITE, faulty, outcomes, run_suite


def test_the_reference_passes_everything(pytester):
    result, report = run_suite(pytester, "oracle", "-k", "test_golden")
    result.assert_outcomes(passed=len(golden.cases()), deselected=None)
    assert all(t["outcome"] == "passed" for t in report["tests"])


def test_wrong_giou_eps_is_a_semantic_failure(pytester):
    # float32: DINO's 1e-6 moves GIoU by < 1e-5 on boxes 0.02-0.3 wide (below float32's atol), so it shows on
    # the cases with small or pixel-scale boxes; every failure is semantic and the DINO cases pass.
    result, report = run_suite(pytester, faulty("wrong_giou_eps"), "-k", "test_golden and boxes.overlap and giou")
    got = outcomes(report)
    for case in ("giou-detr-cxcywh-realistic", "giou-mmdet-pairwise", "edge-zero-area-giou-mmdet",
                 "edge-zero-area-giou-ultralytics"):
        assert got[f"test_golden[boxes.overlap/{case}]"] == ("failed", "semantic"), case
    assert got["test_golden[boxes.overlap/giou-dino-pairwise]"] == ("passed", None)  # DINO does add 1e-6
    assert "greatest absolute difference" in result.stdout.str()
    # float64: every GIoU case of a profile without DINO's eps fails, but for the torchvision-loss case in
    # pixels (eps 1e-6 instead of 1e-7 on areas ~1e4 px^2 is a 1e-10 relative change) and identical boxes.
    result, report = run_suite(pytester, faulty("wrong_giou_eps"), "--dtype=float64", "-k",
                               "test_golden and boxes.overlap and giou")
    got = outcomes(report)
    visible = [k for k in got if not any(s in k for s in ("dino", "identical", "pixels"))]
    # Where the eps moves the GIoU by less than float32's budget (identical boxes: 1 - 1e-6 for 1; boxes of unit
    # scale), a float64 run cannot tell it from a float32 computation: class internal-precision (docs/conformance.md);
    # the float32 run above classes the cases it checks semantic. Where the eps moves more, semantic.
    classes = {k: got[k] for k in visible}
    assert len(visible) >= 5 and all(v[0] == "failed" for v in classes.values()), classes
    assert all(v[1] in ("semantic", "internal-precision") for v in classes.values()), classes
    assert sum(v[1] == "semantic" for v in classes.values()) >= 3, classes
    assert got["test_golden[boxes.overlap/edge-identical-giou]"] == ("failed", "internal-precision")
    assert got["test_golden[boxes.overlap/giou-dino-pairwise]"] == ("passed", None)


def test_focal_normalised_by_the_wrong_count(pytester):
    result, report = run_suite(pytester, faulty("focal_wrong_count"), "-k",
                               "test_golden and set_criterion and (deformable or dino)")
    got = outcomes(report)
    failed = [k for k, v in got.items() if v == ("failed", "semantic")]
    assert "test_golden[criteria.set_criterion/random-dino-interm-dn]" in failed
    assert "test_golden[criteria.set_criterion/random-deformable_detr-enc]" in failed
    assert all(v[0] in ("passed", "failed") for v in got.values())
    assert "losses.loss_ce" in result.stdout.str()


#: The set-criterion checks of the dino profile whose input has no denoising part (no ``dn_meta``).
DINO_WITHOUT_DN = ("test_golden[criteria.set_criterion/edge-empty-targets-dino]",
                   "test_golden[criteria.set_criterion/edge-more-targets-than-queries-dino]",
                   "test_set_criterion_generated[dino]")


def test_dino_zero_denoising_keys_pass_under_dino_only(pytester):
    # DINO's criterion gives zero-valued _dn and _dn_{i} keys when the batch has no denoising part (dn_meta None):
    # the contract's rule "zero" accepts them under the dino profile; under any other they are unexpected names.
    args = ("-k", "set_criterion and (dino or random-detr or generated and detr)")
    result, report = run_suite(pytester, faulty("dino_zero_dn_keys"), *args)
    got = outcomes(report)
    dino = {k: v for k, v in got.items() if "dino" in k}
    others = {k: v for k, v in got.items() if "dino" not in k}
    assert set(DINO_WITHOUT_DN) <= set(dino) and set(dino.values()) == {("passed", None)}, dino
    assert len(others) >= 4 and set(others.values()) == {("failed", "semantic")}, others
    out = result.stdout.str()
    assert "losses.loss_ce_dn: not an output of criteria.set_criterion (unexpected name: the rule 'zero' for " \
           "losses.*_dn applies under profile(s) dino only, not 'detr')" in out
    assert "extra output(s) accepted" in json.dumps(report)


def test_non_zero_denoising_keys_fail_under_dino(pytester):
    result, report = run_suite(pytester, faulty("dino_nonzero_dn_keys"), "-k", "set_criterion and dino")
    got = outcomes(report)
    assert {k: got[k] for k in DINO_WITHOUT_DN} == {k: ("failed", "semantic") for k in DINO_WITHOUT_DN}, got
    assert "losses.loss_ce_dn: not an output of criteria.set_criterion (unexpected name: the rule 'zero' for " \
           "losses.*_dn under profile 'dino' rejects it (1 of 1 values not 0" in result.stdout.str()
    # with a denoising part (dn_meta) the reference gives the _dn keys itself: nothing extra, the check passes
    assert got["test_golden[criteria.set_criterion/random-dino-interm-dn]"] == ("passed", None)


def test_a_criterion_that_drops_the_encoder_proposals_fails_the_two_stage_test(pytester):
    # Following transformers' Deformable-DETR profile, whose golden and one-stage generated checks have no
    # enc_outputs: only the two-stage generated test shows the missing _enc terms.
    result, report = run_suite(pytester, faulty("criterion_drops_encoder_terms"), "-k", "set_criterion")
    got = outcomes(report)
    assert got["test_set_criterion_two_stage_generated[hf_deformable_detr]"] == ("failed", "semantic"), got
    assert got["test_golden[criteria.set_criterion/random-hf_deformable_detr]"] == ("passed", None)
    assert got["test_set_criterion_generated[hf_deformable_detr]"] == ("passed", None)
    assert "losses.loss_ce_enc: missing from the candidate's outputs" in result.stdout.str()


def test_greedy_matcher_is_not_optimal(pytester):
    result, report = run_suite(pytester, faulty("greedy_matcher"), "-k", "test_hungarian_generated and tie-free")
    got = outcomes(report)
    assert got and all(v == ("failed", "semantic") for v in got.values()), got
    text = result.stdout.str()
    assert "the matching is not optimal" in text or "must match target" in text
    assert f"replay: pytest {SUITE} --impl=" in text


@pytest.mark.parametrize(("adapter", "focal_only"), [
    ("matcher_alpha_hardcoded", True),  # alpha exists only in the focal cost: the softmax profiles cannot show it
    ("matcher_giou_weight_hardcoded", False),
])
def test_a_matcher_with_a_constant_for_a_config_number_fails(pytester, adapter, focal_only):
    # The generated problems draw the matcher's weights and focal parameters (config "matcher"): an optimal matcher
    # that keeps the default for one of them is not optimal under the drawn cost. It returns no cost matrix, so
    # the matching alone shows it. The ci profile's draws (derandomized), as CI runs them, unshrunk; which profiles'
    # draws make the field decide a matching is the draws' affair, so the claim is: some do, and no other failure.
    from oracle.conventions import get_profile, profiles_with
    focal = {p for p in profiles_with("matcher") if get_profile(p).matcher.class_cost == "focal"}
    result, report = run_suite(pytester, faulty(adapter), *CI_NO_SHRINK, "-k", "test_hungarian_generated and tie-free")
    got = outcomes(report)
    assert len(got) == len(profiles_with("matcher")), got
    failed = {t for t, v in got.items() if v != ("passed", None)}
    assert failed and all(got[t] == ("failed", "semantic") for t in failed), got
    if focal_only:
        assert {t.split("[")[1].split("-tie")[0] for t in failed} <= focal, got
    text = result.stdout.str()
    assert "the matching is not optimal" in text or "must match target" in text


@pytest.mark.parametrize(("adapter", "selection", "expected"), [
    # A probability clamp "for stability" (CenterNet's _sigmoid): shows only on logits beyond about 9.21.
    ("focal_cost_probability_clamp",
     "(test_hungarian_generated and dino-tie-free) or (test_hungarian_large_logits and dino)",
     {"test_hungarian_generated[dino-tie-free]": ("passed", None),
      "test_hungarian_large_logits[dino]": ("failed", "semantic")}),
    # transformers before it replaced non-finite costs: scipy refuses a NaN cost.
    ("matcher_raises_on_non_finite", "test_hungarian_non_finite and hf_detr",
     {"test_hungarian_non_finite[hf_detr-pred_logits]": ("failed", "raised"),
      "test_hungarian_non_finite[hf_detr-pred_boxes]": ("failed", "raised")}),
    # ultralytics' policy where the profile's is transformers': poisoned pairs matched first.
    ("non_finite_cost_zero", "test_hungarian_non_finite and hf_detr",
     {"test_hungarian_non_finite[hf_detr-pred_logits]": ("failed", "semantic"),
      "test_hungarian_non_finite[hf_detr-pred_boxes]": ("failed", "semantic")}),
])
def test_a_matcher_that_mishandles_large_or_non_finite_predictions_fails(pytester, adapter, selection, expected):
    result, report = run_suite(pytester, faulty(adapter), "--hypothesis-profile=ci", "-k", selection)
    assert outcomes(report) == expected, result.stdout.str()[-3000:]


#: A selection that names exactly these profiles' generated criterion tests (``-k`` matches substrings, so the
#: profiles chosen are not substrings of others' names: hf_detr, dino, ultralytics).
_CRITERION = "test_set_criterion_generated[{}]"
_HEAD = "test_mmdet_detr_head_generated[{}]"


@pytest.mark.parametrize(("adapter", "selection", "ids", "caught"), [
    # eos_coef is the softmax profiles' no-object weight; alpha and gamma belong to the focal losses.
    ("criterion_eos_coef_hardcoded", "test_set_criterion_generated and (hf_detr or dino)",
     (_CRITERION.format("hf_detr"), _CRITERION.format("dino")), (_CRITERION.format("hf_detr"),)),
    ("criterion_focal_alpha_hardcoded", "test_set_criterion_generated and (hf_detr or dino)",
     (_CRITERION.format("hf_detr"), _CRITERION.format("dino")), (_CRITERION.format("dino"),)),
    ("criterion_focal_gamma_hardcoded", "test_set_criterion_generated and ultralytics",
     (_CRITERION.format("ultralytics"),), (_CRITERION.format("ultralytics"),)),
    ("criterion_bbox_weight_hardcoded", "test_set_criterion_generated and hf_detr",
     (_CRITERION.format("hf_detr"),), (_CRITERION.format("hf_detr"),)),
    ("criterion_matcher_giou_weight_hardcoded", "test_set_criterion_generated and dino",
     (_CRITERION.format("dino"),), (_CRITERION.format("dino"),)),
    ("mmdet_detr_head_giou_weight_hardcoded", "test_mmdet_detr_head_generated and not deformable",
     (_HEAD.format("detr"),), (_HEAD.format("detr"),)),
    ("mmdet_detr_head_bg_cls_weight_hardcoded", "test_mmdet_detr_head_generated",
     (_HEAD.format("detr"), _HEAD.format("deformable_detr")), (_HEAD.format("detr"),)),
    ("mmdet_detr_head_focal_alpha_hardcoded", "test_mmdet_detr_head_generated and deformable",
     (_HEAD.format("deformable_detr"),), (_HEAD.format("deformable_detr"),)),
    ("mmdet_detr_head_matcher_giou_weight_hardcoded", "test_mmdet_detr_head_generated and not deformable",
     (_HEAD.format("detr"),), (_HEAD.format("detr"),)),
])
def test_a_criterion_with_a_constant_for_a_config_number_fails(pytester, adapter, selection, ids, caught):
    # The generated criterion tests draw the loss weights, the no-object weight, the focal parameters and the
    # criterion's own matcher's (config "criterion" and "matcher"): a criterion that keeps the default for one of
    # them gives another total (or matching) on the draws that change it, and passes where the field does not apply.
    # The ci profile's draws (derandomized), as CI runs them, unshrunk.
    result, report = run_suite(pytester, faulty(adapter), *CI_NO_SHRINK, "-k", selection)
    got = outcomes(report)
    assert got == {i: ("failed", "semantic") if i in caught else ("passed", None) for i in ids}, got


def test_an_optimal_matching_that_breaks_ties_differently_passes(pytester):
    # The faulty adapter really does break the declared tie the other way ...
    case = golden.cases(tag="edge:tie")[0]
    inputs, outputs = case.load()
    from tests.meta.faulty_adapters import reversed_tie_break
    theirs = reversed_tie_break().run(case.component, inputs, case.config, case.profile)
    assert theirs["indices"][0]["pred"].tolist() != outputs["indices"][0]["pred"].tolist()
    # ... and the suite accepts it, on the tie case and on generated tie-rich problems.
    result, report = run_suite(pytester, faulty("reversed_tie_break"), "-k", "hungarian")
    got = outcomes(report)
    assert got and all(v[0] == "passed" for v in got.values()), got
    assert any("tied decision" in " ".join(t.get("notes", [])) for t in report["tests"])


def test_a_criterion_matching_is_judged_under_the_configs_matcher():
    # Three identical targets, four queries: which query goes unmatched depends on the box cost's weight. The
    # reference's matching under the config's weight_bbox 1 is optimal for that config, and 0.336 above the optimum
    # under the profile's weight 5: a judge that ignored the config's matcher would fail the reference itself.
    from components.contract import call_set_criterion
    from conformance.runner import _criterion_problems
    logits = torch.zeros(1, 4, 4, dtype=torch.float64)
    logits[0, 0, 0] = 1.0
    boxes = torch.tensor([[[54, 54, 36, 36], [52, 74, 24, 36], [66, 54, 36, 36], [54, 54, 36, 36]]],
                         dtype=torch.float64) / 64
    targets = [{"labels": torch.tensor([0, 0, 0]), "boxes": torch.tensor([[0.125, 0.125, 0.25, 0.25]] * 3,
                                                                          dtype=torch.float64)}]
    inputs = {"outputs": {"pred_logits": logits, "pred_boxes": boxes}, "targets": targets}
    config = {"num_classes": 3, "matcher": {"weight_bbox": 1.0}}
    indices = call_set_criterion(inputs, config, "hf_detr")["indices"]
    assert _criterion_problems(inputs, config, "hf_detr", indices, torch.float32) == []
    under_profile = _criterion_problems(inputs, {"num_classes": 3}, "hf_detr", indices, torch.float32)
    assert len(under_profile) == 1 and "not optimal" in under_profile[0].message


def test_right_value_wrong_gradient(pytester):
    result, report = run_suite(pytester, faulty("wrong_focal_gradient"), "-k", "test_golden and sigmoid_focal_loss")
    got = outcomes(report)
    assert got and all(v == ("failed", "semantic") for v in got.values())
    text = result.stdout.str()
    assert "grad.logits: tensors are not close" in text and "\nloss:" not in text


def test_float32_cancellation_is_classed_precision(pytester):
    # log(1 - sigmoid(x)) loses 1 - p to cancellation in float32 for logits near 12 (the generated range);
    # in float64 it meets the float32 standard again: precision, not a wrong formula.
    result, report = run_suite(pytester, faulty("naive_focal_in_input_dtype"), "-k", "test_sigmoid_focal_generated")
    assert outcomes(report) == {"test_sigmoid_focal_generated": ("failed", "precision")}
    # At logit 30 float32 rounds p to 1 and log(1 - p) is -inf: a non-finite output where the reference is finite is
    # its own class, whatever a float64 run does (here it cancels too: 1 - p has a relative error ~6e-4).
    result, report = run_suite(pytester, faulty("naive_focal_in_input_dtype"), "-k",
                               "test_golden and sigmoid_focal_loss/edge-saturated")
    assert outcomes(report) == {
        "test_golden[losses.sigmoid_focal_loss/edge-saturated-logits]": ("failed", "non-finite")}


def test_unsupported_components_are_not_provided(pytester):
    result, report = run_suite(pytester, faulty("missing_components"), "-k", "test_golden")
    got = outcomes(report)
    assert {v for k, v in got.items() if "boxes.convert" in k} == {("passed", None)}
    others = {v for k, v in got.items() if "boxes.convert" not in k}
    assert others == {("not provided", None)}
    assert result.ret == 0
    summary = report["components"]["losses.l1_loss"]
    assert summary["not provided"] == len(golden.cases(component="losses.l1_loss")) and summary["failed"] == 0


def test_not_installed_is_a_usage_error(pytester):
    # Not a green run of skips: the exit status says the run checked nothing, with the import error and the fix.
    result, _ = run_suite(pytester, faulty("not_installed"), "-k", "test_golden and boxes.area")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert ("fancylib is not installed or fails to import (No module named 'fancylib'); install it with: pip install "
            "fancylib") in result.stderr.str()


def test_usage_errors(pytester):
    result, _ = run_suite(pytester, "nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown implementation; available: mmdet, onnx, oracle, torchvision, transformers, ultralytics" in \
        result.stderr.str()
    if importlib.util.find_spec("onnxruntime") is not None:
        result, _ = run_suite(pytester, "onnx", "--onnx-opset=5")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert "--onnx-opset=5: the installed exporter writes opsets 17 to" in result.stderr.str()
    if not torch.cuda.is_available():
        result, _ = run_suite(pytester, "oracle", "--device=cuda")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert "--device=cuda: CUDA is not available here" in result.stderr.str()


def test_known_differences_are_strict_xfails_and_stale_entries_warn(pytester):
    result, report = run_suite(pytester, faulty("wrong_giou_eps_known"), "--dtype=float64", "-k",
                               "test_golden and (giou-detr-pairwise or giou-dino-pairwise)")
    got = outcomes(report)
    assert got["test_golden[boxes.overlap/giou-detr-pairwise]"][0] == "xfailed"
    assert got["test_golden[boxes.overlap/giou-dino-pairwise]"] == ("passed", None)
    assert report["unmatched_known_differences"] == ["test_boxes.py::test_golden[boxes.overlap/no-such-case]"]
    assert "matches no collected test" in result.stdout.str()
    # With the reference, the declared difference does not happen: a strict xfail turns into a failure.
    from tests.meta.faulty_adapters import wrong_giou_eps_known  # noqa: F401  (the same file, used by the oracle below)
    result, report = run_suite(pytester, faulty("oracle_with_known_giou"), "--dtype=float64", "-k",
                               "test_golden and giou-detr-pairwise")
    assert outcomes(report)["test_golden[boxes.overlap/giou-detr-pairwise]"][0] == "xpassed"
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_known_differences_apply_to_their_dtypes_only(pytester):
    args = ("-k", "test_golden and giou-detr-pairwise")
    result, report = run_suite(pytester, faulty("wrong_giou_eps_known_float16"), "--dtype=float64", *args)
    assert outcomes(report)["test_golden[boxes.overlap/giou-detr-pairwise]"][0] == "failed"
    assert report["unmatched_known_differences"] == []  # a float16 entry is not stale in a float64 run
    # In float16 the entry applies: the 1e-6 eps is below half precision's tolerance, so the strict xfail
    # XPASSes, which shows the marker was set for this dtype.
    result, report = run_suite(pytester, faulty("wrong_giou_eps_known_float16"), "--dtype=float16", *args)
    assert outcomes(report)["test_golden[boxes.overlap/giou-detr-pairwise]"][0] == "xpassed"
    from conformance.known import load_known_differences
    bad = pytester.path / "bad.toml"
    bad.write_text('[[expected_failure]]\ntest = "x"\ncategory = "precision"\nreason = "r"\nlink = "l"\n'
                   'dtypes = ["float8"]\n')
    with pytest.raises(pytest.UsageError, match="dtypes"):
        load_known_differences(bad)


def test_an_adapter_declines_with_not_provided_but_a_library_not_implemented_error_fails(pytester):
    args = ("-k", "test_golden and boxes.area")
    _, report = run_suite(pytester, faulty("area_without_half_kernel"), "--dtype=float32", *args)
    assert {k: v[0] for k, v in outcomes(report).items()} == {
        "test_golden[boxes.area/edge-zero-area]": "not provided", "test_golden[boxes.area/random-xyxy]": "passed"}
    result, report = run_suite(pytester, faulty("area_without_half_kernel"), "--dtype=float16", *args)
    assert outcomes(report)["test_golden[boxes.area/random-xyxy]"][0] == "failed"
    assert "not implemented for 'Half'" in result.stdout.str()


def test_a_declined_draw_is_rejected_and_the_supported_draws_are_checked(pytester):
    # The adapter provides the decode for 3-level models only: each draw of another depth is rejected, and the
    # test goes on drawing (before, its first declined draw skipped the whole test).
    args = ("-k", "test_yolov8_decode_generated")
    result, report = run_suite(pytester, faulty("decode_three_levels"), *args)
    (record,) = report["tests"]
    assert record["outcome"] == "passed", record
    assert 1 < record["supported_draws"] < record["draws"], record
    assert record["declined_reasons"] == [r for r in record["declined_reasons"] if "decodes 3-level models only" in r]
    (partial,) = report["generated_draws"]["partially_supported"]
    assert partial["supported_draws"] == record["supported_draws"] and partial["draws"] == record["draws"]
    assert report["generated_draws"]["never_supported"] == []
    assert "generated tests with only some supported draws" in result.stdout.str()
    assert f"{record['supported_draws']} / {record['draws']} draws" in result.stdout.str()
    # The same port with a bug on 3-level models (two strides swapped) is caught.
    result, report = run_suite(pytester, faulty("decode_three_levels_swapped_strides"), *args)
    assert outcomes(report) == {"test_yolov8_decode_generated": ("failed", "semantic")}
    assert "heads.yolov8_decode disagrees with the reference [semantic]" in result.stdout.str()


def test_a_generated_test_whose_every_draw_is_declined_is_not_provided(pytester):
    result, report = run_suite(pytester, faulty("decode_declines_every_input"), "-k", "test_yolov8_decode_generated")
    (record,) = report["tests"]
    assert record["outcome"] == "not provided" and "class" not in record, record
    assert "takes its feature maps from a model it builds itself" in record["reason"]
    assert record["supported_draws"] == 0 and record["draws"] > 1
    assert [t["test"] for t in report["generated_draws"]["never_supported"]] == [record["test"]]
    assert result.ret == 0
    result.assert_outcomes(skipped=1, deselected=None)
    assert "generated tests that never got a supported draw" in result.stdout.str()
    # A component the adapter does not provide at all skips its generated test at once, as before (no draws).
    _, report = run_suite(pytester, faulty("decode_three_levels"), "-k", "test_dist2bbox_generated")
    (record,) = report["tests"]
    assert record["outcome"] == "not provided" and record["draws"] == 0, record
    assert report["generated_draws"] == {"never_supported": [], "partially_supported": []}


def test_integer_outputs_of_another_dtype_fail(pytester):
    # int32 matching indices with the right values: every matching test fails as semantic, naming the dtype.
    args = ("-k", "test_golden and assign.hungarian and (random or edge-empty)", "--dtype=float64")
    result, report = run_suite(pytester, faulty("hungarian_int32_indices"), *args)
    got = outcomes(report)
    assert got and set(got.values()) == {("failed", "semantic")}, got
    assert "indices.0.pred: dtype int32, the contract's is int64" in result.stdout.str()
    _, report = run_suite(pytester, faulty("hungarian_int32_indices"), "-k",
                          "test_hungarian_generated and detr-tie-free")
    got = outcomes(report)
    assert "test_hungarian_generated[detr-tie-free]" in got and set(got.values()) == {("failed", "semantic")}, got
    result, report = run_suite(pytester, "oracle", *args)
    assert set(outcomes(report).values()) == {("passed", None)}


def test_the_contract_states_the_dtype_of_every_integer_output_the_reference_produces():
    from golden.store import flatten
    from components.contract import reference_outputs
    for case in golden.cases():
        inputs, _ = case.load(verify=False)
        outputs = reference_outputs(case.component, inputs, case.config, case.profile)
        for path, tensor in flatten(dict(outputs), "out").items():
            declared = COMPONENTS[case.component].exact_dtype(path[4:])
            if tensor.dtype.is_floating_point:
                assert declared is None, (case.name, path)
            else:
                assert declared == tensor.dtype, (case.name, path, tensor.dtype, declared)


def test_known_differences_apply_to_their_devices_only(tmp_path):
    from conformance.known import applies, load_known_differences
    path = tmp_path / "k.toml"
    path.write_text('[[expected_failure]]\ntest = "x"\ncategory = "upstream-bug"\nreason = "r"\nlink = "l"\n'
                    'class = "raised"\nmessage = "r"\ndtypes = ["float16"]\ndevices = ["cpu"]\n')
    (entry,) = load_known_differences(path)
    assert applies(entry, "float16", "cpu")
    assert not applies(entry, "float16", "cuda")
    assert not applies(entry, "float32", "cpu")
    path.write_text(path.read_text().replace('devices = ["cpu"]', 'devices = ["tpu"]'))
    with pytest.raises(pytest.UsageError, match="devices"):
        load_known_differences(path)


def test_failing_generated_example_is_saved_and_replays(pytester):
    result, _ = run_suite(pytester, faulty("greedy_matcher"), "-k", "test_hungarian_generated and detr-tie-free")
    match = re.search(r"failing example saved to (\S+); replay: pytest (\S+) --impl=", result.stdout.str())
    assert match, result.stdout.str()[-2000:]
    path = Path(match.group(1))
    assert path.is_absolute() and path.is_file() and match.group(2) == SUITE  # works from any directory
    result, report = run_suite(pytester, faulty("greedy_matcher"), f"--conformance-replay={path}")
    assert [(t["outcome"], t.get("class")) for t in report["tests"]] == [("failed", "semantic")]
    result, report = run_suite(pytester, "oracle", f"--conformance-replay={path}")
    assert [t["outcome"] for t in report["tests"]] == ["passed"]


def test_reports_are_written(pytester):
    md = pytester.path / "report.md"
    result, report = run_suite(pytester, "oracle", "-k", "test_golden and boxes.area", f"--conformance-report={md}")
    header = report["header"]
    assert header["impl"] == "oracle" and header["dtype"] == "float32" and header["tf32"] is False
    assert report["components"]["boxes.area"]["passed"] == 2
    text = md.read_text()
    assert "| boxes.area | 2 | 0 | 0 | 0 |" in text and "TF32 off" in text


def test_every_golden_component_is_exercised_by_the_suite():
    import ast
    trees = [ast.parse(f.read_text()) for f in Path(SUITE).glob("test_*.py")]
    prefixes = [arg.value for tree in trees for node in ast.walk(tree)
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "golden_params"
                for arg in node.args if isinstance(arg, ast.Constant)]
    missing = [c for c in COMPONENTS if not any(c.startswith(p) for p in prefixes)]
    assert not missing, f"components no conformance module's golden_params selects: {missing}"
    # and none twice (test_the_reference_passes_everything counts the golden tests)
    assert all(sum(c.startswith(p) for p in prefixes) == 1 for c in COMPONENTS), prefixes


def test_off_by_one_nearest_interpolation(pytester):
    result, report = run_suite(pytester, faulty("off_by_one_nearest"), "-k", "resize")
    got = outcomes(report)
    assert got["test_golden[masks.resize/non-square]"] == ("failed", "semantic")
    assert got["test_resize_generated"] == ("failed", "semantic")
    assert "integer values differ" in result.stdout.str() or "values differ" in result.stdout.str()


def test_positional_encoding_with_the_wrong_offset(pytester):
    result, report = run_suite(pytester, faulty("pe_wrong_offset"), "-k", "position")
    got = outcomes(report)
    for profile in ("detr", "dino", "mmdet"):
        assert got[f"test_golden[position.sine/random-{profile}]"] == ("failed", "semantic"), profile
        assert got[f"test_position_generated[{profile}]"] == ("failed", "semantic"), profile
    assert got["test_golden[position.sine/random-deformable_detr]"] == ("passed", None)  # -0.5 is its convention


def test_a_strict_comparison_at_the_positive_threshold_fails_the_generated_max_iou_test(pytester):
    # `>` for `>=` at pos_iou_thr decides otherwise only for a prior exactly at the threshold that is not its GT's
    # best prior: random dyadic boxes practically never put one there (0 of 600 ci draws); the strategy's
    # threshold draws do (exact in float32 too, so the failure is the comparison's, not rounding's).
    args = ("--hypothesis-profile=ci", "-k", "test_max_iou_generated")
    result, report = run_suite(pytester, faulty("max_iou_strict_positive"), *args)
    from oracle.conventions import MaxIoUConvention, presets_of
    expected = {f"test_max_iou_generated[{name}]": ("failed", "semantic") for name in presets_of(MaxIoUConvention)}
    assert outcomes(report) == expected
    assert "gt_inds: " in result.stdout.str() and "integer values differ" in result.stdout.str()
    _, report = run_suite(pytester, "oracle", *args)
    assert set(outcomes(report).values()) == {("passed", None)}
    # The golden cases at the thresholds fail too (the zero-overlap GT cases' priors are positive either way).
    _, report = run_suite(pytester, faulty("max_iou_strict_positive"), "-k", "test_golden and max_iou")
    failed = {k for k, v in outcomes(report).items() if v == ("failed", "semantic")}
    assert failed == {f"test_golden[assign.max_iou/{name}]" for name in (
        "edge-at-pos-and-neg-thresholds-mmdet", "edge-at-pos-and-neg-thresholds-torchvision",
        "edge-at-thresholds-rpn-range-mmdet")}


@pytest.mark.parametrize("fault", ["giou_loss_additive_eps", "giou_loss_additive_eps_1e9"])
def test_an_additive_eps_in_the_giou_loss_of_a_profile_without_one_fails_its_generated_test(pytester, fault):
    # The GIoU loss is generated under every profile, on realistic and small normalised boxes (areas down to
    # about 1e-6, where an eps of 1e-9 in the union is a 1e-3 relative change): an eps where the DETR profiles
    # have none fails there at float32; the profiles that add 1e-6 or 1e-7 themselves are computed right.
    args = ("--hypothesis-profile=ci", "-k", "test_box_losses_generated and giou")
    _, report = run_suite(pytester, faulty(fault), *args)
    from oracle.conventions import PROFILES
    no_eps = {name for name, p in PROFILES.items() if p.iou_loss.eps_mode == "none"}
    assert no_eps >= {"detr", "deformable_detr"}
    assert outcomes(report) == {f"test_box_losses_generated[giou_loss-{name}-iou_loss]":
                                ("failed", "semantic") if name in no_eps else ("passed", None) for name in PROFILES}


def test_a_candidate_that_returns_outputs_for_an_invalid_input_fails(pytester):
    # Every invalid input of the contract: the reference raises on each (the oracle run checks that first), a
    # candidate that raises too passes, and one that matches an out-of-range label silently fails by its class.
    _, report = run_suite(pytester, "oracle", "-k", "test_errors")
    from conformance.invalid_inputs import INVALID_INPUTS
    assert len(INVALID_INPUTS) >= 20 and outcomes(report) == {
        f"test_invalid_input_raises[{c.id}]": ("passed", None) for c in INVALID_INPUTS}
    result, report = run_suite(pytester, faulty("hungarian_without_label_check"), "-k", "test_errors and hungarian")
    got = outcomes(report)
    silent = {k for k, v in got.items() if v == ("failed", "accepted-invalid-input")}
    assert silent and all("label" in k for k in silent), got
    assert all(v == ("passed", None) for k, v in got.items() if "more-targets-than-images" in k), got
    assert "instead of raising" in result.stdout.str()


@pytest.mark.parametrize("fault, tests", [
    ("smooth_l1_beta_inverted", ["test_smooth_l1_generated"]),
    ("dfl_without_clamp", ["test_distribution_focal_generated"]),
    ("anchor_offsets_hardcoded", ["test_anchor_grid_generated", "test_anchor_points_generated"])])
def test_a_fault_caught_by_one_golden_case_fails_a_generated_test(pytester, fault, tests):
    # Each was caught by one golden case or none (beta 1/9; targets at the clamp; the RetinaNet anchors, and no
    # anchor-points case with offset 0); the generated tests draw the convention fields (beta, the centre
    # offsets) and the inputs beyond the clamp (reg_max - 1 - 0.01) too.
    _, report = run_suite(pytester, faulty(fault), "--hypothesis-profile=ci", "-k", " or ".join(tests))
    assert outcomes(report) == {test: ("failed", "semantic") for test in tests}


def test_a_float16_overflow_on_a_batch_without_instances_is_non_finite(pytester):
    # proto.sum() * 0 in float16 is NaN for large prototypes (inf * 0): no golden case has both an empty batch and
    # large prototypes; the generated segmentation batches do, and the NaN is its own class.
    args = ("--hypothesis-profile=ci", "--dtype=float16", "-k", "yolov8_segmentation")
    _, report = run_suite(pytester, faulty("seg_proto_sum_times_zero"), *args)
    got = outcomes(report)
    assert {k: v for k, v in got.items() if "generated" in k} == {
        f"test_yolov8_segmentation_generated[{m}]": ("failed", "non-finite") for m in ("overlap-masks",
                                                                                        "per-target-masks")}
    assert all(v == ("passed", None) for k, v in got.items() if k.startswith("test_golden")), got


def test_an_implementation_computing_in_float32_is_internal_precision_at_float64(pytester):
    # The float64 run of a float32-internal encoding misses the float64 budget but meets float32's: its class says
    # so; a wrong formula at float64 (the offset above) stays semantic.
    _, report = run_suite(pytester, faulty("pe_in_float32"), "--dtype=float64", "-k", "position")
    got = outcomes(report)
    for profile in ("detr", "dino", "mmdet"):
        assert got[f"test_golden[position.sine/random-{profile}]"] == ("failed", "internal-precision"), profile
    _, report = run_suite(pytester, faulty("pe_wrong_offset"), "--dtype=float64", "-k", "golden and position")
    assert outcomes(report)["test_golden[position.sine/random-detr]"] == ("failed", "semantic")


def test_reports_say_what_differed_why_a_difference_is_expected_and_what_was_checked(pytester):
    md = pytester.path / "report.md"
    result, report = run_suite(pytester, faulty("wrong_giou_eps_known"), "--dtype=float64", "-k",
                               "test_golden and (giou-detr-pairwise or giou-dino-pairwise or giou-mmdet)",
                               f"--conformance-report={md}")
    header = report["header"]
    assert header["timestamp"].endswith("+00:00") and header["detconf"]
    assert len(header["manifest_sha256"]) == 64
    assert report["outcomes"] == dict(sorted(Counter(t["outcome"] for t in report["tests"]).items()))
    failed = [t for t in report["tests"] if t["outcome"] == "failed"]
    xfailed = [t for t in report["tests"] if t["outcome"] == "xfailed"]
    assert failed and xfailed
    # a failure's message is what differed, not a file location
    assert all("greatest absolute difference" in t["message"] and "tolerance" in t["message"] for t in failed)
    assert all(t["reason"].startswith("[") for t in xfailed)  # "[category] reason (link)"
    text = md.read_text()
    assert "## Failures" in text and "greatest absolute difference" in text
    assert "## Expected failures (known differences)" in text and xfailed[0]["reason"] in text
    assert f"golden manifest sha256 {header['manifest_sha256']}" in text and "Outcomes: " in text
    assert f"report written to {md}" in result.stdout.str()


def html_report(pytester) -> Path:
    """A report page of a run with failures, expected failures and two components' plots."""
    page = pytester.path / "report.html"
    run_suite(pytester, faulty("wrong_giou_eps_known"), "--dtype=float64", "-k",
              "(test_golden and (giou-detr-pairwise or giou-mmdet or boxes.area)) or "
              "(test_overlap_generated and dino-giou)",
              f"--conformance-report={page}")
    return page


def test_the_html_report_is_one_self_contained_page(pytester):
    # Its structure: the sections in order, one pair of plots per component, failures first, nothing loaded from
    # elsewhere. Its layout in a browser is the next test.
    from html.parser import HTMLParser
    page = html_report(pytester)

    class Page(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.sections, self.classes, self.external = [], [], [], []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            self.tags.append(tag)
            if tag == "section":
                self.sections.append(attrs.get("id"))
            if tag in ("svg", "div"):
                self.classes.append(attrs.get("class"))
            self.external += [v for k, v in attrs.items() if k in ("src", "href") and v and not v.startswith("#")]
            self.external += ["<script>"] if tag in ("script", "link", "img", "iframe") else []

    parsed = Page()
    text = page.read_text()
    parsed.feed(text)
    assert parsed.sections == ["run", "failures", "components", "expected", "not-provided"]
    assert parsed.external == []
    components = parsed.classes.count("component")
    assert components == 2  # boxes.area and boxes.overlap
    assert parsed.classes.count("error-vs-magnitude") == parsed.classes.count("ulps-histogram") == components
    assert "<circle" in text and "<rect" in text  # marks and bars were drawn
    failures = text[text.index('id="failures"'):text.index('id="components"')]
    assert "greatest absolute difference" in failures and ("[semantic]" in failures or "[precision]" in failures)


# Run in the page's copy by the browser: where its sections, plots and marks were laid out.
LAYOUT_PROBE = """<script>
const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
const plots = [...document.querySelectorAll("svg")].map(svg => ({
  cls: svg.getAttribute("class"), box: box(svg),
  marks: [...svg.querySelectorAll("circle, rect")].map(box),
  texts: [...svg.querySelectorAll("text")].map(t => ({text: t.textContent, box: box(t)}))}));
document.body.setAttribute("data-layout", JSON.stringify({
  sections: [...document.querySelectorAll("section")].map(s => ({id: s.id, box: box(s)})),
  plots, scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth}));
</script>"""


def test_the_html_report_renders_in_a_headless_browser(pytester):
    # The page is laid out by headless Chromium: every section has a height and comes in order, each plot has
    # its size with every mark inside it, and the failure blocks wrap instead of widening the page. The page
    # itself has no script; a copy gets the probe above, and the DOM Chromium dumps carries its result.
    chromium = require_executable("chromium", "apt-get install chromium")
    page = html_report(pytester)
    probe = page.with_name("probed.html")
    probe.write_text(page.read_text().replace("</body>", LAYOUT_PROBE + "</body>"))
    run = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                          "--virtual-time-budget=2000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120)
    found = re.search(r'data-layout="([^"]*)"', run.stdout)
    assert found, f"chromium rendered no layout (exit {run.returncode}): {run.stderr[-2000:]}"
    layout = json.loads(html.unescape(found.group(1)))
    sections = layout["sections"]
    assert [s["id"] for s in sections] == ["run", "failures", "components", "expected", "not-provided"]
    tops = [s["box"][1] for s in sections]
    assert tops == sorted(tops) and all(s["box"][3] > s["box"][1] for s in sections)
    assert layout["scrollWidth"] <= layout["innerWidth"], "a failure block or plot widens the page"
    plots = layout["plots"]
    assert sorted(Counter(p["cls"] for p in plots).items()) == [("error-vs-magnitude", 2), ("ulps-histogram", 2)]
    for plot in plots:
        left, top, right, bottom = plot["box"]
        assert right - left >= 200 and bottom - top >= 100, plot
        # marks drawn, or the plot says why there are none (an exact component has no error to place on a log axis)
        assert plot["marks"] or "no nonzero error" in [t["text"] for t in plot["texts"]], plot
        for mark in plot["marks"] + [t["box"] for t in plot["texts"]]:
            assert left - 1 <= mark[0] <= mark[2] <= right + 1 and top - 1 <= mark[1] <= mark[3] <= bottom + 1, \
                (plot["cls"], mark, plot["box"])
    assert all(any(p["marks"] for p in plots if p["cls"] == cls) for cls in ("error-vs-magnitude", "ulps-histogram"))


def test_generated_yolov8_inputs_catch_task_aligned_dfl_and_empty_mask_faults(pytester):
    # A top-k one short: the golden mmdet case misses it (its GTs' k-th and (k+1)-th anchors agree on the outcome);
    # the tie-free generated draws catch it under every convention.
    result, report = run_suite(pytester, faulty("task_aligned_topk_off_by_one"), "--hypothesis-profile=ci", "-k",
                               "test_task_aligned_generated or random-mmdet")
    got = {k: v for k, v in outcomes(report).items() if "task_aligned" in k}
    assert got == {"test_golden[assign.task_aligned/random-mmdet]": ("passed", None),
                   **{f"test_task_aligned_generated[{c}]": ("failed", "semantic")
                      for c in ("TAL_ULTRALYTICS", "TAL_ULTRALYTICS_LEGACY", "TAL_MMDET")}}
    result, report = run_suite(pytester, faulty("dfl_bins_swapped"), "--hypothesis-profile=ci", "-k",
                               "test_yolov8_detection_generated")
    assert outcomes(report) == {"test_yolov8_detection_generated": ("failed", "semantic")}
    # ultralytics 8.0.35's empty per-target masks: a failure (raised), not a skip; no golden case reaches it.
    result, report = run_suite(pytester, faulty("seg_empty_per_target_masks_raise"), "--hypothesis-profile=ci", "-k",
                               "test_yolov8_segmentation")
    got = outcomes(report)
    assert got.pop("test_yolov8_segmentation_generated[per-target-masks]") == ("failed", "raised")
    assert {v for v in got.values()} == {("passed", None)}, got


@pytest.mark.parametrize(("adapter", "selection", "caught"), [
    ("coder_stds_hardcoded", "test_delta_xywh_encode_generated or test_delta_xywh_decode_generated",
     ("test_delta_xywh_encode_generated", "test_delta_xywh_decode_generated")),
    # norm_eps is drawn only where the convention normalises its scores (not TAL_MMDET, which never reads it).
    ("task_aligned_eps_hardcoded", "test_task_aligned_generated",
     ("test_task_aligned_generated[TAL_ULTRALYTICS]", "test_task_aligned_generated[TAL_ULTRALYTICS_LEGACY]")),
    ("task_aligned_alpha_hardcoded", "test_task_aligned_generated",
     ("test_task_aligned_generated[TAL_MMDET]", "test_task_aligned_generated[TAL_ULTRALYTICS]",
      "test_task_aligned_generated[TAL_ULTRALYTICS_LEGACY]")),
    ("yolov8_box_gain_hardcoded", "test_yolov8_detection_generated or test_yolov8_segmentation_generated",
     ("test_yolov8_detection_generated", "test_yolov8_segmentation_generated[overlap-masks]",
      "test_yolov8_segmentation_generated[per-target-masks]")),
])
def test_a_dense_head_with_a_constant_for_a_config_number_fails(pytester, adapter, selection, caught):
    # The generated dense-head tests draw the coders' means and stds, the task-aligned assigner's topk, alpha, beta
    # and eps, and the YOLOv8 gains (conformance/strategies.py): a port that keeps a default fails semantically.
    _, report = run_suite(pytester, faulty(adapter), *CI_NO_SHRINK, "-k", selection)
    got = outcomes(report)
    assert {t: got.get(t) for t in caught} == {t: ("failed", "semantic") for t in caught}, got
