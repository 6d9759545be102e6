"""Canonical-format helpers: what an adapter needs to translate the contract's inputs and outputs into a
library's own layout and back, written once.

- **Names.** A canonical key never contains a dot, because the fixture store joins nested keys with
  dots (``in.weights.<name>``). A dotted name (a ``state_dict`` key ``layers.0.linear1.weight``, an mmdet
  loss key ``d0.loss_cls``) is written with ``/`` in its place: :func:`canonical_keys` and
  :func:`dotted_keys` convert a mapping, :func:`dotted_name` one name.
- **Targets.** Libraries that concatenate the targets of a batch (ultralytics' ``gt_bboxes``/``gt_groups``,
  its matchers' GT indices) number them globally; the contract numbers them per image.
  :func:`target_offsets` gives each image's first global index and :func:`per_image_matching` turns
  global ``(pred, gt)`` pairs into the contract's ``{"pred", "gt"}`` per image.
- **Denoising slots.** DINO-style contrastive denoising (``dn_meta = {pad_size, num_dn_group}``) puts
  group ``g``'s positive query of target ``t`` at slot ``g * (pad_size / num_dn_group) + t``
  (:func:`oracle.criteria.denoising.dn_positive_slots`); :func:`cdn_positive_slots` lists them per image
  for a batch, with each image's targets as offsets into the concatenation (:func:`cdn_global_targets`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

import torch

from oracle.criteria.denoising import dn_positive_slots

V = TypeVar("V")


def dotted_name(name: str) -> str:
    """A canonical name (``layers/0/linear1/weight``) with its dots back (``layers.0.linear1.weight``)."""
    return name.replace("/", ".")


def dotted_keys(mapping: Mapping[str, V]) -> dict[str, V]:
    """``{canonical name: value}`` -> ``{dotted name: value}`` (a ``state_dict``, an mmdet loss dict)."""
    return {dotted_name(k): v for k, v in mapping.items()}


def canonical_keys(mapping: Mapping[str, V]) -> dict[str, V]:
    """``{dotted name: value}`` -> ``{canonical name: value}``, the inverse of :func:`dotted_keys`."""
    return {k.replace(".", "/"): v for k, v in mapping.items()}


def target_offsets(counts: Sequence[int]) -> list[int]:
    """The global index of each image's first target when the batch's targets are concatenated."""
    return [sum(counts[:i]) for i in range(len(counts))]


def per_image_matching(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]],
                       counts: Sequence[int]) -> list[dict[str, torch.Tensor]]:
    """Per image, ``(pred, gt)`` with ``gt`` global indices into the concatenated targets -> the contract's
    ``{"pred": pred, "gt": gt}`` with ``gt`` indices into that image's targets."""
    return [{"pred": pred, "gt": gt - offset} for (pred, gt), offset in zip(pairs, target_offsets(counts))]


def cdn_positive_slots(counts: Sequence[int], pad_size: int, groups: int) -> list[torch.Tensor]:
    """Per image with ``counts[i]`` targets, its positive denoising slots ``[groups * counts[i]]`` int64,
    group-major (``g * (pad_size / groups) + t``)."""
    return [dn_positive_slots(n, pad_size, groups) for n in counts]


def cdn_global_targets(counts: Sequence[int]) -> list[torch.Tensor]:
    """Per image, its targets' indices into the batch's concatenated targets ``[counts[i]]`` int64."""
    return [torch.arange(offset, offset + n) for offset, n in zip(target_offsets(counts), counts)]
