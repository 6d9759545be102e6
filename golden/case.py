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
