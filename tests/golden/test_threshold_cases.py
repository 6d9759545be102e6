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


def test_the_resolve_case_decides_between_the_two_resolutions():
    # edge:resolve exists for TaskAlignedConvention.resolve: under mmdet's resolution (the maximum over the GTs
    # that selected the anchor) its assignment differs from ultralytics' (the maximum over every GT row).
    import dataclasses

    from components.dense_calls import task_aligned_convention
    from oracle.assign.task_aligned import task_aligned_assign

    (case,) = golden.cases(tag="edge:resolve")
    inputs, _ = golden.load(case.name)
    convention = task_aligned_convention(case.config)
    assert convention.resolve == "max_overlap_any_gt"
    args = [inputs[k] for k in ("pd_scores", "pd_bboxes", "anchor_points", "gt_labels", "gt_bboxes", "mask_gt")]
    ours = task_aligned_assign(*args, convention=convention, stride_val=case.config["stride_val"])
    theirs = task_aligned_assign(*args, convention=dataclasses.replace(convention, resolve="max_overlap_candidate_gt"),
                                 stride_val=case.config["stride_val"])
    moved = (ours.target_gt_idx != theirs.target_gt_idx) & ours.fg_mask & theirs.fg_mask
    assert bool(moved.any())
