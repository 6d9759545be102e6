"""YOLOv8: the task-aligned assigner and the detection and segmentation losses (golden cases).

The golden inputs keep every anchor inside a GT at a positive alignment metric, so no GT's top-k
reaches into tied zero metrics (which upstream's ``torch.topk`` orders arbitrarily); tie-aware
checking of task-aligned assignments is not implemented yet, so there are no generated inputs here.
"""

from __future__ import annotations

import pytest
from hypothesis import given

from conformance import strategies as S
from conformance._cases import costly, generated, golden_params


@pytest.mark.parametrize("case", golden_params("assign.task_aligned", "criteria.yolov8"))
def test_golden(case, detconf, request):
    detconf.check_case(case, request)


#: The task-aligned presets (oracle/conventions/matching.py): ultralytics 8.4 and <= 8.2, mmdet.
TASK_ALIGNED = ("TAL_ULTRALYTICS", "TAL_ULTRALYTICS_LEGACY", "TAL_MMDET")


@pytest.mark.parametrize("convention", TASK_ALIGNED)
@generated
@given(data=S.st.data())
def test_task_aligned_generated(detconf, request, convention, data):
    inputs, config = data.draw(S.task_aligned_inputs(convention, gap=S.tie_gap(detconf.dtype)))
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
