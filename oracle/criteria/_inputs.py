"""Validation and small index helpers shared by the criteria.

Canonical criterion inputs (DESIGN §3):

- a *layer* is a mapping with ``pred_logits`` ``[B, Q, K]`` and ``pred_boxes`` ``[B, Q, 4]``
  (normalised cxcywh), optionally ``pred_masks`` ``[B, Q, h, w]`` (mask logits);
- *targets* is a sequence of ``B`` mappings with ``labels`` int ``[T_i]`` in ``[0, num_classes)``
  and ``boxes`` ``[T_i, 4]`` normalised cxcywh, optionally ``masks`` ``[T_i, H_i, W_i]`` in [0, 1]
  and ``image_size`` ``(height, width)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from .. import boxes as box_ops
from .._checks import as_float64, as_index, check_finite, check_rank, fail
from .._targets import Target, target_arg


@dataclass(frozen=True)
class Layer:
    """One decoder layer's (or encoder's, or denoising part's) validated outputs."""

    logits: torch.Tensor  # [B, Q, K]
    boxes: torch.Tensor  # [B, Q, 4] normalised cxcywh
    masks: torch.Tensor | None = None  # [B, Q, h, w]


def layer_arg(name: str, layer: object, *, num_logits: int | None = None, batch: int | None = None) -> Layer:
    """Validate a layer mapping; ``num_logits`` and ``batch`` pin ``K`` and ``B`` when given."""
    if not isinstance(layer, Mapping):
        raise fail(name, "a mapping with 'pred_logits' and 'pred_boxes'", type(layer).__name__)
    for key in ("pred_logits", "pred_boxes"):
        if key not in layer:
            raise fail(name, f"a '{key}' entry", f"keys {sorted(layer)}")
    logits = as_float64(f"{name}['pred_logits']", layer["pred_logits"])
    check_rank(f"{name}['pred_logits']", logits, 3, "([B, Q, K])")
    check_finite(f"{name}['pred_logits']", logits)
    if num_logits is not None and logits.shape[2] != num_logits:
        raise fail(f"{name}['pred_logits']", f"K = {num_logits} logits per query", f"shape {tuple(logits.shape)}")
    if batch is not None and logits.shape[0] != batch:
        raise fail(f"{name}['pred_logits']", f"batch size {batch}", f"shape {tuple(logits.shape)}")
    boxes = box_ops.validate_boxes(f"{name}['pred_boxes']", layer["pred_boxes"], "cxcywh", rank=3)
    if boxes.shape[:2] != logits.shape[:2]:
        raise fail(f"{name}['pred_boxes']", f"shape ({logits.shape[0]}, {logits.shape[1]}, 4) to match pred_logits",
                   f"shape {tuple(boxes.shape)}")
    masks = None
    if layer.get("pred_masks") is not None:
        masks = as_float64(f"{name}['pred_masks']", layer["pred_masks"])
        check_rank(f"{name}['pred_masks']", masks, 4, "([B, Q, h, w] mask logits)")
        check_finite(f"{name}['pred_masks']", masks)
        if masks.shape[:2] != logits.shape[:2]:
            raise fail(f"{name}['pred_masks']", f"leading shape ({logits.shape[0]}, {logits.shape[1]})",
                       f"shape {tuple(masks.shape)}")
    return Layer(logits, boxes, masks)


def targets_arg(targets: object, batch: int, num_classes: int, *, need_masks: bool = False,
                need_image_size: bool = False) -> list[Target]:
    """Validate ``B`` per-image target mappings."""
    if isinstance(targets, Mapping) or not isinstance(targets, Sequence):
        raise fail("targets", "a sequence of per-image mappings", type(targets).__name__)
    if len(targets) != batch:
        raise fail("targets", f"{batch} per-image mappings (the batch size of the outputs)", f"{len(targets)}")
    return [target_arg(f"targets[{i}]", t, num_classes, need_masks=need_masks, need_image_size=need_image_size)
            for i, t in enumerate(targets)]


Indices = list[tuple[torch.Tensor, torch.Tensor]]


def indices_arg(name: str, indices: object, num_queries: int, targets: Sequence[Target]) -> Indices:
    """A given matching: per image ``(pred_idx, gt_idx)`` int tensors, one-to-one and in range."""
    if isinstance(indices, Mapping) or not isinstance(indices, Sequence) or len(indices) != len(targets):
        raise fail(name, f"{len(targets)} per-image (pred_idx, gt_idx) pairs", repr(type(indices).__name__))
    out = []
    for i, (pair, target) in enumerate(zip(indices, targets)):
        if not isinstance(pair, Sequence) or len(pair) != 2:
            raise fail(f"{name}[{i}]", "a (pred_idx, gt_idx) pair", type(pair).__name__)
        rows = as_index(f"{name}[{i}][0]", pair[0]).reshape(-1)
        cols = as_index(f"{name}[{i}][1]", pair[1]).reshape(-1)
        if rows.numel() != cols.numel():
            raise fail(f"{name}[{i}]", "pred_idx and gt_idx of equal length", f"{rows.numel()} and {cols.numel()}")
        for what, idx, n in (("pred_idx", rows, num_queries), ("gt_idx", cols, len(target.labels))):
            if bool(((idx < 0) | (idx >= n)).any()):
                raise fail(f"{name}[{i}] {what}", f"indices in [0, {n})", f"{idx.tolist()}")
            if torch.unique(idx).numel() != idx.numel():
                raise fail(f"{name}[{i}] {what}", "distinct indices (a one-to-one matching)", f"{idx.tolist()}")
        out.append((rows, cols))
    return out


def flat_index(indices: Indices) -> tuple[torch.Tensor, torch.Tensor]:
    """``(batch_idx, query_idx)`` of every matched prediction, images in order (DETR's
    ``_get_src_permutation_idx``)."""
    if not indices:
        empty = torch.zeros(0, dtype=torch.int64)
        return empty, empty
    batch = torch.cat([torch.full_like(rows, i) for i, (rows, _) in enumerate(indices)])
    query = torch.cat([rows for rows, _ in indices])
    return batch, query


def matched_targets(indices: Indices, targets: Sequence[Target]) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels ``[N]`` and boxes ``[N, 4]`` of the matched targets, in the order of :func:`flat_index`."""
    labels = torch.cat([t.labels[cols] for t, (_, cols) in zip(targets, indices)]) if targets else \
        torch.zeros(0, dtype=torch.int64)
    boxes = torch.cat([t.boxes[cols] for t, (_, cols) in zip(targets, indices)]) if targets else \
        torch.zeros(0, 4, dtype=torch.float64)
    return labels, boxes
