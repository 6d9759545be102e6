"""mmdet 3.3.0's ``AnchorHead`` loss (RetinaNet, RPN-style dense heads) in float64.

Per image (``_get_targets_single``), over the image's anchors of all levels concatenated
(``[A_total, 4]`` xyxy pixels, level-major, then ``(y * W + x) * A + k`` within a level):

1. ``inside_flags``: the anchor's grid point is in the padded image (``valid_flags`` from
   ``pad_shape``) and, with ``allowed_border >= 0``, the anchor lies within ``img_shape`` up to that
   border. No inside anchor is an error (mmdet raises ``ValueError``).
2. The inside anchors are assigned by :func:`~oracle.assign.max_iou.max_iou_assign` and sampled:
   ``"pseudo"`` (``PseudoSampler``: every positive and every negative) or ``"random"``
   (``RandomSampler`` with ``add_gt_as_proposals=False``, as mmdet's RPN config): its draws come from
   torch's global RNG, which the reference cannot reproduce, so the sampled positive and negative
   indices are an input (``sampled``), checked to be assigned positives and negatives.
   The assignment itself can be given too (``gt_inds``, mmdet's encoding over the inside anchors),
   so that a candidate is judged under its own assignment where IoU ties make it legitimately differ
   (DESIGN §6): a GT that matches no anchor well is often tied at its best IoU with several shifted
   anchors (equal intersections), and ``gt_max_assign_all`` then depends on rounding (float32 upstream).
3. Positives: ``labels`` = the GT's label, ``label_weights`` = 1 (or ``pos_weight`` if > 0),
   ``bbox_targets`` = ``coder.encode(anchor, gt)`` (or the GT box itself with ``reg_decoded_bbox``),
   ``bbox_weights`` = 1. Sampled negatives: ``label_weights`` = 1. Everything else: label
   ``num_classes`` (background) with weight 0; ignored and unsampled anchors contribute nothing.
4. Unmapped to all anchors: outside anchors get label ``num_classes`` and zero weights/targets.

``avg_factor = sum over images of max(num_pos, 1)``, plus ``max(num_neg, 1)`` per image with the
random sampler (``SamplingResult.avg_factor``, ``avg_factor_with_neg``); an image without positives
still adds 1. There is no cross-process ``reduce_mean`` in ``AnchorHead``.

Per level (``loss_by_feat_single``), every level divided by the same ``avg_factor + FLT_EPS``
(``weight_reduce_loss``), so the level terms sum to the whole loss:

- classification over every anchor of the level: softmax cross-entropy over ``num_classes + 1``
  logits (background = ``num_classes``), sigmoid binary cross-entropy or sigmoid focal loss over
  ``num_classes`` logits with the background as an all-zero one-hot row (mmdet
  ``_expand_onehot_labels``; ``FocalLoss``'s CPU path ``one_hot(labels, C + 1)[:, :C]``), the anchor's
  ``label_weight`` broadcast over its classes;
- regression: smooth L1 (``beta``) or L1 on the deltas against ``bbox_targets`` weighted by
  ``bbox_weights``; or, with ``reg_decoded_bbox``, the predictions decoded first
  (``coder.decode(anchors, deltas)``, no image clipping) and compared with the GT boxes, where GIoU
  (``GIoULoss(eps=1e-6)``, clamp in pixels) takes the weight ``bbox_weights.mean(-1)``;
- mmdet's ``SmoothL1Loss``/``L1Loss``/``GIoULoss`` return ``(pred * weight).sum()`` (0, without
  ``loss_weight``) when no weight of the level is > 0; the reference does the same.

Inputs in mmdet's layout: ``cls_scores[l]`` ``[B, A * C', H_l, W_l]`` and ``bbox_preds[l]``
``[B, A * 4, H_l, W_l]``, read as ``permute(0, 2, 3, 1)`` to ``[B, H, W, A, ·]``, i.e. the anchor
order above. Targets per image: ``boxes`` ``[K, 4]`` xyxy pixels, ``labels`` ``[K]`` in
``[0, num_classes)``, optional ``ignore_boxes`` ``[M, 4]`` xyxy pixels. Image metas: ``img_shape``
``(H, W)`` and ``pad_shape`` ``(H, W)`` (default: ``img_shape``).

Precision: mmdet generates anchors in float32 and its ``DeltaXYWHBBoxCoder.encode`` casts to
float32 (``bbox2delta``: ``proposals.float()``); the reference computes everything in float64.

Not modelled: the CUDA ``sigmoid_focal_loss`` op of mmcv (mmdet's GPU path with integer labels;
its log saturates at ``log(FLT_MIN)``), ``class_weight`` of ``CrossEntropyLoss``, and RandomSampler's
``add_gt_as_proposals=True`` (its prepended GT boxes do not index ``AnchorHead``'s anchors).

Upstream: mmdet/models/dense_heads/anchor_head.py (``_get_targets_single``, ``get_targets``,
``loss_by_feat``, ``loss_by_feat_single``), mmdet/models/task_modules/samplers/{pseudo_sampler,
random_sampler,sampling_result}.py, mmdet/models/task_modules/prior_generators/{anchor_generator,utils}.py,
mmdet/models/utils/misc.py (``unmap``, ``images_to_levels``), mmdet/models/losses/{cross_entropy_loss,
focal_loss,smooth_l1_loss,iou_loss,utils}.py, configs/_base_/models/retinanet_r50_fpn.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from .._blocks import recomputed_blocks
from .. import boxes as box_ops
from .. import losses as L
from .._checks import (TensorLike, as_float64, as_index, check_finite, check_labels, check_range, check_rank,
                       check_scalar, fail)
from ..anchors import anchor_inside_flags
from .._targets import Target, target_arg
from ..assign.max_iou import AssignResult, max_iou_assign
from ..coders import DeltaXYWHCoder
from ..conventions.dense import ANCHOR_HEAD_MMDET, RETINANET_HEAD_MMDET, AnchorHeadConfig


@dataclass(frozen=True)
class ImageTargets:
    """One image's anchor targets (mmdet ``_get_targets_single`` with ``unmap_outputs=True``).

    Over all ``A_total`` anchors of the image: ``labels`` int64 ``[A_total]`` (``num_classes`` where not
    positive), ``label_weights`` float64 ``[A_total]``, ``bbox_targets`` float64 ``[A_total, 4]`` (deltas,
    or xyxy GT boxes with ``reg_decoded_bbox``; 0 where not positive), ``bbox_weights`` float64
    ``[A_total, 4]``, ``inside_flags`` bool ``[A_total]``. Over the inside anchors
    (``anchors[inside_flags]``, mmdet's indexing): ``pos_inds`` and ``neg_inds`` int64 (sorted, the
    sampled ones) and ``assign``. ``avg_factor``: this image's share of the loss normaliser.
    """

    labels: torch.Tensor
    label_weights: torch.Tensor
    bbox_targets: torch.Tensor
    bbox_weights: torch.Tensor
    inside_flags: torch.Tensor
    pos_inds: torch.Tensor
    neg_inds: torch.Tensor
    assign: AssignResult
    avg_factor: int


@dataclass(frozen=True)
class AnchorHeadLoss:
    """``loss_by_feat``'s result: the weighted per-level terms (mmdet's ``loss_cls`` and ``loss_bbox``
    lists), the global ``avg_factor`` they share, and each image's targets."""

    loss_cls: tuple[torch.Tensor, ...]
    loss_bbox: tuple[torch.Tensor, ...]
    avg_factor: int
    targets: tuple[ImageTargets, ...]

    @property
    def total(self) -> torch.Tensor:
        """The sum of every level's terms (what mmengine's ``parse_losses`` adds up)."""
        return torch.stack([*self.loss_cls, *self.loss_bbox]).sum()


