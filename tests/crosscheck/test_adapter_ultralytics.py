"""The ultralytics adapter (conformance/adapters/ultralytics.py): it leaves its inputs and torch's default dtype as
it found them, and it agrees with the reference on inputs the golden catalogue does not have yet (a batch with as
many targets as images, in both mask modes), through the suite's own check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from golden.catalogue import f64
from golden.case import yolo_batch
from golden.tables.yolov8 import YOLO_LEVELS

from ..conftest import import_or_skip


@pytest.fixture(scope="module")
def adapter():
    import_or_skip("ultralytics.utils.loss", 'pip install -c constraints.txt -e ".[ultralytics]"')
    from conformance.adapters.ultralytics import make_adapter
    return make_adapter()


def _yolo_inputs(seed: int, counts: list[int], *, overlap: bool | None = None) -> dict:
    """YOLOv8 loss inputs on the 64 x 64 image of the golden cases (segmentation inputs when ``overlap`` is given)."""
    rng = np.random.default_rng(seed)
    b, a = len(counts), sum(h * w for h, w in YOLO_LEVELS["featmap_sizes"])
    decay = -0.6 * np.tile(np.arange(16), 4)  # boxes of GT size, as the golden cases: no tied top-k at zero metric
    out = {"pred_distri": f64(rng.standard_normal((b, a, 64)) + decay),
           "pred_logits": f64(rng.standard_normal((b, a, 3)) * 2),
           "batch": yolo_batch(rng, counts, mask_shape=None if overlap is None else (16, 16), overlap=bool(overlap))}
    if overlap is not None:
        out.update(mask_coefficients=f64(rng.standard_normal((b, a, 4))),
                   proto=f64(rng.standard_normal((b, 4, 16, 16))))
    return out


def test_inputs_that_ultralytics_changes_in_place_are_copied(adapter):
    # DFLoss clamps its target in place (loss.py DFLoss.__call__) and crop_mask zeroes its masks in place.
    targets = torch.tensor([[-1.0, 3.0, 20.0, 7.5]])
    adapter.run("losses.distribution_focal_loss", {"logits": torch.zeros(1, 4, 16), "targets": targets},
                {"reduction": "sum"}, "ultralytics")
    assert targets.tolist() == [[-1.0, 3.0, 20.0, 7.5]]
    masks = torch.ones(1, 4, 4)
    cropped = adapter.run("masks.crop", {"masks": masks, "boxes": torch.tensor([[1.0, 1.0, 3.0, 2.0]])}, {},
                          "ultralytics")["masks"]
    assert masks.sum().item() == 16 and cropped.sum().item() == 2  # columns 1-2 of row 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_default_dtype_is_restored(adapter, dtype):
    # tests/conftest.py sets float64; the YOLOv8 losses run under the run's dtype (float32 for half) and restore it.
    inputs = {k: (v.to(dtype) if k.startswith("pred") else v) for k, v in _yolo_inputs(0, [1, 1]).items()}
    out = adapter.run("criteria.yolov8_detection", inputs, dict(YOLO_LEVELS), "ultralytics")
    assert torch.get_default_dtype() == torch.float64
    assert out["loss"].dtype == (dtype if dtype == torch.float32 else torch.float32)  # ultralytics' loss buffer
    with pytest.raises(ValueError, match="Target size"):  # logits for one anchor too few: its BCE raises
        adapter.run("criteria.yolov8_detection", {**inputs, "pred_logits": inputs["pred_logits"][:, 1:]},
                    dict(YOLO_LEVELS), "ultralytics")
    assert torch.get_default_dtype() == torch.float64


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("component, overlap", [("criteria.yolov8_detection", None),
                                                ("criteria.yolov8_segmentation", True),
                                                ("criteria.yolov8_segmentation", False)],
                         ids=["detection", "segmentation-overlap-masks", "segmentation-per-target-masks"])
def test_as_many_targets_as_images(adapter, component, overlap, dtype):
    # N == B, one target per image: the per-target masks (N, H, W) have the shape of the index maps (B, H, W), and
    # with one target per image even the same values (1 marks the image's first target), so a shape-based choice of
    # the format could not go wrong here; the golden random-per-target-masks case checks the flag. Proposed as a
    # golden case (report of issue #9).
    from conformance.runner import check
    inputs = _yolo_inputs(1700, [1, 1], overlap=overlap)
    config = dict(YOLO_LEVELS) if overlap is None else {**YOLO_LEVELS, "overlap_mask": overlap}
    result = adapter.run(component, inputs, config, "ultralytics")
    assert result["fg_mask"].any() and (result["loss"] > 0).all()  # every term is exercised
    check(adapter, component, inputs, config, "ultralytics", device="cpu", dtype=dtype)
