"""DINO's contrastive denoising (CDN): query construction with explicit random draws, and the slot layout
its losses read (the losses themselves: ``SetCriterion.loss_denoising``).

Construction follows IDEA-Research/DINO models/dino/dn_components.py ``prepare_for_cdn`` (mmdet's
``CdnQueryGenerator`` in models/layers/transformer/dino_layers.py draws in the same order and
builds the same layout). The randomness is an input (:class:`CdnDraws`), so the construction is a
pure, testable function; :func:`draw_cdn` samples draws with torch's RNG in upstream's call order.

Layout. With ``N`` targets in the batch (images concatenated) and ``G`` groups, the ``2 G N``
*known* queries are ordered part-major: part ``j`` (``j = 2g`` positive, ``2g + 1`` negative of
group g) holds all N targets. In the padded batch, image b's target t of part j sits at slot
``j * M + t`` where ``M = max_b T_b``; ``pad_size = 2 G M``. The loss uses the positives only:
slot ``g * 2M + t`` learns target t, normalised by ``num_boxes * G``.

Upstream: DINO dn_components.py (``prepare_for_cdn``, ``dn_post_process``), models/dino/dino.py
(``SetCriterion.forward``, ``prep_for_dn``), util/misc.py (``inverse_sigmoid``, eps 1e-3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from .. import boxes as box_ops
from .._checks import as_float64, as_index, check_finite, check_int, check_range, check_scalar, fail
from ._inputs import Indices, Target, targets_arg


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """``log(x / (1 - x))`` with x clamped to [0, 1] and both terms to >= eps (DINO util/misc.py:
    eps 1e-3; mmdet transformer/utils.py: eps 1e-5).

    x ``[...]`` finite (float64; other real dtypes are converted), ``eps > 0``."""
    x = as_float64("x", x)
    check_finite("x", x)
    eps = check_scalar("eps", eps, low=0.0, low_open=True)
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def cdn_group_count(max_targets: int, dn_number: int) -> int:
    """DINO's number of denoising groups G for ``dn_number`` and the largest per-image target count.

    ``d = 2 * dn_number``; no targets -> 1; ``d >= 100`` -> ``d // (2 * max_targets)``; ``d < 1`` -> 1;
    0 -> 1. (So ``dn_number = 100`` gives ``100 // max_targets``, and a small ``dn_number`` gives
    ``2 * dn_number`` groups whatever the target count.)
    """
    max_targets = check_int("max_targets", max_targets, low=0)
    dn_number = check_int("dn_number", dn_number)
    d = 2 * dn_number
    if max_targets == 0:
        d = 1
    elif d >= 100:
        d = d // (2 * max_targets)
    elif d < 1:
        d = 1
    return d if d != 0 else 1


@dataclass(frozen=True)
class CdnDraws:
    """The random numbers of one CDN construction, in upstream's order, for ``K = 2 G N`` known queries.

    - ``label_p``: float ``[K]`` in [0, 1) (``rand_like``); query k's label is replaced where
      ``label_p[k] < label_noise_ratio / 2``;
    - ``relabel``: int ``[#replaced]`` in [0, num_classes) (``randint_like``), the new labels in
      order of k;
    - ``box_sign``: int ``[K, 4]`` in {0, 1} (``randint_like``), mapped to -1/+1;
    - ``box_part``: float ``[K, 4]`` in [0, 1) (``rand_like``), +1 for negatives.
    """

    label_p: torch.Tensor
    relabel: torch.Tensor
    box_sign: torch.Tensor
    box_part: torch.Tensor


@dataclass(frozen=True)
class CdnQueries:
    """The denoising queries of a batch.

    - ``labels``: int64 ``[B, pad_size]`` noised class indices (0 in unused slots);
    - ``boxes``: float64 ``[B, pad_size, 4]`` noised normalised cxcywh (0 in unused slots);
    - ``boxes_unact``: ``inverse_sigmoid(boxes)`` in used slots, 0 elsewhere (what the decoder gets);
    - ``valid``: bool ``[B, pad_size]``, True where a slot holds a query;
    - ``attn_mask``: bool ``[pad_size + num_queries]^2``, True = may not attend;
    - ``dn_meta``: ``{"pad_size", "num_dn_group"}``.
    """

    labels: torch.Tensor
    boxes: torch.Tensor
    boxes_unact: torch.Tensor
    valid: torch.Tensor
    attn_mask: torch.Tensor
    dn_meta: dict[str, int]


def _known_count(targets: Sequence[Target], groups: int) -> int:
    return 2 * groups * sum(len(t.labels) for t in targets)


def draw_cdn(targets: Sequence[Mapping], *, dn_number: int, label_noise_ratio: float, num_classes: int,
             generator: torch.Generator | None = None) -> CdnDraws:
    """Sample :class:`CdnDraws` with torch's RNG in DINO's call order (label p, relabel, sign, part).

    targets as in :func:`prepare_for_cdn`; ``dn_number`` an int, ``label_noise_ratio`` in [0, 1], ``num_classes``
    a positive int, ``generator`` a ``torch.Generator`` or None (torch's default one)."""
    dn_number = check_int("dn_number", dn_number)
    label_noise_ratio = check_scalar("label_noise_ratio", label_noise_ratio, low=0.0, high=1.0)
    num_classes = check_int("num_classes", num_classes, low=1)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise fail("generator", "a torch.Generator or None", type(generator).__name__)
    if not isinstance(targets, Sequence) or isinstance(targets, (str, bytes)):
        raise fail("targets", "a sequence of per-image mappings", type(targets).__name__)
    tgts = targets_arg(targets, len(targets), num_classes)
    g = cdn_group_count(max((len(t.labels) for t in tgts), default=0), dn_number)
    k = _known_count(tgts, g)
    label_p = torch.rand(k, generator=generator, dtype=torch.float64)
    chosen = int((label_p < label_noise_ratio * 0.5).sum()) if label_noise_ratio > 0 else 0
    relabel = torch.randint(0, num_classes, (chosen,), generator=generator)
    box_sign = torch.randint(0, 2, (k, 4), generator=generator)
    box_part = torch.rand(k, 4, generator=generator, dtype=torch.float64)
    return CdnDraws(label_p, relabel, box_sign, box_part)


def prepare_for_cdn(targets: Sequence[Mapping], *, dn_number: int, label_noise_ratio: float, box_noise_scale: float,
                    num_classes: int, num_queries: int, draws: CdnDraws,
                    inverse_sigmoid_eps: float = 1e-3) -> CdnQueries:
    """Build the CDN queries from targets (normalised cxcywh) and explicit draws.

    Label noise (if ``label_noise_ratio > 0``): known query k gets ``relabel`` where
    ``label_p[k] < ratio / 2``. Box noise (if ``box_noise_scale > 0``): each xyxy corner moves by
    ``sign * part * (w/2 or h/2) * box_noise_scale`` with ``part`` in [0, 1) for positives and
    [1, 2) for negatives, then corners are clamped to [0, 1] and converted back to cxcywh.
    """
    dn_number = check_int("dn_number", dn_number)
    ratio = check_scalar("label_noise_ratio", label_noise_ratio, low=0.0, high=1.0)
    scale = check_scalar("box_noise_scale", box_noise_scale, low=0.0)
    num_queries = check_int("num_queries", num_queries, low=0)
    num_classes = check_int("num_classes", num_classes, low=1)
    if not isinstance(draws, CdnDraws):
        raise fail("draws", "a CdnDraws", type(draws).__name__)
    if not isinstance(targets, Sequence) or isinstance(targets, (str, bytes)):
        raise fail("targets", "a sequence of per-image mappings", type(targets).__name__)
    tgts = targets_arg(targets, len(targets), num_classes)
    if not tgts:
        raise fail("targets", "at least one image", "an empty batch")
    counts = [len(t.labels) for t in tgts]
    max_n = max(counts)
    g = cdn_group_count(max_n, dn_number)
    n = sum(counts)
    k = 2 * g * n
    pad_size = 2 * g * max_n

    label_p = as_float64("draws.label_p", draws.label_p).reshape(-1)
    box_sign = as_index("draws.box_sign", draws.box_sign)
    box_part = as_float64("draws.box_part", draws.box_part)
    if label_p.numel() != k or box_sign.shape != (k, 4) or box_part.shape != (k, 4):
        raise fail("draws", f"label_p [{k}], box_sign [{k}, 4], box_part [{k}, 4] for {g} groups of {n} targets",
                   f"{tuple(label_p.shape)}, {tuple(box_sign.shape)}, {tuple(box_part.shape)}")
    check_range("draws.label_p", label_p, 0.0, 1.0)
    check_range("draws.box_sign", box_sign, 0, 1)
    check_range("draws.box_part", box_part, 0.0, 1.0)

    labels = torch.cat([t.labels for t in tgts]).repeat(2 * g)
    boxes = torch.cat([t.boxes for t in tgts]).repeat(2 * g, 1)
    image = torch.cat([torch.full((c,), b, dtype=torch.int64) for b, c in enumerate(counts)]).repeat(2 * g)
    slot = torch.cat([torch.cat([torch.arange(c) for c in counts]) + max_n * j for j in range(2 * g)]) if n else \
        torch.zeros(0, dtype=torch.int64)

    if ratio > 0:
        chosen = torch.nonzero(label_p < ratio * 0.5).reshape(-1)
        relabel = as_index("draws.relabel", draws.relabel).reshape(-1)
        if relabel.numel() != chosen.numel():
            raise fail("draws.relabel", f"{chosen.numel()} new labels (one per label_p < {ratio * 0.5})",
                       f"{relabel.numel()}")
        check_range("draws.relabel", relabel, 0, num_classes - 1)
        labels = labels.clone()
        labels[chosen] = relabel

    noised = boxes
    if scale > 0 and k:
        negative = torch.zeros(k, dtype=torch.bool)
        for grp in range(g):
            negative[(2 * grp + 1) * n:(2 * grp + 2) * n] = True
        part = (box_part + negative[:, None].to(torch.float64)) * (box_sign.to(torch.float64) * 2 - 1)
        half = boxes[:, 2:].repeat(1, 2) / 2
        corners = box_ops.convert(boxes, "cxcywh", "xyxy") + part * half * scale
        corners = corners.clamp(0.0, 1.0)
        # Not box_ops.convert: after noise a corner pair may cross (x2 < x1), which DINO keeps as is.
        noised = box_ops.xyxy_to_cxcywh_formula(corners)

    b = len(tgts)
    out_labels = torch.zeros(b, pad_size, dtype=torch.int64)
    out_boxes = torch.zeros(b, pad_size, 4, dtype=torch.float64)
    out_unact = torch.zeros(b, pad_size, 4, dtype=torch.float64)
    valid = torch.zeros(b, pad_size, dtype=torch.bool)
    out_labels[image, slot] = labels
    out_boxes[image, slot] = noised
    out_unact[image, slot] = inverse_sigmoid(noised, inverse_sigmoid_eps)
    valid[image, slot] = True
    return CdnQueries(out_labels, out_boxes, out_unact, valid, cdn_attention_mask(pad_size, g, num_queries),
                      {"pad_size": pad_size, "num_dn_group": g})


def cdn_attention_mask(pad_size: int, groups: int, num_queries: int) -> torch.Tensor:
    """``[pad_size + num_queries]^2`` bool, True = blocked: matching queries see no denoising query;
    a group's denoising queries see their own group and the matching queries only.

    ``pad_size`` a non-negative multiple of ``groups`` (a positive int), ``num_queries`` a non-negative int."""
    pad_size = check_int("pad_size", pad_size, low=0)
    groups = check_int("groups", groups, low=1)
    num_queries = check_int("num_queries", num_queries, low=0)
    if pad_size % groups:
        raise fail("pad_size", f"a multiple of groups ({groups})", str(pad_size))
    size = pad_size + num_queries
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[pad_size:, :pad_size] = True
    block = pad_size // groups if groups else 0
    for grp in range(groups):
        rows = slice(block * grp, block * (grp + 1))
        mask[rows, :block * grp] = True
        mask[rows, block * (grp + 1):pad_size] = True
    return mask


def split_denoising(layer: Mapping, dn_meta: Mapping) -> tuple[dict, dict]:
    """Split a layer's ``[B, pad_size + Q, ...]`` outputs into (matching part, denoising part),
    the first ``pad_size`` queries being the denoising ones (DINO ``dn_post_process``)."""
    pad = _dn_meta(dn_meta, "dn_meta")[0]
    if not isinstance(layer, Mapping):
        raise fail("layer", "a mapping with 'pred_logits' and 'pred_boxes'", type(layer).__name__)
    matching, dn = {}, {}
    for key in ("pred_logits", "pred_boxes"):
        value = layer.get(key)
        if not isinstance(value, torch.Tensor) or value.dim() != 3 or value.shape[1] < pad:
            raise fail(f"layer['{key}']", f"a [B, pad_size + Q, ...] tensor with pad_size = {pad}",
                       f"{type(value).__name__} {tuple(value.shape) if isinstance(value, torch.Tensor) else ''}")
        check_finite(f"layer['{key}']", value)
        matching[key], dn[key] = value[:, pad:], value[:, :pad]
    return matching, dn


def dn_meta_arg(dn_meta: object) -> tuple[int, int]:
    """``(pad_size, num_dn_group)`` of a checked ``dn_meta``: ``pad_size`` a multiple of ``2 * num_dn_group``."""
    return _dn_meta(dn_meta, "dn_meta")


def _dn_meta(dn_meta: object, name: str) -> tuple[int, int]:
    """:func:`dn_meta_arg`, naming the caller's argument ``name`` in its errors."""
    if not isinstance(dn_meta, Mapping) or "pad_size" not in dn_meta or "num_dn_group" not in dn_meta:
        raise fail(name, "a mapping with 'pad_size' and 'num_dn_group'", repr(dn_meta))
    pad, groups = dn_meta["pad_size"], dn_meta["num_dn_group"]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (pad, groups)) or groups < 1 \
            or pad % (2 * groups):
        raise fail(name, "pad_size a multiple of 2 * num_dn_group >= 2", repr(dict(dn_meta)))
    return pad, groups


def dn_positive_slots(count: int, pad_size: int, groups: int) -> torch.Tensor:
    """The positive denoising slots ``[groups * count]`` int64 of an image with ``count`` targets, group-major:
    ``g * (pad_size / groups) + t`` (DINO ``prepare_for_cdn``: each group holds ``single_pad = 2 * max_count``
    slots, positives first). ``count`` and ``pad_size`` non-negative ints, ``groups`` a positive int."""
    count = check_int("count", count, low=0)
    pad_size = check_int("pad_size", pad_size, low=0)
    groups = check_int("groups", groups, low=1)
    return (torch.arange(groups) * (pad_size // groups))[:, None].add(torch.arange(count)).reshape(-1)


def dn_positive_indices(targets: Sequence[Target], pad_size: int, groups: int) -> Indices:
    """Per image, the positive denoising slots ``g * (pad_size / G) + t`` and their targets ``t``.

    ``targets``: checked targets (each with ``labels``); ``pad_size`` a non-negative int with room for every image's
    targets in each of the ``groups`` (a positive int) groups."""
    pad_size = check_int("pad_size", pad_size, low=0)
    groups = check_int("groups", groups, low=1)
    if not isinstance(targets, Sequence) or not all(isinstance(getattr(t, "labels", None), torch.Tensor)
                                                    for t in targets):
        raise fail("targets", "a sequence of checked targets (with int64 labels)", type(targets).__name__)
    return _dn_positive_indices(targets, pad_size, groups, "pad_size")


def _dn_positive_indices(targets: Sequence[Target], pad_size: int, groups: int, name: str) -> Indices:
    """:func:`dn_positive_indices` of checked arguments, naming ``name`` (where pad_size came from) in its errors."""
    single_pad = pad_size // groups
    out = []
    for t in targets:
        n = len(t.labels)
        tgt = torch.arange(n).repeat(groups)
        src = dn_positive_slots(n, pad_size, groups)
        if n and single_pad < 2 * n:
            raise fail(name, f"pad_size / num_dn_group >= 2 * {n} (room for image's targets)",
                       f"pad_size {pad_size}, num_dn_group {groups}")
        out.append((src, tgt))
    return out