# --------------------------------------------------------------------------- argument checks

def _config_arg(config: object, num_classes: object) -> tuple[AnchorHeadConfig, int]:
    if not isinstance(config, AnchorHeadConfig):
        raise fail("config", "an AnchorHeadConfig (e.g. RETINANET_HEAD_MMDET)", type(config).__name__)
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise fail("num_classes", "a positive int", repr(num_classes))
    return config, num_classes


def _boxes_arg(name: str, boxes: TensorLike) -> torch.Tensor:
    t = as_float64(name, boxes)
    if t.numel() == 0 and t.dim() == 1:  # [] for an image without boxes
        t = t.reshape(0, 4)
    return box_ops.validate_boxes(name, t, "xyxy", rank=2).detach()


def _target_arg(name: str, target: object, num_classes: int) -> tuple[Target, torch.Tensor | None]:
    """The image's target (``boxes`` ``[K, 4]`` xyxy pixels, ``labels`` ``[K]``) and its optional
    ``ignore_boxes`` ``[M, 4]`` xyxy pixels."""
    t = target_arg(name, target, num_classes, fmt="xyxy")
    ignore = target.get("ignore_boxes")
    return t, None if ignore is None else _boxes_arg(f"{name}['ignore_boxes']", ignore)


def _shape_arg(name: str, shape: object) -> tuple[int, int]:
    if not isinstance(shape, (tuple, list, torch.Size)) or len(shape) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape):
        raise fail(name, "(H, W), two positive ints", repr(shape))
    return int(shape[0]), int(shape[1])


