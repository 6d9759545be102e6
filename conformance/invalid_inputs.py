"""Invalid inputs the contract rejects: a candidate must raise on each, as the reference does.

A conformance check of values asks what an implementation computes; these ask what it does where there is
nothing to compute: a label outside the classes, a batch of targets of another size than the predictions, a
non-finite or negative-size box, a focal alpha outside ``[0, 1]``. The reference raises
:class:`~oracle.errors.OracleInputError` on each (the check verifies it first); a candidate passes by raising any
exception, and fails (class *accepted-invalid-input*) when it returns outputs, a silent number where there is none
(``conformance/runner.py`` ``check_invalid``). A library that does return on one is recorded as a known difference
with its reason.

Each :class:`InvalidInput` builds float64 canonical inputs (components/contract.py) for one profile; every profile
with the convention the component uses gets one, so that every adapter is asked under the profiles it declares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from oracle.conventions import get_profile, profiles_with

F64 = torch.float64


@dataclass(frozen=True)
class InvalidInput:
    """One invalid call: ``component`` under ``profile`` with ``config`` on ``inputs()`` (canonical, float64)."""

    name: str
    component: str
    profile: str
    inputs: Callable[[], dict[str, Any]]
    why: str  # what is invalid, in words
    #: A regular expression the reference's OracleInputError message must match: the input is rejected for the
    #: stated reason, not for another flaw of the case.
    error: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.component}/{self.name}-{self.profile}"


# --------------------------------------------------------------------------- builders

def _boxes_cxcywh(n: int) -> torch.Tensor:
    """``[n, 4]`` normalised cxcywh boxes, distinct."""
    return torch.tensor([[0.25 + 0.1 * i, 0.5, 0.2, 0.3] for i in range(n)], dtype=F64)


def _targets(profile: str, labels: list[list[int]]) -> list[dict[str, torch.Tensor]]:
    """Per-image targets; with an ``image_size`` where the profile's matching cost is in pixels (mmdet)."""
    pixel = get_profile(profile).matcher.giou.units == "pixel"
    size = {"image_size": torch.tensor([480.0, 640.0], dtype=F64)} if pixel else {}
    return [{"labels": torch.tensor(image, dtype=torch.int64), "boxes": _boxes_cxcywh(len(image)), **size}
            for image in labels]


def _num_logits(profile: str, num_classes: int) -> int:
    """Logit columns of a DETR-family prediction: ``num_classes + 1`` (a no-object class) under a softmax cost."""
    return num_classes + (get_profile(profile).matcher.class_cost == "softmax")


def _matching(profile: str, labels: list[list[int]], num_classes: int = 3, images: int | None = None) -> dict:
    """``assign.hungarian`` inputs: ``images`` images (default: one per target list) of 4 queries."""
    b = len(labels) if images is None else images
    logits = torch.linspace(-2, 2, b * 4 * _num_logits(profile, num_classes), dtype=F64).reshape(b, 4, -1)
    boxes = _boxes_cxcywh(4).expand(b, 4, 4).clone()
    return {"pred_logits": logits, "pred_boxes": boxes, "targets": _targets(profile, labels)}


def _nan_logit(inputs: dict) -> dict:
    logits = inputs["pred_logits"].clone()
    logits[0, 1, 0] = float("nan")
    return {**inputs, "pred_logits": logits}


def _criterion(profile: str, labels: list[list[int]], num_classes: int = 3) -> dict:
    m = _matching(profile, labels, num_classes)
    return {"outputs": {"pred_logits": m["pred_logits"], "pred_boxes": m["pred_boxes"]}, "targets": m["targets"]}


_UNIT = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.25, 0.25, 0.75, 0.5]], dtype=F64)
_NAN_BOX = torch.tensor([[0.0, 0.0, float("nan"), 1.0], [0.1, 0.1, 0.4, 0.6]], dtype=F64)
_NEGATIVE_BOX = torch.tensor([[0.5, 0.0, 0.25, 1.0], [0.1, 0.1, 0.4, 0.6]], dtype=F64)  # x2 < x1
_OVERLAP = {"op": "iou", "aligned": False, "fmt": "xyxy", "convention": "box_iou"}


#: Three levels of one cell each: 3 anchor points, fewer than any YOLOv8 profile's top-k (10).
_ONE_CELL_PER_LEVEL = {"featmap_sizes": [[1, 1], [1, 1], [1, 1]], "strides": [8, 16, 32]}


