"""The comparison policy's arithmetic (conformance/compare.py, tolerances.toml): what agrees, by hand."""

from __future__ import annotations

import torch

from conformance.compare import Figures, compare_trees, compare_values
from conformance.tolerances import tolerance

EPS16 = torch.finfo(torch.float16).eps  # 2**-10


def _values(expected, actual, dtype, component="boxes.area", path="area"):
    e = torch.tensor(expected, dtype=torch.float64)
    a = torch.tensor(actual, dtype=torch.float64)
    return compare_values(path, a, e, tolerance(component, path, dtype), dtype, Figures())


def test_half_precision_allows_8_ulps_of_the_tensors_largest_value():
    # expected [1, 0.01]: the small element may be off by 8 * eps16 * 1 (plus assert_close's 1e-5 + 1e-3 * 0.01)
    allowed = 8 * EPS16 + 1e-5 + 1e-3 * 0.01
    assert _values([1.0, 0.01], [1.0, 0.01 + 0.99 * allowed], torch.float16) is None
    assert _values([1.0, 0.01], [1.0, 0.01 + 1.01 * allowed], torch.float16) is not None
    # float32 has no normwise term: the same absolute error on the small element fails
    assert _values([1.0, 0.01], [1.0, 0.01 + 0.5 * 8 * EPS16], torch.float32) is not None


def test_the_normwise_scale_of_a_gradient_is_the_whole_gradient():
    # grad.b is small, grad.a large: grad.b's error is judged against max|grad.a| = 1, a value's against itself.
    expected = {"value": torch.tensor([0.001], dtype=torch.float64),
                "grad": {"a": torch.tensor([1.0], dtype=torch.float64),
                         "b": torch.tensor([0.001], dtype=torch.float64)}}
    off = 0.001 + 4 * EPS16  # 4 ULPs of 1: within 8 for the gradient, far beyond 8 ULPs of 0.001 for the value
    actual = {"value": torch.tensor([off], dtype=torch.float64),
              "grad": {"a": torch.tensor([1.0], dtype=torch.float64), "b": torch.tensor([off], dtype=torch.float64)}}
    paths = [m.path for m in compare_trees("boxes.area", actual, expected, {}, torch.float16, Figures())]
    assert paths == ["value"]


def test_float64_allows_the_golden_drift_budget_of_the_component():
    # A fixture carries the last bits of the machine that wrote it: at float64 the comparison also allows
    # the component's golden drift budget, budget * 2^-52 * scale (boxes.area: 16; transformer.encoder: 64).
    eps64 = torch.finfo(torch.float64).eps
    assert tolerance("boxes.area", "area", torch.float64).norm_ulps == 16
    assert tolerance("transformer.encoder", "memory", torch.float64).norm_ulps == 64
    scale = 1e9  # large enough that 16 ULPs of it (3.6e-6) exceed atol + rtol * |1e-3| (1e-7 + 1e-10)
    allowed = 1e-7 + 1e-7 * 1e-3 + 16 * eps64 * scale
    assert _values([scale, 1e-3], [scale, 1e-3 + 0.99 * allowed], torch.float64) is None
    assert _values([scale, 1e-3], [scale, 1e-3 + 1.01 * allowed], torch.float64) is not None


def test_tie_dependent_metrics_are_compared_tie_aware():
    # Query 0 (matched to class 1) ties classes 1 and 2 at 2.0, query 1 (matched to class 0) is a sure hit:
    # class_error is 0 under torch's argmax (first maximum) and 50 when the tie goes the other way (topk may).
    from components.contract import reference_outputs
    from conformance.runner import judge
    inputs = {"outputs": {"pred_logits": torch.tensor([[[0.5, 2.0, 2.0], [3.0, 0.0, -1.0]]], dtype=torch.float64),
                          "pred_boxes": torch.tensor([[[0.5, 0.5, 0.2, 0.4], [0.3, 0.7, 0.1, 0.1]]],
                                                     dtype=torch.float64)},
              "targets": [{"labels": torch.tensor([1, 0]),
                           "boxes": torch.tensor([[0.55, 0.45, 0.3, 0.4], [0.3, 0.6, 0.1, 0.2]], dtype=torch.float64)}],
              "indices": {"last": [{"pred": torch.tensor([0, 1]), "gt": torch.tensor([0, 1])}]}}
    config = {"num_classes": 2}
    expected = reference_outputs("criteria.set_criterion", inputs, config, "detr")
    other_order = reference_outputs("criteria.set_criterion", inputs, {**config, "metric_ties": "unfavourable"},
                                    "detr")
    assert (expected["losses"]["class_error"].item(), other_order["losses"]["class_error"].item()) == (0.0, 50.0)
    figures = Figures()
    assert judge("criteria.set_criterion", other_order, expected, inputs, config, "detr", torch.float64, figures) == []
    assert any("tie-dependent losses.class_error" in n for n in figures.notes)
    # A value no tie order gives still fails.
    wrong = {**other_order, "losses": {**other_order["losses"], "class_error": torch.tensor(100.0,
                                                                                           dtype=torch.float64)}}
    problems = judge("criteria.set_criterion", wrong, expected, inputs, config, "detr", torch.float64, Figures())
    assert len(problems) == 1 and problems[0].startswith("losses.class_error")