def _img_meta_arg(name: str, meta: object) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(img_shape, pad_shape)``."""
    if not isinstance(meta, Mapping) or "img_shape" not in meta:
        raise fail(name, "a mapping with 'img_shape' (H, W) and optionally 'pad_shape' (H, W)",
                   type(meta).__name__ if not isinstance(meta, Mapping) else f"keys {sorted(meta)}")
    img_shape = _shape_arg(f"{name}['img_shape']", meta["img_shape"])
    return img_shape, _shape_arg(f"{name}['pad_shape']", meta.get("pad_shape", img_shape))


def _given_assignment(name: str, gt_inds: TensorLike, computed: AssignResult, labels: torch.Tensor) -> AssignResult:
    """``computed`` with its ``gt_inds`` and ``labels`` replaced by a given assignment (``max_overlaps`` kept)."""
    g = as_index(name, gt_inds)
    n, k = computed.gt_inds.shape[0], labels.shape[0]
    if tuple(g.shape) != (n,):
        raise fail(name, f"shape ({n},) (one entry per inside anchor)", f"shape {tuple(g.shape)}")
    check_range(name, g, -1, k)
    if k == 0:  # the range check left only -1 and 0: nothing is positive
        return AssignResult(g, computed.max_overlaps, torch.full_like(g, -1), k)
    out_labels = torch.where(g > 0, labels[(g - 1).clamp(min=0)], torch.full_like(g, -1))
    return AssignResult(g, computed.max_overlaps, out_labels, k)


_SAMPLED_PARTS = (("pos_inds", "assigned positive (gt_inds > 0)", lambda g: g > 0),
                  ("neg_inds", "assigned negative (gt_inds == 0)", lambda g: g == 0))


def _sampled_arg(name: str, sampled: object, assign: AssignResult) -> tuple[torch.Tensor, torch.Tensor]:
    """Given ``(pos_inds, neg_inds)`` into the inside anchors: in range, distinct, assigned pos / neg; sorted."""
    if not isinstance(sampled, (tuple, list)) or len(sampled) != 2:
        raise fail(name, "a (pos_inds, neg_inds) pair of index tensors into the inside anchors",
                   type(sampled).__name__)
    n = assign.gt_inds.shape[0]
    out = []
    for i, ((part, wanted, is_wanted), given) in enumerate(zip(_SAMPLED_PARTS, sampled)):
        pname = f"{name}[{i}] ({part})"
        idx = as_index(pname, given)
        check_rank(pname, idx, 1, "([P] indices into the inside anchors)")
        if bool(((idx < 0) | (idx >= n)).any()):
            raise fail(pname, f"indices in [0, {n}) (the inside anchors)", f"{idx.tolist()}")
        uniq = torch.unique(idx)
        if uniq.numel() != idx.numel():
            raise fail(pname, "distinct indices", f"{idx.tolist()}")
        bad = uniq[~is_wanted(assign.gt_inds[uniq])]
        if bad.numel() > 0:
            raise fail(pname, f"anchors {wanted}", f"anchor {int(bad[0])} with gt_inds {int(assign.gt_inds[bad[0]])}")
        out.append(uniq)
    return out[0], out[1]


# --------------------------------------------------------------------------- targets

def _unmap(values: torch.Tensor, inside: torch.Tensor, fill: float) -> torch.Tensor:
    out = torch.full((inside.shape[0], *values.shape[1:]), fill, dtype=values.dtype)
    out[inside] = values
    return out


def _encoded_targets(name: str, coder: DeltaXYWHCoder, anchors: torch.Tensor, gt: torch.Tensor,
                     gt_idx: torch.Tensor) -> torch.Tensor:
    """``coder.encode(anchors, gt)``, refusing a zero-size GT (its ``log(gw / pw)`` is -inf upstream)."""
    flat = (gt[:, 2] <= gt[:, 0]) | (gt[:, 3] <= gt[:, 1])
    if bool(flat.any()):
        k = int(gt_idx[flat][0])
        raise fail(f"{name}['boxes'][{k}]", "positive width and height for a box assigned to an anchor "
                   "(the delta encoding takes log(gw / pw); mmdet gives inf/NaN targets)", f"{gt[flat][0].tolist()}")
    return coder.encode(anchors, gt)


def image_targets(anchors: TensorLike, valid_flags: TensorLike, target: Mapping, img_meta: Mapping, *,
                  config: AnchorHeadConfig, num_classes: int, sampled: object = None, gt_inds: TensorLike = None,
                  image: int | None = None) -> ImageTargets:
    """One image's targets: anchors ``[A_total, 4]`` xyxy pixels (all levels), valid_flags bool ``[A_total]``.

    ``target``: ``boxes``, ``labels``, optional ``ignore_boxes``; ``img_meta``: ``img_shape``, optional
    ``pad_shape`` (only ``img_shape`` is used here, for ``allowed_border``). ``sampled``: with the
    random sampler, ``(pos_inds, neg_inds)`` into the inside anchors; None for the pseudo sampler.
    ``gt_inds``: int ``[N_inside]`` (``k + 1`` positive for GT ``k``, 0 negative, -1 ignored) replacing the
    max-IoU assignment; None to compute it.
    ``image``: the image's index in a batch, for error messages. mmdet ``AnchorHead._get_targets_single``.
    """
    suffix = "" if image is None else f"[{image}]"
    name = "target" if image is None else f"targets{suffix}"
    conf, c = _config_arg(config, num_classes)
    a = box_ops.validate_boxes("anchors", anchors, "xyxy", rank=2).detach()
    t, ignore = _target_arg(name, target, c)
    img_shape, _ = _img_meta_arg("img_meta" if image is None else f"img_metas{suffix}", img_meta)
    inside = anchor_inside_flags(a, valid_flags, img_shape, conf.allowed_border)
    if not bool(inside.any()):
        raise fail("anchors", f"at least one valid anchor inside the image {img_shape} (allowed_border "
                   f"{conf.allowed_border}); mmdet raises ValueError", f"none of {a.shape[0]}")
    in_anchors = a[inside]
    assign = max_iou_assign(in_anchors, t.boxes, t.labels, convention=conf.assigner, gt_boxes_ignore=ignore)
    if gt_inds is not None:
        assign = _given_assignment(f"gt_inds{suffix}", gt_inds, assign, t.labels)
    if conf.sampler == "pseudo":
        if sampled is not None:
            raise fail(f"sampled{suffix}", "None with the pseudo sampler (every assigned anchor is used)", "indices")
        pos, neg = assign.pos_inds, assign.neg_inds
    else:
        if sampled is None:
            raise fail(f"sampled{suffix}", "(pos_inds, neg_inds) per image with sampler='random' (its RNG cannot be "
                       "reproduced)", "None")
        pos, neg = _sampled_arg(f"sampled{suffix}", sampled, assign)
    n = in_anchors.shape[0]
    labels = torch.full((n,), c, dtype=torch.int64)
    label_weights = torch.zeros(n, dtype=torch.float64)
    bbox_targets = torch.zeros((n, 4), dtype=torch.float64)
    bbox_weights = torch.zeros((n, 4), dtype=torch.float64)
    if pos.numel() > 0:
        gt_idx = assign.gt_inds[pos] - 1
        pos_gt = t.boxes[gt_idx]
        bbox_targets[pos] = pos_gt if conf.reg_decoded_bbox else _encoded_targets(name, conf.coder, in_anchors[pos],
                                                                                  pos_gt, gt_idx)
        bbox_weights[pos] = 1.0
        labels[pos] = assign.labels[pos]
        label_weights[pos] = conf.pos_weight if conf.pos_weight > 0 else 1.0
    label_weights[neg] = 1.0
    avg_factor = max(pos.numel(), 1) + (max(neg.numel(), 1) if conf.sampler == "random" else 0)
    return ImageTargets(
        labels=_unmap(labels, inside, c), label_weights=_unmap(label_weights, inside, 0.0),
        bbox_targets=_unmap(bbox_targets, inside, 0.0), bbox_weights=_unmap(bbox_weights, inside, 0.0),
        inside_flags=inside, pos_inds=pos, neg_inds=neg, assign=assign, avg_factor=avg_factor)


# --------------------------------------------------------------------------- losses

def _classification_loss(cls_score: torch.Tensor, labels: torch.Tensor, label_weights: torch.Tensor,
                         avg_factor: float, conf: AnchorHeadConfig, num_classes: int) -> torch.Tensor:
    eps = conf.avg_factor_eps
    if conf.classification == "softmax_ce":
        loss = L.softmax_cross_entropy(cls_score, labels, weight=label_weights, avg_factor=avg_factor,
                                       avg_factor_eps=eps)
    else:
        # The weighted element-wise loss per block of anchors (oracle/_blocks.py), then one sum over the whole
        # [M, C] tensor: the same formula on the same elements and the same reduction as the whole at once,
        # without the focal formula's dozen [M, C] float64 tensors saved for backward (194 MB each at
        # RetinaNet's first level). Bit for bit where the blocks keep torch's groups of 16 float64 lanes, as
        # blocks of _CLS_BLOCK * C elements do: its sigmoid rounds the elements past a tensor's last full
        # group on another path (tests/oracle/test_anchor_head.py).
        weighted = recomputed_blocks(_sigmoid_elementwise, (
            (x, y, w, conf, num_classes)
            for x, y, w in zip(cls_score.split(_CLS_BLOCK), labels.split(_CLS_BLOCK), label_weights.split(_CLS_BLOCK))
        )) if len(cls_score) else _sigmoid_elementwise(cls_score, labels, label_weights, conf, num_classes)
        loss = L.reduce_loss(weighted, avg_factor=avg_factor, avg_factor_eps=eps)
    return loss * conf.loss_weight_cls


def _sigmoid_elementwise(cls_score: torch.Tensor, labels: torch.Tensor, label_weights: torch.Tensor,
                         conf: AnchorHeadConfig, num_classes: int) -> torch.Tensor:
    """The weighted sigmoid CE or focal loss ``[M, C]`` of logits ``[M, C]`` against int labels ``[M]``
    (``num_classes`` = background: an all-zero row), weighted per anchor by ``label_weights [M]``."""
    onehot = L.one_hot_targets(labels, num_classes)
    if conf.classification == "sigmoid_ce":
        return L.sigmoid_binary_cross_entropy(cls_score, onehot, weight=label_weights[:, None], reduction="none")
    return L.sigmoid_focal_loss(cls_score, onehot, alpha=conf.focal_alpha, gamma=conf.focal_gamma,
                                weight=label_weights[:, None], reduction="none")


#: Anchors per block of the sigmoid classification losses (8192 x 80 classes in float64: 5.2 MB).
_CLS_BLOCK = 8192


def _regression_loss(bbox_pred: torch.Tensor, anchors: torch.Tensor, bbox_targets: torch.Tensor,
                     bbox_weights: torch.Tensor, avg_factor: float, conf: AnchorHeadConfig) -> torch.Tensor:
    pred = conf.coder.decode(anchors, bbox_pred) if conf.reg_decoded_bbox else bbox_pred
    if not bool((bbox_weights > 0).any()):
        return (pred * bbox_weights).sum()  # mmdet's early return: 0, before loss_weight and avg_factor
    eps = conf.avg_factor_eps
    if conf.regression == "giou":
        loss = L.giou_loss(pred, bbox_targets, convention=conf.giou, weight=bbox_weights.mean(-1),
                           avg_factor=avg_factor, avg_factor_eps=eps)
    elif conf.regression == "smooth_l1":
        loss = L.smooth_l1_loss(pred, bbox_targets, beta=conf.smooth_l1_beta, weight=bbox_weights,
                                avg_factor=avg_factor, avg_factor_eps=eps)
    else:
        loss = L.l1_loss(pred, bbox_targets, weight=bbox_weights, avg_factor=avg_factor, avg_factor_eps=eps)
    return loss * conf.loss_weight_bbox


def level_loss(cls_score: TensorLike, bbox_pred: TensorLike, anchors: TensorLike, labels: TensorLike,
               label_weights: TensorLike, bbox_targets: TensorLike, bbox_weights: TensorLike, *, avg_factor: float,
               config: AnchorHeadConfig, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss_cls, loss_bbox)`` of one level's ``M`` anchors, flattened (mmdet ``loss_by_feat_single``).

    cls_score ``[M, C']`` (``C' = config.cls_out_channels(num_classes)``), bbox_pred ``[M, 4]`` deltas,
    anchors ``[M, 4]`` xyxy pixels, labels int ``[M]`` in ``[0, num_classes]`` (``num_classes`` =
    background), label_weights ``[M]``, bbox_targets ``[M, 4]``, bbox_weights ``[M, 4]`` (>= 0), and the
    batch's ``avg_factor``. Both terms are weighted by the config's loss weights.
    """
    conf, c = _config_arg(config, num_classes)
    cls = as_float64("cls_score", cls_score)
    check_rank("cls_score", cls, 2, "([M, C'] one row per anchor)")
    if cls.shape[1] != conf.cls_out_channels(c):
        raise fail("cls_score", f"{conf.cls_out_channels(c)} columns per anchor", f"shape {tuple(cls.shape)}")
    check_finite("cls_score", cls)
    m = cls.shape[0]
    pred = _rows_arg("bbox_pred", bbox_pred, m)
    a = box_ops.validate_boxes("anchors", anchors, "xyxy", rank=2).detach()
    y = as_index("labels", labels)
    for arg_name, t, shape in (("anchors", a, (m, 4)), ("labels", y, (m,))):
        if tuple(t.shape) != shape:
            raise fail(arg_name, f"shape {shape}", f"shape {tuple(t.shape)}")
    check_labels("labels", y, c + 1)
    lw = _weights_arg("label_weights", label_weights, (m,))
    bt = _rows_arg("bbox_targets", bbox_targets, m).detach()
    bw = _weights_arg("bbox_weights", bbox_weights, (m, 4))
    factor = check_scalar("avg_factor", avg_factor, low=0.0)
    return (_classification_loss(cls, y, lw, factor, conf, c),
            _regression_loss(pred, a, bt, bw, factor, conf))


