"""The dense-detector golden fixtures agree with the upstream they model: YOLOv8 cases with ultralytics
8.4.190 (float64), AnchorHead cases with mmdet 3.3.0 (float32 upstream, so float32 tolerance)."""

from __future__ import annotations

import pytest
import torch

import golden
from components.dense_calls import anchor_head_config

from ..oracle import test_anchor_head as AH
from ..oracle import test_yolov8 as Y8
from ..conftest import import_or_skip


def _cases(prefix: str) -> list:
    return [pytest.param(case, id=case.name) for case in golden.cases() if case.component.startswith(prefix)]


def _ordered(grads) -> list[torch.Tensor]:
    """A gradient list stored as ``{"0": g0, "1": g1, ...}`` or as a list, in order."""
    return [grads[k] for k in sorted(grads, key=int)] if isinstance(grads, dict) else list(grads)


@pytest.mark.parametrize("case", _cases("criteria.yolov8"))
def test_yolov8_fixture_matches_ultralytics(case):
    i, o = golden.load(case.name)
    config = case.config
    extra = {}
    if case.component.endswith("segmentation"):
        extra = dict(coef=i["mask_coefficients"], proto=i["proto"], overlap=config["overlap_mask"])
    loss, grads, _ = Y8._ultralytics(i["pred_distri"], i["pred_logits"], i["batch"],
                                     sizes=[tuple(s) for s in config["featmap_sizes"]], strides=config["strides"],
                                     **extra)
    torch.testing.assert_close(loss, o["loss"], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grads[0], o["grad"]["pred_distri"], rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(grads[1], o["grad"]["pred_logits"], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("case", _cases("criteria.anchor_head"))
def test_anchor_head_fixture_matches_mmdet(case):
    import_or_skip("mmdet.models", "see docs/install.md (mmcv 2.1.0 built with ops, then mmdet 3.3.0)")
    from mmengine.structures import InstanceData
    i, o = golden.load(case.name)
    config = case.config
    head = AH.mmdet_head(anchor_head_config(config), config["num_classes"])
    metas = [{k: tuple(v) for k, v in m.items()} for m in config["img_metas"]]
    cls32 = [x.float().requires_grad_() for x in i["cls_scores"]]
    box32 = [x.float().requires_grad_() for x in i["bbox_preds"]]
    gt = [InstanceData(bboxes=t["boxes"].float(), labels=t["labels"]) for t in i["targets"]]
    ref = head.loss_by_feat(cls32, box32, gt, metas)
    # mmdet runs in float32 (anchors, bbox2delta's .float(), the losses): float32 tolerance.
    for key in ("loss_cls", "loss_bbox"):
        torch.testing.assert_close(torch.stack(_ordered(o[key])), torch.stack([v.double() for v in ref[key]]),
                                   rtol=2e-6, atol=1e-6)
    torch.stack([*ref["loss_cls"], *ref["loss_bbox"]]).sum().backward()
    for theirs, mine in zip(cls32 + box32, _ordered(o["grad"]["cls_scores"]) + _ordered(o["grad"]["bbox_preds"])):
        torch.testing.assert_close(theirs.grad.double(), mine, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("case", [p for p in _cases("assign.task_aligned")
                                  if p.values[0].config["convention"] == "TAL_ULTRALYTICS"])
def test_task_aligned_fixture_matches_ultralytics(case):
    tal = import_or_skip("ultralytics.utils.tal", 'pip install -c constraints.txt -e ".[ultralytics]"')
    i, o = golden.load(case.name)
    num_classes = i["pd_scores"].shape[-1]
    assigner = tal.TaskAlignedAssigner(topk=10, num_classes=num_classes, alpha=0.5, beta=6.0, stride=[8, 16, 32])
    labels, boxes, scores, fg, gt_idx = assigner(i["pd_scores"], i["pd_bboxes"], i["anchor_points"],
                                                 i["gt_labels"][..., None], i["gt_bboxes"], i["mask_gt"][..., None])
    assert torch.equal(fg, o["fg_mask"])
    assert torch.equal(gt_idx[fg], o["target_gt_idx"][fg])
    assert torch.equal(labels[fg], o["target_labels"][fg])
    torch.testing.assert_close(boxes, o["target_bboxes"], rtol=0, atol=0)
    torch.testing.assert_close(scores, o["target_scores"], rtol=1e-12, atol=1e-15)
