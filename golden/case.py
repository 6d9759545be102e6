"""A golden case and the builders of its inputs, shared by the case tables (golden/tables/) and the
benchmark workloads.

A :class:`Case` records its component, profile (the conventions), config and seed; its inputs come
from ``numpy.random.Generator(PCG64(seed))`` (``build(rng)``) or are written out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from oracle import boxes as box_ops
from oracle.anchors import anchor_points

from .store import CaseRecord

Inputs = dict[str, Any]


@dataclass(frozen=True)
class Case(CaseRecord):
    """One golden case. ``build(rng)`` makes its inputs (nested dicts/lists of tensors)."""

    build: Callable[[np.random.Generator], Inputs] = field(compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "component": self.component, "profile": self.profile,
                "config": dict(self.config), "seed": self.seed, "tags": list(self.tags)}

    def inputs(self) -> Inputs:
        return self.build(np.random.Generator(np.random.PCG64(self.seed)))

    @property
    def file(self) -> str:
        """Path of the fixture relative to golden/."""
        return f"data/{self.name}.safetensors"


# --------------------------------------------------------------------------- input helpers

def f64(x: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def i64(x: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.int64).reshape(-1))


def rand_xyxy(rng: np.random.Generator, n: int, *, scale: float = 1.0, min_size: float = 0.02) -> torch.Tensor:
    xy = rng.random((n, 2)) * 0.7 * scale
    wh = (min_size + rng.random((n, 2)) * 0.3) * scale
    return f64(np.concatenate([xy, xy + wh], axis=1))


def rand_cxcywh(rng: np.random.Generator, n: int) -> torch.Tensor:
    return box_ops.convert(rand_xyxy(rng, n), "xyxy", "cxcywh")


def rand_logits(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 2.0) -> torch.Tensor:
    return f64(rng.standard_normal(shape) * scale)


def rand_targets(rng: np.random.Generator, counts: list[int], num_classes: int, *,
                 image_size: tuple[float, float] | None = None, masks: tuple[int, int] | None = None) -> list[dict]:
    out = []
    for n in counts:
        t = {"labels": i64(rng.integers(0, num_classes, n)), "boxes": rand_cxcywh(rng, n).reshape(n, 4)}
        if image_size is not None:
            t["image_size"] = f64(image_size)
        if masks is not None:
            t["masks"] = f64(rng.random((n, *masks)) > 0.5)
        out.append(t)
    return out


def pixel_boxes(rng: np.random.Generator, n: int, scale: float = 640.0) -> torch.Tensor:
    """``[n, 4]`` random xyxy boxes in a ``scale`` x ``scale`` image, sides at least 2% of it."""
    return rand_xyxy(rng, n, scale=scale, min_size=0.02)


def rand_layer(rng: np.random.Generator, b: int, q: int, k: int) -> dict[str, torch.Tensor]:
    """One decoder layer's outputs: ``pred_logits`` ``[b, q, k]`` (scale 2), ``pred_boxes`` ``[b, q, 4]`` cxcywh."""
    return {"pred_logits": rand_logits(rng, (b, q, k)),
            "pred_boxes": torch.stack([rand_cxcywh(rng, q) for _ in range(b)])}


def yolo_points(featmap_sizes: list[list[int]], strides: list[int]) -> torch.Tensor:
    """YOLOv8's anchor points of the levels ``featmap_sizes`` (``[h, w]`` each) at ``strides``, in pixels:
    ``[A, 2]``."""
    points, stride = anchor_points([tuple(s) for s in featmap_sizes], strides)
    return points * stride


def yolo_batch(rng: np.random.Generator, counts: list[int], *, size: tuple[float, float] = (0.2, 0.6),
               classes: int = 3, mask_shape: tuple[int, int] | None = None, overlap: bool = True) -> dict:
    """ultralytics' ``batch`` with ``counts[i]`` targets in image ``i`` over ``classes`` classes: targets in image
    order (its collate sorts by image), normalised cxcywh with sides in ``size``, and with ``mask_shape``, masks
    filled inside each box (index maps where later targets overwrite, or per target)."""
    idx = np.repeat(np.arange(len(counts)), counts)
    n = len(idx)
    wh = rng.uniform(*size, size=(n, 2))
    cxcy = wh / 2 + rng.uniform(0, 1, size=(n, 2)) * (1 - wh)
    out = {"batch_idx": torch.as_tensor(idx), "cls": torch.as_tensor(rng.integers(0, classes, n)),
           "bboxes": f64(np.concatenate([cxcy, wh], axis=1).reshape(n, 4))}
    if mask_shape is not None:
        h, w = mask_shape
        per_target = np.zeros((n, h, w))
        for t in range(n):
            x1, y1 = ((cxcy[t] - wh[t] / 2) * [w, h]).astype(int)
            x2, y2 = np.ceil((cxcy[t] + wh[t] / 2) * [w, h]).astype(int)
            per_target[t, y1:y2, x1:x2] = rng.random((y2 - y1, x2 - x1)) < 0.8
        if overlap:
            maps = np.zeros((len(counts), h, w))
            for t in range(n):
                k = t - np.searchsorted(idx, idx[t])  # the target's index within its image
                maps[idx[t]][per_target[t] > 0] = k + 1
            out["masks"] = f64(maps)
        else:
            out["masks"] = f64(per_target)
    return out
