"""Rank-dependent components: how a batch splits across the ranks of a process group, and what of the other
ranks the reference needs to give each rank's result.

In data-parallel training each rank runs the criterion on its own images but normalises by numbers reduced
over every rank: DETR's ``num_boxes`` (``all_reduce`` of the target count, divided by the world size,
clamped to 1; facebookresearch/detr ``models/detr.py`` ``SetCriterion.forward``), mmdet's DETR heads'
``num_total_pos`` and, with ``sync_cls_avg_factor``, ``cls_avg_factor`` (``reduce_mean``;
mmdet/models/dense_heads/detr_head.py ``loss_by_feat_single``, dino_head.py ``_loss_dn_single``). A rank's
losses therefore depend on data it does not see. The reference takes that world as an input; this module
says, per component, how the suite cuts a batch into per-rank shards, which statistics each rank
contributes, and how the reference receives every rank's.

- :func:`split`: ``inputs`` -> one shard per rank, contiguous images (rank r gets images
  ``[r*B/N, (r+1)*B/N)``); batch tensors are cut along their batch dimension (dimension 1 for mmdet's
  per-layer ``[L, B, ...]`` scores), ``targets`` and the per-image matchings of ``indices`` along their
  length, anything else (``dn_meta``) goes to every rank.
- :func:`local_statistic`: what one rank contributes, from its shard alone.
- :func:`with_world`: a shard's inputs plus every rank's statistics, as the reference takes them.
- :func:`with_group_world`: the same on a rank of a live ``torch.distributed`` group (all-gathered).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from oracle import conventions as conv
from oracle.criteria import MMDetDETRHeadLoss

Statistic = dict[str, list[float]]


@dataclass(frozen=True)
class RankSplit:
    """How one component's batch splits and what the reference needs of the other ranks.

    - ``world_key``: the reference's input that carries every rank's statistics.
    - ``batch_dims``: top-level inputs whose tensors have the batch at a dimension other than 0.
    - ``statistic``: ``(shard, config, profile) -> {name: [values]}``, one rank's contribution.
    - ``world_input``: every rank's statistics -> the value of ``world_key``.
    - ``reduces``: ``(profile, config) -> bool``, whether the convention reduces across ranks at all.
    """

    world_key: str
    batch_dims: Mapping[str, int]
    statistic: Callable[[Mapping[str, Any], Mapping[str, Any], str], Statistic]
    world_input: Callable[[Sequence[Statistic]], Any]
    reduces: Callable[[str, Mapping[str, Any]], bool]


def _target_count(shard, config, profile) -> Statistic:
    return {"num_boxes": [float(sum(len(t["labels"]) for t in shard["targets"]))]}


def _mmdet_head(config) -> MMDetDETRHeadLoss:
    from .contract import mmdet_head_convention
    return MMDetDETRHeadLoss(mmdet_head_convention(config), num_classes=config["num_classes"])


def _mmdet_statistics(shard, config, profile) -> Statistic:
    from .contract import MMDET_SCORE_INPUTS
    kwargs = {k: shard[k] for k in MMDET_SCORE_INPUTS[2:] if k in shard}
    if "dn_meta" in shard:
        kwargs["dn_meta"] = {k: int(v) for k, v in shard["dn_meta"].items()}
    stats = _mmdet_head(config).statistics(shard["all_cls_scores"], shard["all_bbox_preds"], shard["targets"],
                                           **kwargs)
    return {key: list(pair) for key, pair in stats.items()}


SPLITS: Mapping[str, RankSplit] = {
    "criteria.set_criterion": RankSplit(
        world_key="world_num_boxes", batch_dims={}, statistic=_target_count,
        world_input=lambda stats: torch.tensor([s["num_boxes"][0] for s in stats], dtype=torch.float64),
        reduces=lambda profile, config: conv.get_profile(profile).criterion.num_boxes == "world_mean"),
    "criteria.mmdet_detr_head": RankSplit(
        world_key="world_statistics", batch_dims={"all_cls_scores": 1, "all_bbox_preds": 1, "dn_cls_scores": 1,
                                                  "dn_bbox_preds": 1},
        statistic=_mmdet_statistics,
        # {layer: [ranks, 2]}: every rank's (num_pos, cls_avg_factor) of each layer
        world_input=lambda stats: {key: torch.tensor([s[key] for s in stats], dtype=torch.float64)
                                   for key in stats[0]},
        reduces=lambda profile, config: True),
}

#: The rank-dependent components.
RANK_DEPENDENT = tuple(SPLITS)


def rank_dependent(component: str) -> bool:
    return component in SPLITS


def _spec(component: str) -> RankSplit:
    if component not in SPLITS:
        raise KeyError(f"{component} is not rank-dependent; rank-dependent: {', '.join(SPLITS)}")
    return SPLITS[component]


def batch_size(component: str, inputs: Mapping[str, Any]) -> int:
    """The number of images of a batch (``len(targets)``)."""
    _spec(component)
    return len(inputs["targets"])


def _cut(tree: Any, batch: int, dim: int, start: int, stop: int) -> Any:
    """Tensors whose dimension ``dim`` is the batch cut to images ``[start, stop)``; mappings and lists
    (decoder layers) walked; anything else (``dn_meta``) kept."""
    if isinstance(tree, torch.Tensor):
        if tree.dim() > dim and tree.shape[dim] == batch:
            return tree.narrow(dim, start, stop - start)
        return tree
    if isinstance(tree, Mapping):
        return {k: _cut(v, batch, dim, start, stop) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_cut(v, batch, dim, start, stop) for v in tree]
    return tree


def _shard(spec: RankSplit, key: str, value: Any, batch: int, start: int, stop: int) -> Any:
    if key == "targets":
        return list(value[start:stop])
    if key == "indices":  # {layer: [per image]}
        return {layer: list(per_image[start:stop]) for layer, per_image in value.items()}
    if key == "dn_meta":
        return value
    return _cut(value, batch, spec.batch_dims.get(key, 0), start, stop)


def split(component: str, inputs: Mapping[str, Any], world_size: int) -> list[dict]:
    """One shard of ``inputs`` per rank (module docstring). The batch must have at least one image per rank:
    a data-parallel rank always has one. An input that already simulates the world (``world_num_boxes``) is
    left out: the ranks are real here."""
    spec = _spec(component)
    if world_size < 1:
        raise ValueError(f"world_size: expected >= 1, got {world_size}")
    batch = batch_size(component, inputs)
    if batch < world_size:
        raise ValueError(f"a batch of {batch} image(s) cannot give each of {world_size} ranks an image")
    bounds = [r * batch // world_size for r in range(world_size + 1)]
    return [{k: _shard(spec, k, v, batch, bounds[r], bounds[r + 1]) for k, v in inputs.items() if k != spec.world_key}
            for r in range(world_size)]


def local_statistic(component: str, shard: Mapping[str, Any], config: Mapping[str, Any], profile: str) -> Statistic:
    """What one rank contributes to the reductions, from its shard alone."""
    return _spec(component).statistic(shard, config, profile)


def with_world(component: str, shard: Mapping[str, Any], statistics: Sequence[Statistic],
               config: Mapping[str, Any], profile: str) -> dict:
    """``shard`` plus every rank's statistics as the reference takes them, where the convention reduces across
    ranks; else ``shard`` as it is (ultralytics' RT-DETR loss normalises each rank by its own matches)."""
    spec = _spec(component)
    if not spec.reduces(profile, config):
        return dict(shard)
    return {**shard, spec.world_key: spec.world_input(list(statistics))}


def with_group_world(component: str, inputs: Mapping[str, Any], config: Mapping[str, Any], profile: str) -> dict:
    """On a rank of an initialised ``torch.distributed`` group: ``inputs`` plus every rank's statistics,
    all-gathered (how the reference itself runs as a candidate under ``--world-size``)."""
    import torch.distributed as dist
    if not _spec(component).reduces(profile, config):
        return dict(inputs)
    gathered: list[Statistic | None] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, local_statistic(component, inputs, config, profile))
    return with_world(component, inputs, gathered, config, profile)