def _yolov8_one_target(anchors: int = 3, classes: int = 3, segmentation: bool = False) -> dict:
    """``criteria.yolov8_detection`` (or ``_segmentation``, with 4 prototypes of 4 x 4 and an index map of 8 x 8)
    inputs: one image of ``anchors`` anchors with one GT (normalised cxcywh)."""
    out = {"pred_distri": torch.linspace(-2, 2, anchors * 64, dtype=F64).reshape(1, anchors, 64),
           "pred_logits": torch.linspace(-1, 1, anchors * classes, dtype=F64).reshape(1, anchors, classes),
           "batch": {"batch_idx": torch.tensor([0]), "cls": torch.tensor([1]),
                     "bboxes": torch.tensor([[0.5, 0.5, 0.5, 0.5]], dtype=F64)}}
    if segmentation:
        masks = torch.zeros(1, 8, 8, dtype=F64)
        masks[0, 2:6, 2:6] = 1.0
        out["batch"]["masks"] = masks
        out["mask_coefficients"] = torch.linspace(-1, 1, anchors * 4, dtype=F64).reshape(1, anchors, 4)
        out["proto"] = torch.linspace(-1, 1, 64, dtype=F64).reshape(1, 4, 4, 4)
    return out


def _cases() -> list[InvalidInput]:
    out = []
    for p in profiles_with("matcher"):
        # Under a softmax cost, label num_classes is the no-object column: a silent match there is a wrong number.
        out.append(InvalidInput("label-equal-to-num-classes", "assign.hungarian", p, lambda p=p: _matching(p, [[0, 3]]),
                                "a target label equal to the number of classes (3)", r"labels in \[0, 3\)"))
        if _num_logits(p, 3) > 3:  # under a focal cost, label 3 is already beyond the logits
            out.append(InvalidInput("label-beyond-the-logits", "assign.hungarian", p,
                                    lambda p=p: _matching(p, [[0, _num_logits(p, 3)]]),
                                    "a target label beyond the last logit column", r"labels in \[0, 3\)"))
        out.append(InvalidInput("more-targets-than-images", "assign.hungarian", p,
                                lambda p=p: _matching(p, [[0], [1]], images=1),
                                "two images of targets for a batch of one image", r"expected 1 per-image"))
        if get_profile(p).matcher.non_finite_cost == "raise":  # the others match it (test_hungarian_non_finite)
            out.append(InvalidInput("nan-logit", "assign.hungarian", p, lambda p=p: _nan_logit(_matching(p, [[0, 1]])),
                                    "a NaN prediction logit under a matcher that refuses non-finite costs",
                                    r"pred_logits: expected finite values"))
    for p in profiles_with("criterion"):
        out.append(InvalidInput("label-equal-to-num-classes", "criteria.set_criterion", p,
                                lambda p=p: _criterion(p, [[0, 3]]), "a target label equal to num_classes (3)",
                                r"labels in \[0, 3\)", {"num_classes": 3}))
    for p in profiles_with("box_iou"):
        out.append(InvalidInput("nan-box", "boxes.overlap", p, lambda: {"boxes1": _NAN_BOX, "boxes2": _UNIT},
                                "a box with a NaN coordinate", "finite", _OVERLAP))
        out.append(InvalidInput("negative-size-box", "boxes.overlap", p,
                                lambda: {"boxes1": _NEGATIVE_BOX, "boxes2": _UNIT}, "an xyxy box with x2 < x1",
                                "x2 >= x1", _OVERLAP))
    for p in profiles_with("iou_loss"):
        out.append(InvalidInput("negative-size-box", "losses.giou_loss", p,
                                lambda: {"pred": _NEGATIVE_BOX, "target": _UNIT}, "an xyxy box with x2 < x1",
                                "x2 >= x1", {"convention": "iou_loss", "reduction": "sum"}))
    focal = {"logits": torch.linspace(-3, 3, 12, dtype=F64).reshape(4, 3), "targets": torch.eye(4, 3, dtype=F64)}
    out.append(InvalidInput("alpha-above-one", "losses.sigmoid_focal_loss", "dino", lambda: dict(focal),
                            "a focal alpha of 1.5 (a weight in [0, 1])", "alpha",
                            {"alpha": 1.5, "gamma": 2.0, "reduction": "sum"}))
    out.append(InvalidInput("label-beyond-the-logits", "losses.softmax_cross_entropy", "detr",
                            lambda: {"logits": torch.zeros(2, 3, dtype=F64), "labels": torch.tensor([0, 3])},
                            "a label beyond the last logit column", r"labels in \[0, 3\)", {"reduction": "mean"}))
    for p in profiles_with("yolov8"):
        if not get_profile(p).yolov8.assigner.clip_topk:  # mmdet's assigner takes min(topk, A) instead
            why = "an image of 3 anchor points, fewer than the assigner's top-k (ultralytics' torch.topk raises)"
            out.append(InvalidInput("fewer-anchors-than-topk", "criteria.yolov8_detection", p, _yolov8_one_target,
                                    why, "at most the number of anchors", dict(_ONE_CELL_PER_LEVEL)))
            out.append(InvalidInput("fewer-anchors-than-topk", "criteria.yolov8_segmentation", p,
                                    lambda: _yolov8_one_target(segmentation=True), why,
                                    "at most the number of anchors", {**_ONE_CELL_PER_LEVEL, "overlap_mask": True}))
    return out


#: Every invalid input the suite asks about.
INVALID_INPUTS: tuple[InvalidInput, ...] = tuple(_cases())
