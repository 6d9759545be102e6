"""Every golden edge case at a threshold (tagged ``edge:iou-at-threshold`` or ``edge:at-threshold``) is sensitive
to the comparison it exists for: the reference's output on its inputs changes when the comparison is wrong about
equality (``>`` for ``>=``), so that an implementation with that fault fails the case."""

from __future__ import annotations

import pytest
import torch

import golden
from components.dense_calls import max_iou_convention
from golden.store import flatten
from oracle.assign.max_iou import max_iou_assign

from ..meta.faulty_adapters import strict_comparison

TAGS = ("edge:iou-at-threshold", "edge:at-threshold")


def _max_iou(threshold: str):
    """The case's assignment with the comparison at ``threshold`` (a MaxIoUConvention field) wrong about equality."""
    def perturbed(case, inputs):
        convention = strict_comparison(max_iou_convention(case.config, case.profile), threshold)
        result = max_iou_assign(inputs["priors"], inputs["gt_boxes"], inputs["gt_labels"], convention=convention)
        return {"gt_inds": result.gt_inds, "max_overlaps": result.max_overlaps, "labels": result.labels}
    return perturbed


#: case name -> the perturbations (name, outputs under it) that must each change its output.
PERTURBATIONS = {
    **{f"assign.max_iou/edge-exact-thresholds-zero-overlap-gt-{lib}": [("min_pos_iou", _max_iou("min_pos_iou"))]
       for lib in ("mmdet", "torchvision")},
    **{f"assign.max_iou/edge-at-pos-and-neg-thresholds-{lib}": [("pos_iou_thr", _max_iou("pos_iou_thr")),
                                                                ("neg_iou_thr", _max_iou("neg_iou_thr"))]
       for lib in ("mmdet", "torchvision")},
    "assign.max_iou/edge-at-thresholds-rpn-range-mmdet": [
        (name, _max_iou(name)) for name in ("pos_iou_thr", "neg_iou_thr[lo]", "neg_iou_thr", "min_pos_iou")],
}

#: Threshold cases whose output no comparison fault changes, and why.
UNOBSERVABLE = {
    "losses.smooth_l1_loss/edge-at-beta":
        # Smooth L1 is continuous with a continuous gradient at |d| = beta (0.5 d^2 / beta = |d| - 0.5 beta, and
        # d / beta = sign(d) there): which branch takes the point changes neither. The case pins that continuity.
        "continuous value and gradient at beta",
    "boxes.overlap/edge-ciou-at-iou-threshold-mmdet":
        # Not at the threshold in float64: mmdet's CIoU loss adds 1e-7 to the union, so the first pair's IoU is
        # 4 / (8 + 1e-7) = 0.49999999375 and alpha is 0 under > 0.5 and >= 0.5 alike (in float32 8 + 1e-7 rounds
        # to 8 and the IoU is exactly 0.5). A case at the threshold needs boxes whose eps-added IoU is 0.5.
        "the eps-added IoU is below 0.5 in float64",
}


def _threshold_cases() -> list[str]:
    return sorted(c.name for c in golden.cases() if set(c.tags) & set(TAGS))


def test_every_threshold_case_has_its_perturbation():
    assert sorted(set(PERTURBATIONS) | set(UNOBSERVABLE)) == _threshold_cases()


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_a_threshold_case_changes_under_its_perturbation(name):
    (case,) = [c for c in golden.cases() if c.name == name]
    inputs, outputs = case.load()
    expected = flatten(dict(outputs), "out")
    for perturbation, outputs_under in PERTURBATIONS[name]:
        got = flatten(outputs_under(case, inputs), "out")  # the forward outputs (fixtures also hold gradients)
        assert got.keys() <= expected.keys()
        changed = [k for k in got if not torch.equal(got[k].to(expected[k].dtype), expected[k])]
        assert changed, f"{name}: its outputs do not change with the comparison at {perturbation} made strict"


def _other_resolve(case):
    """The case's reference outputs ``({name: tensor}, {name: tensor})`` under ultralytics' resolution and under
    mmdet's instead (every preset and profile changed for the call: tests/meta/faults.py)."""
    from components.contract import COMPONENTS
    from oracle.conventions import TaskAlignedConvention, YOLOv8LossConfig
    from tests.meta.faults import mutated_conventions

    def candidate_gt(name, value, annotation):
        return ["max_overlap_candidate_gt"]
    inputs, _ = golden.load(case.name)
    call = COMPONENTS[case.component].call
    ours = flatten(call(inputs, case.config, case.profile), "")
    with mutated_conventions(TaskAlignedConvention, "resolve", candidate_gt), \
            mutated_conventions(YOLOv8LossConfig, "assigner.resolve", candidate_gt):
        theirs = flatten(call(inputs, case.config, case.profile), "")
    return ours, theirs


@pytest.mark.parametrize("case", golden.cases(tag="edge:resolve"), ids=lambda c: c.name)
def test_a_resolve_case_decides_between_the_two_resolutions(case):
    # edge:resolve exists for TaskAlignedConvention.resolve: an anchor in two GTs' top-k whose largest overlap is
    # with a third GT, so that mmdet's resolution (over the GTs that selected it) gives other outputs than
    # ultralytics' (over every GT row).
    assert case.profile == "ultralytics" and case.config.get("convention", "TAL_ULTRALYTICS") == "TAL_ULTRALYTICS"
    ours, theirs = _other_resolve(case)
    assert ours.keys() == theirs.keys()
    assert any(not torch.equal(ours[k], theirs[k]) for k in ours)


def test_every_component_with_a_resolve_has_a_resolve_case():
    assert {c.component for c in golden.cases(tag="edge:resolve")} == {
        "assign.task_aligned", "criteria.yolov8_detection", "criteria.yolov8_segmentation"}
