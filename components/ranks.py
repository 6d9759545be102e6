"""Rank-dependent components: how a batch splits across the ranks of a process group, and what of the other
ranks the reference needs to give each rank's result.

In data-parallel training each rank runs the criterion on its own images, but normalises by a count
all-reduced over every rank (DETR's ``num_boxes``: ``all_reduce(sum of targets) / world_size``, clamped to
1; facebookresearch/detr ``models/detr.py`` ``SetCriterion.forward``). A rank's losses therefore depend on
data it does not see. The reference takes that world as an input (``world_num_boxes``: the per-rank
target counts); this module says, per component, how the suite cuts a batch into per-rank shards, which
statistic each rank contributes, and how the reference receives them.

- :func:`split`: ``inputs`` -> one shard per rank, contiguous images (rank r gets images
  ``[r*B/N, (r+1)*B/N)``); the outputs' tensors are cut along their batch dimension, ``targets`` and the
  per-image matchings of ``indices`` along their length, anything else (``dn_meta``) goes to every rank.
- :func:`local_statistic`: the number a rank contributes (its target count).
- :func:`with_world`: a shard's inputs plus the world the reference needs (every rank's statistic).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from oracle import conventions as conv

#: The rank-dependent components and the input that carries the other ranks' statistics to the reference.
RANK_DEPENDENT: Mapping[str, str] = {"criteria.set_criterion": "world_num_boxes"}


def rank_dependent(component: str) -> bool:
    return component in RANK_DEPENDENT


def batch_size(component: str, inputs: Mapping[str, Any]) -> int:
    """The number of images of a batch (``len(targets)``)."""
    _require(component)
    return len(inputs["targets"])


def _require(component: str) -> None:
    if component not in RANK_DEPENDENT:
        raise KeyError(f"{component} is not rank-dependent; rank-dependent: {', '.join(RANK_DEPENDENT)}")


def _cut(tree: Any, batch: int, start: int, stop: int) -> Any:
    """The model's outputs cut to images ``[start, stop)``: tensors with a leading batch dimension are cut,
    mappings and lists (decoder layers) are walked, anything else (``dn_meta``) is kept."""
    if isinstance(tree, torch.Tensor):
        return tree[start:stop] if tree.dim() >= 1 and tree.shape[0] == batch else tree
    if isinstance(tree, Mapping):
        return {k: _cut(v, batch, start, stop) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_cut(v, batch, start, stop) for v in tree]
    return tree


def _shard(key: str, value: Any, batch: int, start: int, stop: int) -> Any:
    if key == "targets":
        return list(value[start:stop])
    if key == "indices":  # {layer: [per image]}
        return {layer: list(per_image[start:stop]) for layer, per_image in value.items()}
    return _cut(value, batch, start, stop)


def split(component: str, inputs: Mapping[str, Any], world_size: int) -> list[dict]:
    """One shard of ``inputs`` per rank (module docstring). The batch must have at least one image per rank:
    a data-parallel rank always has one. An input that already simulates the world (``world_num_boxes``) is
    left out: the ranks are real here."""
    _require(component)
    if world_size < 1:
        raise ValueError(f"world_size: expected >= 1, got {world_size}")
    batch = batch_size(component, inputs)
    if batch < world_size:
        raise ValueError(f"a batch of {batch} image(s) cannot give each of {world_size} ranks an image")
    world_key = RANK_DEPENDENT[component]
    bounds = [r * batch // world_size for r in range(world_size + 1)]
    return [{k: _shard(k, v, batch, bounds[r], bounds[r + 1]) for k, v in inputs.items() if k != world_key}
            for r in range(world_size)]


def local_statistic(component: str, inputs: Mapping[str, Any]) -> float:
    """What one rank contributes to the all-reduce: its number of target boxes."""
    _require(component)
    return float(sum(len(t["labels"]) for t in inputs["targets"]))


def reduces_across_ranks(component: str, profile: str) -> bool:
    """Whether ``profile``'s convention reduces over the ranks (``num_boxes="world_mean"``); under ``"local"``
    or ``"matched"`` (ultralytics' RT-DETR loss) each rank's result is its shard's alone."""
    _require(component)
    return conv.get_profile(profile).criterion.num_boxes == "world_mean"


def with_world(component: str, shard: Mapping[str, Any], statistics: Sequence[float], profile: str) -> dict:
    """``shard`` plus every rank's statistic, as the reference takes them (``world_num_boxes``), where the
    profile reduces across ranks; else ``shard`` as it is."""
    if not reduces_across_ranks(component, profile):
        return dict(shard)
    return {**shard, RANK_DEPENDENT[component]: torch.tensor([float(s) for s in statistics], dtype=torch.float64)}


def with_group_world(component: str, inputs: Mapping[str, Any], profile: str) -> dict:
    """On a rank of an initialised ``torch.distributed`` group: ``inputs`` plus every rank's statistic,
    all-gathered (how the reference itself runs as a candidate under ``--world-size``)."""
    import torch.distributed as dist
    if not reduces_across_ranks(component, profile):
        return dict(inputs)
    mine = torch.tensor([local_statistic(component, inputs)], dtype=torch.float64)
    gathered = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, mine)
    return with_world(component, inputs, [float(g) for g in gathered], profile)
