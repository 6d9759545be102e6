"""YOLOv8: the task-aligned assigner and the detection and segmentation losses (golden cases and generated inputs).

Upstream's ``torch.topk`` orders tied alignment metrics arbitrarily and assignments are not judged tie-aware here,
so every input is tie-free: the golden inputs keep every anchor inside a GT at a positive metric, and the generated
ones (conformance/strategies.py, ``task_aligned_inputs``, ``yolov8_inputs``) are rejected unless each GT's k-th
metric is above a floor and a dtype's gap (``tie_gap``) above its (k+1)-th, and each anchor in several GTs' top-k
has a clear best overlap; GT corners lie on a grid of 1/128 of the image, so centre tests are exact in every dtype
(in float32 and float64, some assigner draws also move a GT side to 1/64 px from an anchor point, exact there, where
the centre margin decides).
The generated draws reach images and whole batches without targets, one target per image, masks larger than the
prototypes, large prototypes, sides beyond the regressable range and a coarsest level of one cell. A YOLOv8 loss
example costs a whole batch, so those tests take a tenth of the profile's examples (``costly``).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given

from conformance import strategies as S
from conformance._cases import costly, generated, golden_params
from oracle.conventions import TaskAlignedConvention, presets_of


@pytest.mark.parametrize("case", golden_params("assign.task_aligned", "criteria.yolov8"))
def test_golden(case, detconf, request):
    detconf.check_case(case, request)


#: The task-aligned presets (oracle.conventions registry): ultralytics 8.4 and <= 8.2, mmdet.
TASK_ALIGNED = presets_of(TaskAlignedConvention)


@pytest.mark.parametrize("convention", TASK_ALIGNED)
@generated
@given(data=S.st.data())
def test_task_aligned_generated(detconf, request, convention, data):
    # GT sides 1/64 px from an anchor point, where the centre margin decides (exact in float32 and float64).
    inputs, config = data.draw(S.task_aligned_inputs(convention, gap=S.tie_gap(detconf.dtype),
                                                     margin_offsets=detconf.dtype in (torch.float32, torch.float64)))
    detconf.check_generated("assign.task_aligned", inputs, config, "ultralytics", request)


@costly(10)
@given(data=S.st.data())
def test_yolov8_detection_generated(detconf, request, data):
    inputs, config = data.draw(S.yolov8_inputs(gap=S.tie_gap(detconf.dtype)))
    detconf.check_generated("criteria.yolov8_detection", inputs, config, "ultralytics", request)


@pytest.mark.parametrize("overlap_mask", [True, False], ids=["overlap-masks", "per-target-masks"])
@costly(10)
@given(data=S.st.data())
def test_yolov8_segmentation_generated(detconf, request, overlap_mask, data):
    inputs, config = data.draw(S.yolov8_inputs(gap=S.tie_gap(detconf.dtype), segmentation=True,
                                               overlap_mask=overlap_mask))
    detconf.check_generated("criteria.yolov8_segmentation", inputs, config, "ultralytics", request)