def _rows_arg(name: str, x: TensorLike, m: int) -> torch.Tensor:
    t = as_float64(name, x)
    if tuple(t.shape) != (m, 4):
        raise fail(name, f"shape ({m}, 4)", f"shape {tuple(t.shape)}")
    check_finite(name, t)
    return t


def _weights_arg(name: str, x: TensorLike, shape: tuple[int, ...]) -> torch.Tensor:
    t = as_float64(name, x).detach()
    if tuple(t.shape) != shape:
        raise fail(name, f"shape {shape}", f"shape {tuple(t.shape)}")
    check_finite(name, t)
    if bool((t < 0).any()):
        raise fail(name, "weights >= 0", f"{t[t < 0][0].item()}")
    return t


def _level_outputs(name: str, maps: object, num_levels: int, per_anchor: int, anchors_per_cell: Sequence[int],
                   ) -> list[torch.Tensor]:
    """Per level ``[B, A * per_anchor, H, W]`` as float64, finite."""
    if not isinstance(maps, (tuple, list)) or len(maps) != num_levels:
        raise fail(name, f"a sequence of {num_levels} per-level tensors (one per anchor stride)",
                   f"{type(maps).__name__} of length {len(maps)}" if isinstance(maps, (tuple, list))
                   else type(maps).__name__)
    out = []
    for level, (x, a) in enumerate(zip(maps, anchors_per_cell)):
        t = as_float64(f"{name}[{level}]", x)
        check_rank(f"{name}[{level}]", t, 4, f"([B, {a} * {per_anchor}, H, W])")
        if t.shape[1] != a * per_anchor:
            raise fail(f"{name}[{level}]", f"{a * per_anchor} channels ({a} anchors x {per_anchor})",
                       f"shape {tuple(t.shape)}")
        check_finite(f"{name}[{level}]", t)
        out.append(t)
    return out


