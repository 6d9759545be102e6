"""YOLOv8: the task-aligned assigner and the detection and segmentation losses (golden cases).

The golden inputs keep every anchor inside a GT at a positive alignment metric, so no GT's top-k
reaches into tied zero metrics (which upstream's ``torch.topk`` orders arbitrarily); tie-aware
checking of task-aligned assignments is not implemented yet, so there are no generated inputs here.
"""

from __future__ import annotations

import pytest

from conformance._cases import golden_params


@pytest.mark.parametrize("case", golden_params("assign.task_aligned", "criteria.yolov8"))
def test_golden(case, detconf, request):
    detconf.check_case(case, request)