def test_an_autocast_run_has_a_policy_of_its_own_over_its_half_dtypes():
    # tolerances.toml, "Mixed precision": autocast-bfloat16 entries first, then bfloat16's. A DETR decoder
    # gradient under autocast is allowed 128 bfloat16 ULPs of its largest value; pure bfloat16 64; a value 8.
    decoder_grad = tolerance("transformer.decoder", "grad.tgt", torch.bfloat16, autocast=True)
    assert decoder_grad.norm_ulps == 128 and "autocast" in decoder_grad.reason
    assert tolerance("transformer.decoder", "grad.tgt", torch.bfloat16).norm_ulps == 64
    # where autocast-bfloat16 has no entry (a value), bfloat16's applies, and the reason says whose it is
    value = tolerance("transformer.decoder", "output", torch.bfloat16, autocast=True)
    assert value == tolerance("transformer.decoder", "output", torch.bfloat16)
    assert value.norm_ulps == 8 and "(bfloat16 normwise term)" in value.reason
    # float16 autocast has an entry of its own for the stacks' gradients, and none for a box's area
    assert tolerance("transformer.decoder", "grad.tgt", torch.float16, autocast=True).norm_ulps == 512
    area = tolerance("boxes.area", "area", torch.float16)
    assert tolerance("boxes.area", "area", torch.float16, autocast=True) == area


def test_a_decoder_gradient_100_ulps_off_passes_autocast_bfloat16_and_fails_pure_bfloat16():
    eps = torch.finfo(torch.bfloat16).eps  # 2**-7
    expected = {"output": torch.tensor([0.5], dtype=torch.float64),
                "grad": {"tgt": torch.tensor([1.0, 0.001], dtype=torch.float64)}}
    actual = {"output": torch.tensor([0.5], dtype=torch.float64),
              "grad": {"tgt": torch.tensor([1.0, 0.001 + 100 * eps], dtype=torch.float64)}}

    def failing(**kwargs):
        return [m.path for m in compare_trees("transformer.decoder", actual, expected, {}, torch.bfloat16,
                                              Figures(), **kwargs)]
    assert failing(autocast=True) == []
    assert failing() == ["grad.tgt"]
    # 130 ULPs is beyond the autocast budget too
    actual["grad"]["tgt"][1] = 0.001 + 130 * eps
    assert failing(autocast=True) == ["grad.tgt"]


def test_an_extra_output_name_is_accepted_only_by_a_rule_of_its_component_and_profile():
    # criteria.set_criterion declares DINO's zero-valued denoising keys ("zero", profile dino) as extra outputs.
    zero, one = torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    expected = {"losses": {"loss_ce": one}, "total": one}

    def problems(extra, profile, component="criteria.set_criterion"):
        figures = Figures()
        actual = {"losses": {"loss_ce": one, **extra}, "total": one}
        return [m.message for m in compare_trees(component, actual, expected, {}, torch.float64, figures,
                                                 profile=profile)], figures.notes

    found, notes = problems({"loss_ce_dn": zero, "loss_giou_dn_0": zero}, "dino")
    assert found == [] and "losses.loss_ce_dn, losses.loss_giou_dn_0" in notes[0]
    found, _ = problems({"loss_ce_dn": one}, "dino")
    assert len(found) == 1 and "rule 'zero' for losses.*_dn under profile 'dino' rejects it" in found[0]
    found, _ = problems({"loss_ce_dn": torch.tensor(float("nan"), dtype=torch.float64)}, "dino")
    assert len(found) == 1 and "rejects it" in found[0]
    found, _ = problems({"loss_ce_dn": zero}, "detr")
    assert len(found) == 1 and "applies under profile(s) dino only, not 'detr'" in found[0]
    found, _ = problems({"loss_ce_enc": zero}, "dino")  # no rule for this name
    assert found == ["losses.loss_ce_enc: not an output of criteria.set_criterion (unexpected name)"]