def anchor_head_loss(cls_scores: Sequence[object], bbox_preds: Sequence[object], targets: Sequence[Mapping],
                     img_metas: Sequence[Mapping], *, config: AnchorHeadConfig, num_classes: int,
                     sampled: Sequence[object] | None = None,
                     gt_inds: Sequence[object] | None = None) -> AnchorHeadLoss:
    """mmdet ``AnchorHead.loss_by_feat`` for a batch of ``B`` images.

    cls_scores: per level ``[B, A * C', H_l, W_l]``; bbox_preds: per level ``[B, A * 4, H_l, W_l]``
    deltas; targets and img_metas: ``B`` mappings each (see the module docstring); sampled: with the
    random sampler, per image ``(pos_inds, neg_inds)`` into that image's inside anchors; gt_inds:
    per image, a given assignment of its inside anchors (see :func:`image_targets`).
    """
    conf, c = _config_arg(config, num_classes)
    gen = conf.anchor_generator
    cls_levels = _level_outputs("cls_scores", cls_scores, gen.num_levels, conf.cls_out_channels(c),
                                gen.num_base_anchors)
    box_levels = _level_outputs("bbox_preds", bbox_preds, gen.num_levels, 4, gen.num_base_anchors)
    batch = cls_levels[0].shape[0]
    for level, (s, b) in enumerate(zip(cls_levels, box_levels)):
        if s.shape[0] != batch or b.shape[0] != batch or s.shape[2:] != b.shape[2:]:
            raise fail(f"bbox_preds[{level}]", f"batch {batch} and the feature size of cls_scores[{level}] "
                       f"{tuple(s.shape[2:])}", f"cls_scores shape {tuple(s.shape)}, bbox_preds shape {tuple(b.shape)}")
    if batch == 0:
        raise fail("cls_scores", "a batch of at least one image", "B = 0")
    optional = tuple((n, v) for n, v in (("sampled", sampled), ("gt_inds", gt_inds)) if v is not None)
    for arg_name, seq in (("targets", targets), ("img_metas", img_metas)) + optional:
        if isinstance(seq, Mapping) or not isinstance(seq, Sequence) or len(seq) != batch:
            raise fail(arg_name, f"a sequence of {batch} per-image entries (the batch size)", repr(type(seq).__name__))
    featmap_sizes = [tuple(s.shape[2:]) for s in cls_levels]
    level_anchors = gen.grid_anchors(featmap_sizes)
    anchors = torch.cat(level_anchors)
    per_image = []
    for i in range(batch):
        _, pad_shape = _img_meta_arg(f"img_metas[{i}]", img_metas[i])
        valid = torch.cat(gen.valid_flags(featmap_sizes, pad_shape))
        per_image.append(image_targets(anchors, valid, targets[i], img_metas[i], config=conf, num_classes=c,
                                       sampled=None if sampled is None else sampled[i],
                                       gt_inds=None if gt_inds is None else gt_inds[i], image=i))
    avg_factor = sum(t.avg_factor for t in per_image)
    out_channels = conf.cls_out_channels(c)
    losses_cls, losses_bbox = [], []
    bounds = torch.cumsum(torch.tensor([0] + [len(la) for la in level_anchors]), 0).tolist()
    for level, (cls_map, box_map, level_a) in enumerate(zip(cls_levels, box_levels, level_anchors)):
        lo, hi = bounds[level], bounds[level + 1]
        # images_to_levels: each image's slice of this level, images stacked, as the flattened maps.
        rows = {f: torch.cat([getattr(t, f)[lo:hi] for t in per_image])
                for f in ("labels", "label_weights", "bbox_targets", "bbox_weights")}
        lc, lb = level_loss(cls_map.permute(0, 2, 3, 1).reshape(-1, out_channels),
                            box_map.permute(0, 2, 3, 1).reshape(-1, 4), level_a.repeat(batch, 1),
                            rows["labels"], rows["label_weights"], rows["bbox_targets"], rows["bbox_weights"],
                            avg_factor=avg_factor, config=conf, num_classes=c)
        losses_cls.append(lc)
        losses_bbox.append(lb)
    return AnchorHeadLoss(tuple(losses_cls), tuple(losses_bbox), avg_factor, tuple(per_image))


__all__ = ["ANCHOR_HEAD_MMDET", "RETINANET_HEAD_MMDET", "AnchorHeadConfig", "AnchorHeadLoss", "ImageTargets",
           "anchor_head_loss", "image_targets", "level_loss"]
