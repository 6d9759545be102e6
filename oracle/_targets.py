"""Validation of one image's targets, shared by the matcher and the criteria.

A target is a mapping with ``labels`` int ``[T]`` in ``[0, num_classes)`` and ``boxes`` ``[T, 4]``
(normalised cxcywh), optionally ``masks`` ``[T, H, W]`` in [0, 1] and ``image_size`` ``(height, width)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from . import boxes as box_ops
from ._checks import as_float64, as_index, check_finite, check_labels, check_range, check_rank, fail


@dataclass(frozen=True)
class Target:
    labels: torch.Tensor  # int64 [T]
    boxes: torch.Tensor  # float64 [T, 4] in the format asked for (DETR family: normalised cxcywh)
    masks: torch.Tensor | None = None  # float64 [T, H, W]
    image_size: tuple[float, float] | None = None


def image_size_arg(name: str, size: object) -> tuple[float, float]:
    """A finite, positive ``(height, width)``."""
    t = as_float64(name, size)
    if t.shape != (2,):
        raise fail(name, "(height, width)", f"shape {tuple(t.shape)}")
    check_finite(name, t)
    h, w = float(t[0]), float(t[1])
    if h <= 0 or w <= 0:
        raise fail(name, "positive (height, width)", f"({h}, {w})")
    return h, w


def target_arg(name: str, target: object, num_classes: int, *, need_masks: bool = False,
               need_image_size: bool = False, image_size_why: str = "", fmt: box_ops.BoxFormat = "cxcywh") -> Target:
    """Validate one target mapping (``boxes`` ``[T, 4]`` in ``fmt``, ``labels`` ``[T]``); errors name ``name``
    (e.g. ``targets[1]`` or ``image 1: targets``)."""
    if not isinstance(target, Mapping):
        raise fail(name, "a mapping with 'labels' and 'boxes'", type(target).__name__)
    for key in ("labels", "boxes") + (("masks",) if need_masks else ()):
        if key not in target:
            raise fail(name, f"a '{key}' entry", f"keys {sorted(target)}")
    if need_image_size and "image_size" not in target:
        raise fail(name, "an 'image_size' (height, width) entry" + (f": {image_size_why}" if image_size_why else ""),
                   f"keys {sorted(target)}")
    labels = as_index(f"{name}['labels']", target["labels"])
    check_rank(f"{name}['labels']", labels, 1, "([T])")
    check_labels(f"{name}['labels']", labels, num_classes)
    boxes = as_float64(f"{name}['boxes']", target["boxes"])
    if boxes.numel() == 0 and labels.numel() == 0:
        boxes = boxes.reshape(0, 4)
    boxes = box_ops.validate_boxes(f"{name}['boxes']", boxes, fmt, rank=2)
    if boxes.shape[0] != labels.shape[0]:
        raise fail(f"{name}['boxes']", f"shape ({labels.shape[0]}, 4), one box per label",
                   f"shape {tuple(boxes.shape)}")
    masks = None
    if need_masks:
        masks = as_float64(f"{name}['masks']", target["masks"])
        check_rank(f"{name}['masks']", masks, 3, "([T, H, W] binary masks)")
        check_finite(f"{name}['masks']", masks)
        check_range(f"{name}['masks']", masks, 0.0, 1.0)
        if masks.shape[0] != labels.shape[0]:
            raise fail(f"{name}['masks']", f"{labels.shape[0]} masks, one per label", f"shape {tuple(masks.shape)}")
    size = image_size_arg(f"{name}['image_size']", target["image_size"]) if need_image_size else None
    return Target(labels, boxes, masks, size)
