"""The benchmark workloads: canonical inputs at the sizes detectors train at.

A workload is one canonical call of components/contract.py (component, config, inputs), so every
implementation runs through its conformance adapter on the *same* inputs: the reference in float64,
the others in float32. ``profiles`` lists the conventions under which the call is meaningful; each
implementation runs under the first one it follows (the reference under the first).
The input builders are the golden tables' (golden/case.py) where they draw the same tensors at the
workload's sizes; the others are the benchmark's own, each saying how it differs from the tables'.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from components.canonical import canonical_keys
from golden.case import f64, rand_layer, rand_targets, yolo_batch, yolo_points
from oracle.masks import padding_mask
from oracle.params import encoder_weights

Inputs = dict[str, Any]


@dataclass(frozen=True)
class Workload:
    name: str
    component: str
    config: dict
    profiles: tuple[str, ...]
    build: Callable[[np.random.Generator], Inputs]
    doc: str

    def inputs(self) -> Inputs:
        return self.build(np.random.Generator(np.random.PCG64(12)))


# --------------------------------------------------------------------------- DETR family

def _hungarian(queries: int, targets: int, softmax: bool) -> Workload:
    classes = 91
    logits = classes + 1 if softmax else classes
    kind = "softmax" if softmax else "focal"

    def build(rng):
        return {**rand_layer(rng, 8, queries, logits),
                "targets": rand_targets(rng, [targets] * 8, classes, image_size=(800.0, 1333.0))}
    profiles = ("hf_detr", "detr", "mmdet") if softmax else ("hf_deformable_detr", "deformable_detr", "dino",
                                                                 "ultralytics")
    return Workload(f"hungarian-{kind}-q{queries}-t{targets}", "assign.hungarian", {}, profiles, build,
                    f"Hungarian matching, {kind} class cost: batch 8, {queries} queries, {targets} targets, 91 classes")


def _detr_criterion() -> Workload:
    def build(rng):
        outputs = {**rand_layer(rng, 8, 100, 92), "aux_outputs": [rand_layer(rng, 8, 100, 92) for _ in range(5)]}
        return {"outputs": outputs, "targets": rand_targets(rng, [20] * 8, 91, image_size=(800.0, 1333.0))}
    return Workload("detr-criterion-6-layers", "criteria.set_criterion", {"num_classes": 91}, ("hf_detr", "detr"),
                    build, "DETR set criterion, forward and backward: 6 decoder layers, batch 8, 100 queries, "
                           "20 targets per image, 91 classes")


def _dino_criterion() -> Workload:
    groups, count = 5, 20
    pad = 2 * groups * count

    def build(rng):
        outputs = {**rand_layer(rng, 4, 900, 91), "aux_outputs": [rand_layer(rng, 4, 900, 91) for _ in range(5)],
                   "interm_outputs": rand_layer(rng, 4, 900, 91),
                   "dn_meta": {"pad_size": torch.tensor(pad), "num_dn_group": torch.tensor(groups)},
                   "dn_outputs": {**rand_layer(rng, 4, pad, 91),
                                  "aux_outputs": [rand_layer(rng, 4, pad, 91) for _ in range(5)]}}
        return {"outputs": outputs, "targets": rand_targets(rng, [count] * 4, 91, image_size=(800.0, 1333.0))}
    return Workload("dino-criterion-6-layers-dn", "criteria.set_criterion", {"num_classes": 91}, ("dino",), build,
                    f"DINO criterion with interm and {groups} denoising groups, forward and backward: 6 layers, "
                    f"batch 4, 900 queries, {count} targets per image, 91 classes")


def _sine_position() -> Workload:
    def build(rng):
        # Random image sizes in a DETR-size mask; the position table's masks are written out.
        sizes = [(25 - int(rng.integers(0, 5)), 38 - int(rng.integers(0, 7))) for _ in range(8)]
        return {"mask": padding_mask(sizes, (25, 38))}
    return Workload("sine-position-25x38", "position.sine", {}, ("detr", "hf_detr", "mmdet"), build,
                    "sine positional encoding of a padding mask: batch 8, 25 x 38, 128 features per axis")


def _encoder_layer() -> Workload:
    def build(rng):
        # A random pos drawn before src; the transformer table's encoder_inputs draws src and computes pos.
        mask = padding_mask([(25, 38)] * 4 + [(20, 30)] * 4, (25, 38))
        pos = torch.as_tensor(rng.standard_normal((8, 950, 256)))
        return {"src": f64(rng.standard_normal((8, 950, 256))), "pos": pos, "key_padding_mask": mask.flatten(1),
                "weights": canonical_keys(encoder_weights(256, 2048, 1, 1200))}
    return Workload("detr-encoder-layer-25x38", "transformer.encoder", {"num_layers": 1, "num_heads": 8}, ("detr",),
                    build, "one DETR encoder layer, forward and backward: batch 8, 25 x 38 tokens, d 256, 8 heads, "
                           "FFN 2048")


# --------------------------------------------------------------------------- dense detectors

YOLO_SIZES = [[80, 80], [40, 40], [20, 20]]  # 640 x 640: 8400 anchors
YOLO_STRIDES = [8, 16, 32]


def _gt_xyxy(rng, b: int, n: int, image: float = 640.0) -> np.ndarray:
    # Realistic object sizes (16-256 px in a 640 image); the golden tables' boxes are small-image builders.
    wh = rng.uniform(16, 256, size=(b, n, 2))
    xy = rng.uniform(0, image - wh)
    return np.concatenate([xy, xy + wh], axis=-1)


def _task_aligned() -> Workload:
    def build(rng):
        # Scores and boxes for every anchor, then GTs; the YOLOv8 table's problem() draws GTs first, per image.
        points = yolo_points(YOLO_SIZES, YOLO_STRIDES)
        size = f64(rng.uniform(16, 128, size=(8, 8400, 2)))
        return {"pd_scores": f64(rng.uniform(0, 1, (8, 8400, 80))),
                "pd_bboxes": torch.cat([points - size / 2, points + size / 2], dim=-1), "anchor_points": points,
                "gt_labels": torch.as_tensor(rng.integers(0, 80, (8, 50))), "gt_bboxes": f64(_gt_xyxy(rng, 8, 50)),
                "mask_gt": torch.ones(8, 50, dtype=torch.bool)}
    return Workload("task-aligned-8400", "assign.task_aligned", {"convention": "TAL_ULTRALYTICS", "stride_val": 16.0},
                    ("ultralytics",), build,
                    "task-aligned assignment (ultralytics): batch 8, 8400 anchors, 80 classes, 50 targets per image")


def _yolo_det_inputs(rng) -> Inputs:
    # 80 classes and DFL logits decaying at -0.3 a bin; the YOLOv8 table's det() has 3 classes and -0.6.
    return {"pred_distri": f64(rng.standard_normal((8, 8400, 64)) - 0.3 * np.tile(np.arange(16), 4)),
            "pred_logits": f64(rng.standard_normal((8, 8400, 80)) * 2),
            "batch": yolo_batch(rng, [50] * 8, size=(0.03, 0.4), classes=80)}


def _yolov8_detection() -> Workload:
    return Workload("yolov8-detection-8400", "criteria.yolov8_detection",
                    {"featmap_sizes": YOLO_SIZES, "strides": YOLO_STRIDES}, ("ultralytics",), _yolo_det_inputs,
                    "YOLOv8 detection loss, forward and backward: batch 8, 8400 anchors, 80 classes, 50 targets "
                    "per image")


def _yolov8_segmentation() -> Workload:
    def build(rng):
        out = _yolo_det_inputs(rng)
        batch = out["batch"]
        # Whole boxes filled, drawing nothing; yolo_batch's mask_shape draws an 80% fill of each box.
        masks = np.zeros((8, 160, 160))
        for t, (image, box) in enumerate(zip(batch["batch_idx"].tolist(), batch["bboxes"].numpy())):
            x1, y1 = ((box[:2] - box[2:] / 2) * 160).astype(int)
            x2, y2 = np.ceil((box[:2] + box[2:] / 2) * 160).astype(int)
            masks[image, y1:y2, x1:x2] = t % 50 + 1  # the target's index in its image, plus 1
        batch["masks"] = f64(masks)
        out.update(mask_coefficients=f64(rng.standard_normal((8, 8400, 32))),
                   proto=f64(rng.standard_normal((8, 32, 160, 160))))
        return out
    return Workload("yolov8-segmentation-160", "criteria.yolov8_segmentation",
                    {"featmap_sizes": YOLO_SIZES, "strides": YOLO_STRIDES, "overlap_mask": True}, ("ultralytics",),
                    build, "YOLOv8 segmentation loss, forward and backward: batch 8, 8400 anchors, 80 classes, "
                           "50 targets per image, 32 prototypes of 160 x 160")


def _retinanet() -> Workload:
    sizes = [(-(-800 // s), -(-1344 // s)) for s in (8, 16, 32, 64, 128)]  # 800 x 1333 padded to 800 x 1344

    def build(rng):
        # GTs anywhere first, then the head's outputs; the anchor-head table jitters GTs from anchors, drawn last.
        targets = []
        for _ in range(2):
            boxes = _gt_xyxy(rng, 1, 10, image=800.0)[0]
            targets.append({"boxes": f64(boxes), "labels": torch.as_tensor(rng.integers(0, 80, 10))})
        return {"cls_scores": [f64(rng.standard_normal((2, 9 * 80, h, w))) for h, w in sizes],
                "bbox_preds": [f64(rng.standard_normal((2, 9 * 4, h, w)) * 0.3) for h, w in sizes], "targets": targets}
    metas = [{"img_shape": [800, 1333], "pad_shape": [800, 1344]}] * 2
    return Workload("retinanet-anchor-head-800x1333", "criteria.anchor_head",
                    {"head": "RETINANET_HEAD_MMDET", "num_classes": 80, "img_metas": metas}, ("mmdet",), build,
                    "mmdet AnchorHead loss, RetinaNet configuration, forward and backward: batch 2, 800 x 1333, "
                    "5 levels (about 200k anchors per image), 80 classes, 10 targets per image")


WORKLOADS: tuple[Workload, ...] = (
    *[_hungarian(q, t, s) for s in (True, False) for q in (300, 900) for t in (20, 100)],
    _detr_criterion(), _dino_criterion(), _sine_position(), _encoder_layer(),
    _task_aligned(), _yolov8_detection(), _yolov8_segmentation(), _retinanet(),
)


def workload(name: str) -> Workload:
    """The workload called ``name``; an unknown name raises ``KeyError`` listing the known ones."""
    for w in WORKLOADS:
        if w.name == name:
            return w
    raise KeyError(f"unknown workload {name!r}; known: {[w.name for w in WORKLOADS]}")


def profile_for(adapter: Any, w: Workload, impl: str, device: str, dtype: torch.dtype) -> str | None:
    """The profile under which ``impl`` runs ``w``: the reference's is the first; an implementation's the first
    its adapter supports on ``device`` in ``dtype`` (None when it supports none)."""
    if impl == "oracle":
        return w.profiles[0]
    return next((p for p in w.profiles if adapter.supports(w.component, device, dtype, p, w.config)), None)
