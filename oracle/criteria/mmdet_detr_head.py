"""mmdet 3.3.0's DETR-family head losses: DETRHead, DeformableDETRHead and DINOHead ``loss_by_feat``.

Returns the **weighted** loss dict, as mmdet does: ``loss_cls``, ``loss_bbox``, ``loss_iou`` for the
last decoder layer, ``d{k}.loss_*`` for layers 0..L-2, ``enc_loss_*`` for the two-stage encoder
output and ``dn_loss_*`` / ``d{k}.dn_loss_*`` for DINO's denoising part. The total is the sum of the
values, as mmengine's ``parse_losses`` adds every key containing ``loss``.

Per layer (``DETRHead.loss_by_feat_single``): each image is matched by ``HungarianAssigner`` (the
reference matcher under the head's ``MatcherConvention``); unmatched queries target background.
``cls_avg_factor = max(num_pos + num_neg * bg_cls_weight, 1)``; the classification loss is
``sum / (cls_avg_factor + FLT_EPS)``; the box losses are ``sum over matched / (max(num_pos, 1) + FLT_EPS)``
with GIoU on pixel xyxy (``GIoULoss``, eps 1e-6 clamp) and L1 on normalised cxcywh; ``num_pos`` is
the number of matched queries. mmdet's early return for all-zero box weights gives the same 0.

Inputs: ``all_cls_scores`` ``[L, B, Q, K]`` (K = num_classes + 1 for softmax, num_classes for focal),
``all_bbox_preds`` ``[L, B, Q, 4]`` normalised cxcywh, targets with ``labels``, ``boxes``
(normalised cxcywh) and ``image_size`` ``(h, w)`` = mmdet's ``img_shape``.

Upstream: mmdet/models/dense_heads/{detr_head,deformable_detr_head,dino_head}.py,
mmdet/models/losses/{cross_entropy_loss,focal_loss,iou_loss,smooth_l1_loss,utils}.py,
mmdet/models/task_modules/assigners/{hungarian_assigner,match_cost}.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from .. import boxes as box_ops
from .. import losses as L
from .._checks import TensorLike, as_float64, as_index, check_finite, check_int, check_labels, check_rank, fail
from ..assign.hungarian import hungarian_match
from ..conventions import MMDetDETRHeadConvention
from ._inputs import Indices, Target, flat_index, indices_arg, matched_targets, targets_arg
from .denoising import _dn_meta, _dn_positive_indices


def assign_result(indices: tuple[torch.Tensor, torch.Tensor], num_queries: int,
                  labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """mmdet's ``AssignResult`` encoding of one image's matching: ``gt_inds`` int64 ``[Q]`` (0 =
    background, k + 1 = matched to target k) and ``labels`` ``[Q]`` (-1 where unmatched).

    indices: ``(rows, cols)`` int ``[K]`` each, distinct rows in ``[0, num_queries)`` and cols in ``[0, T)``;
    num_queries a non-negative int; labels int ``[T]``."""
    num_queries = check_int("num_queries", num_queries, low=0)
    y = as_index("labels", labels)
    check_rank("labels", y, 1, "([T])")
    if not isinstance(indices, (tuple, list)) or len(indices) != 2:
        raise fail("indices", "a pair (rows, cols) of int tensors", repr(type(indices).__name__))
    rows = as_index("indices[0]", indices[0])
    cols = as_index("indices[1]", indices[1])
    check_rank("indices[0]", rows, 1, "([K] query rows)")
    if cols.shape != rows.shape:
        raise fail("indices[1]", f"the shape of indices[0] {tuple(rows.shape)}", f"shape {tuple(cols.shape)}")
    check_labels("indices[0]", rows, num_queries)
    check_labels("indices[1]", cols, len(y))
    if len(torch.unique(rows)) != len(rows):
        raise fail("indices[0]", "distinct query rows", str(rows.tolist()))
    labels = y
    gt_inds = torch.zeros(num_queries, dtype=torch.int64)
    out_labels = torch.full((num_queries,), -1, dtype=torch.int64)
    gt_inds[rows] = cols + 1
    out_labels[rows] = labels[cols]
    return gt_inds, out_labels


def _scores_arg(name: str, x: TensorLike, rank: int, doc: str) -> torch.Tensor:
    t = as_float64(name, x)
    check_rank(name, t, rank, doc)
    check_finite(name, t)
    return t


class MMDetDETRHeadLoss:
    """``loss_by_feat`` of mmdet's DETR heads under a :class:`MMDetDETRHeadConvention`."""

    def __init__(self, convention: MMDetDETRHeadConvention, num_classes: int):
        if not isinstance(convention, MMDetDETRHeadConvention):
            raise fail("convention", "an MMDetDETRHeadConvention", type(convention).__name__)
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise fail("num_classes", "a positive int", repr(num_classes))
        self.conv = convention
        self.num_classes = num_classes
        self.num_logits = num_classes + (1 if convention.classification == "softmax" else 0)

    # ----------------------------------------------------------------- one layer

    def match(self, cls_scores: torch.Tensor, bbox_preds: torch.Tensor, targets: Sequence[Target]) -> Indices:
        plain = [{"labels": t.labels, "boxes": t.boxes, "image_size": t.image_size} for t in targets]
        return [(m.pred_idx, m.gt_idx) for m in hungarian_match(cls_scores, bbox_preds, plain,
                                                                  convention=self.conv.matcher)]

    def loss_cls(self, cls_scores: torch.Tensor, targets: Sequence[Target], indices: Indices,
                 cls_avg_factor: float) -> torch.Tensor:
        """Softmax CE (class weight 1, background ``bg_cls_weight``) or sigmoid focal over every query,
        ``sum / (cls_avg_factor + eps) * loss_weight_cls``."""
        c = self.num_classes
        batch_idx, query_idx = flat_index(indices)
        labels_o, _ = matched_targets(indices, targets)
        labels = torch.full(cls_scores.shape[:2], c, dtype=torch.int64)
        labels[batch_idx, query_idx] = labels_o
        if self.conv.classification == "softmax":
            loss = L.softmax_cross_entropy(cls_scores, labels,
                                           class_weight=L.background_class_weight(c, self.conv.bg_cls_weight),
                                           avg_factor=cls_avg_factor, avg_factor_eps=self.conv.avg_factor_eps)
        else:
            loss = L.sigmoid_focal_loss(cls_scores, L.one_hot_targets(labels, c), alpha=self.conv.focal_alpha,
                                        gamma=self.conv.focal_gamma, avg_factor=cls_avg_factor,
                                        avg_factor_eps=self.conv.avg_factor_eps)
        return loss * self.conv.loss_weight_cls

    def loss_boxes(self, bbox_preds: torch.Tensor, targets: Sequence[Target], indices: Indices,
                   num_pos: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss_bbox, loss_iou)``: L1 on normalised cxcywh and GIoU on pixel xyxy over matched queries,
        each ``sum / (max(num_pos, 1) + eps)`` times its loss weight."""
        batch_idx, query_idx = flat_index(indices)
        src = bbox_preds[batch_idx, query_idx]
        _, tgt = matched_targets(indices, targets)
        factor = torch.tensor([[t.image_size[1], t.image_size[0]] * 2 for t in targets], dtype=torch.float64)
        scale = factor[batch_idx] if len(batch_idx) else torch.zeros(0, 4, dtype=torch.float64)
        avg = max(num_pos, 1.0)
        eps = self.conv.avg_factor_eps
        loss_bbox = L.l1_loss(src, tgt, avg_factor=avg, avg_factor_eps=eps)
        loss_iou = L.giou_loss(box_ops.convert(src, "cxcywh", "xyxy") * scale,
                               box_ops.convert(tgt, "cxcywh", "xyxy") * scale,
                               convention=self.conv.iou, avg_factor=avg, avg_factor_eps=eps)
        return loss_bbox * self.conv.loss_weight_bbox, loss_iou * self.conv.loss_weight_iou

    def layer_statistic(self, cls_scores: torch.Tensor, indices: Indices) -> tuple[float, float]:
        """``(num_pos, cls_avg_factor)`` of one layer on this rank, before any reduction and clamp:
        ``num_pos`` matched queries, ``num_pos + num_neg * bg_cls_weight``."""
        num_pos = float(sum(len(rows) for rows, _ in indices))
        num_neg = float(cls_scores.shape[0] * cls_scores.shape[1]) - num_pos
        return num_pos, num_pos + num_neg * self.conv.bg_cls_weight

    def _averaged(self, local: tuple[float, float], world: Sequence[Sequence[float]] | None) -> tuple[float, float]:
        """``(num_pos for the box losses, cls_avg_factor)``: the ranks' mean of ``num_pos``; the ranks' mean of
        the class factor under ``sync_cls_avg_factor``, else this rank's; the class factor clamped to 1."""
        if world is None:
            return local[0], max(local[1], 1.0)
        num_pos = sum(w[0] for w in world) / len(world)
        cls_factor = sum(w[1] for w in world) / len(world) if self.conv.sync_cls_avg_factor else local[1]
        return num_pos, max(cls_factor, 1.0)

    def layer_losses(self, cls_scores: torch.Tensor, bbox_preds: torch.Tensor, targets: Sequence[Target],
                     indices: Indices | None = None, world: Sequence[Sequence[float]] | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(loss_cls, loss_bbox, loss_iou)`` of one layer (``loss_by_feat_single``); ``world``: every rank's
        :meth:`layer_statistic` of this layer, in a process group."""
        if indices is None:
            indices = self.match(cls_scores, bbox_preds, targets)
        num_pos, cls_avg_factor = self._averaged(self.layer_statistic(cls_scores, indices), world)
        loss_cls = self.loss_cls(cls_scores, targets, indices, cls_avg_factor)
        return (loss_cls, *self.loss_boxes(bbox_preds, targets, indices, num_pos))

    # ----------------------------------------------------------------- the head

    def __call__(self, all_cls_scores: TensorLike, all_bbox_preds: TensorLike, targets: Sequence[Mapping], *,
                 indices: Mapping[str, object] | None = None, enc_cls_scores: TensorLike = None,
                 enc_bbox_preds: TensorLike = None, dn_cls_scores: TensorLike = None, dn_bbox_preds: TensorLike = None,
                 dn_meta: Mapping | None = None,
                 world: Sequence[Mapping[str, Sequence[float]]] | None = None) -> dict[str, torch.Tensor]:
        """The weighted loss dict. ``indices`` maps ``"d{k}"`` (decoder layer k, the last being
        ``d{L-1}``) or ``"enc"`` to per-image ``(pred_idx, gt_idx)``; other layers are matched.
        Denoising (DINOHead): ``dn_cls_scores`` ``[L, B, pad_size, K]``, ``dn_bbox_preds`` and
        ``dn_meta`` (``pad_size``, ``num_dn_group``; mmdet's ``num_denoising_queries`` and
        ``num_denoising_groups``). ``world``: in a process group, every rank's :meth:`statistics` (this
        rank's included), for mmdet's ``reduce_mean`` of the normalisers; ``None``: one process."""
        layers, dn = self._layers(all_cls_scores, all_bbox_preds, targets, indices, enc_cls_scores, enc_bbox_preds,
                                  dn_cls_scores, dn_bbox_preds, dn_meta)
        world = self._world_arg(world, [key for key, *_ in layers] + (["dn"] if dn is not None else []))
        losses: dict[str, torch.Tensor] = {}
        for key, cls, box, tgts, idx in layers:
            terms = self.layer_losses(cls, box, tgts, idx, None if world is None else [w[key] for w in world])
            names = self._names(key, len(layers) - (1 if layers[-1][0] == "enc" else 0))
            losses.update(dict(zip(names, terms)))
        if dn_meta is not None:
            decoder = [key for key, *_ in layers if key != "enc"]
            losses.update(self._denoising(dn, layers[0][3], len(decoder),
                                          None if world is None or dn is None else [w["dn"] for w in world]))
        return losses

    def statistics(self, all_cls_scores: TensorLike, all_bbox_preds: TensorLike, targets: Sequence[Mapping], *,
                   indices: Mapping[str, object] | None = None, enc_cls_scores: TensorLike = None,
                   enc_bbox_preds: TensorLike = None, dn_cls_scores: TensorLike = None,
                   dn_bbox_preds: TensorLike = None, dn_meta: Mapping | None = None) -> dict[str, tuple[float, float]]:
        """This rank's ``(num_pos, cls_avg_factor)`` per layer (``"d{k}"``, ``"enc"``, ``"dn"``), before any
        reduction: what it contributes to mmdet's ``reduce_mean`` in a process group."""
        layers, dn = self._layers(all_cls_scores, all_bbox_preds, targets, indices, enc_cls_scores, enc_bbox_preds,
                                  dn_cls_scores, dn_bbox_preds, dn_meta)
        out = {key: self.layer_statistic(cls, idx if idx is not None else self.match(cls, box, tgts))
               for key, cls, box, tgts, idx in layers}
        if dn is not None:
            out["dn"] = self.layer_statistic(dn[0][0], dn[2])
        return out

    @staticmethod
    def _names(key: str, num_layers: int) -> tuple[str, str, str]:
        if key == "enc":
            return "enc_loss_cls", "enc_loss_bbox", "enc_loss_iou"
        prefix = "" if key == f"d{num_layers - 1}" else f"{key}."
        return f"{prefix}loss_cls", f"{prefix}loss_bbox", f"{prefix}loss_iou"

    @staticmethod
    def _world_arg(world, keys: list[str]) -> list[dict[str, tuple[float, float]]] | None:
        if world is None:
            return None
        if isinstance(world, (str, bytes, Mapping)) or not isinstance(world, Sequence) or not world:
            raise fail("world", "a non-empty sequence of per-rank statistics", type(world).__name__)
        out = []
        for r, rank in enumerate(world):
            if not isinstance(rank, Mapping) or set(rank) != set(keys):
                raise fail(f"world[{r}]", f"a mapping with the layers {keys}",
                           repr(sorted(rank)) if isinstance(rank, Mapping) else type(rank).__name__)
            entry = {}
            for key in keys:
                pair = [float(v) for v in rank[key]]
                if len(pair) != 2 or not all(v >= 0 and v < float("inf") for v in pair):
                    raise fail(f"world[{r}][{key!r}]", "(num_pos, cls_avg_factor), finite and >= 0", repr(rank[key]))
                entry[key] = (pair[0], pair[1])
            out.append(entry)
        return out

    def _layers(self, all_cls_scores, all_bbox_preds, targets, indices, enc_cls_scores, enc_bbox_preds,
                dn_cls_scores, dn_bbox_preds, dn_meta):
        """The checked inputs as ``(layers, dn)``: ``layers`` ``[(key, cls_scores, bbox_preds, targets, indices or
        None)]`` for the decoder layers ``"d{k}"`` and the encoder ``"enc"``; ``dn`` ``((cls [L, B, pad, K], boxes),
        (pad, groups), positive indices)`` or None without denoising queries."""
        cls_all = _scores_arg("all_cls_scores", all_cls_scores, 4, "([L, B, Q, K])")
        box_all = _scores_arg("all_bbox_preds", all_bbox_preds, 4, "([L, B, Q, 4] normalised cxcywh)")
        if cls_all.shape[-1] != self.num_logits:
            raise fail("all_cls_scores", f"K = {self.num_logits} scores per query", f"shape {tuple(cls_all.shape)}")
        if box_all.shape[:3] != cls_all.shape[:3] or box_all.shape[3] != 4:
            raise fail("all_bbox_preds", f"shape {tuple(cls_all.shape[:3]) + (4,)}", f"shape {tuple(box_all.shape)}")
        for layer in range(box_all.shape[0]):
            box_ops.validate_boxes(f"all_bbox_preds[{layer}]", box_all[layer], "cxcywh")
        num_layers, batch = cls_all.shape[:2]
        if num_layers == 0 or batch == 0:
            raise fail("all_cls_scores", "at least one layer and one image", f"shape {tuple(cls_all.shape)}")
        tgts = targets_arg(targets, batch, self.num_classes, need_image_size=True)
        if indices is not None and not isinstance(indices, Mapping):
            raise fail("indices", "a mapping from 'd{k}' or 'enc' to per-image pairs", type(indices).__name__)
        given = indices or {}

        layers = []
        for layer in range(num_layers):
            key = f"d{layer}"
            idx = indices_arg(f"indices[{key!r}]", given[key], cls_all.shape[2], tgts) if key in given else None
            layers.append((key, cls_all[layer], box_all[layer], tgts, idx))

        if enc_cls_scores is not None or enc_bbox_preds is not None:
            enc_cls = _scores_arg("enc_cls_scores", enc_cls_scores, 3, "([B, N, K])")
            enc_box = box_ops.validate_boxes("enc_bbox_preds", enc_bbox_preds, "cxcywh", rank=3)
            if (enc_cls.shape[0] != batch or enc_box.shape[:2] != enc_cls.shape[:2]
                    or enc_cls.shape[2] != self.num_logits):
                raise fail("enc_cls_scores/enc_bbox_preds", f"[{batch}, N, {self.num_logits}] and [{batch}, N, 4]",
                           f"{tuple(enc_cls.shape)} and {tuple(enc_box.shape)}")
            enc_targets = tgts if self.conv.enc_targets == "real" else \
                [Target(torch.zeros_like(t.labels), t.boxes, None, t.image_size) for t in tgts]
            idx = indices_arg("indices['enc']", given["enc"], enc_cls.shape[1], enc_targets) if "enc" in given else None
            layers.append(("enc", enc_cls, enc_box, enc_targets, idx))

        dn = self._denoising_inputs(dn_cls_scores, dn_bbox_preds, dn_meta, tgts, num_layers) \
            if dn_meta is not None else None
        return layers, dn

    def _denoising_inputs(self, dn_cls_scores: TensorLike, dn_bbox_preds: TensorLike, dn_meta: Mapping,
                          targets: Sequence[Target], num_layers: int):
        """``((cls [L, B, pad, K], boxes [L, B, pad, 4]), (pad, groups), positive indices)``, or ``None`` with no
        denoising queries (``pad_size`` 0)."""
        pad, groups = _dn_meta(dn_meta, "dn_meta")
        if pad == 0:
            return None
        cls_dn = _scores_arg("dn_cls_scores", dn_cls_scores, 4, "([L, B, pad_size, K])")
        box_dn = _scores_arg("dn_bbox_preds", dn_bbox_preds, 4, "([L, B, pad_size, 4])")
        expected = (num_layers, len(targets), pad)
        if cls_dn.shape[:3] != expected or cls_dn.shape[3] != self.num_logits or box_dn.shape != expected + (4,):
            raise fail("dn_cls_scores/dn_bbox_preds", f"[{num_layers}, {len(targets)}, {pad}, {self.num_logits}] and "
                       f"[..., 4]", f"{tuple(cls_dn.shape)} and {tuple(box_dn.shape)}")
        for layer in range(num_layers):
            box_ops.validate_boxes(f"dn_bbox_preds[{layer}]", box_dn[layer], "cxcywh")
        return (cls_dn, box_dn), (pad, groups), _dn_positive_indices(targets, pad, groups, "dn_meta")

    def _denoising(self, dn, targets: Sequence[Target], num_layers: int, world: Sequence[Sequence[float]] | None
                   ) -> dict[str, torch.Tensor]:
        """``DINOHead.loss_dn``: positives at the CDN slots, ``cls_avg_factor = max(num_pos, 1)`` (focal heads
        have ``bg_cls_weight`` 0); with no denoising queries (``dn`` None) ``loss_cls`` is ``zeros(1)`` and the
        box losses 0, as mmdet returns them."""
        out: dict[str, torch.Tensor] = {}
        if dn is None:
            for layer in range(num_layers):
                prefix = "" if layer == num_layers - 1 else f"d{layer}."
                out.update({f"{prefix}dn_loss_cls": torch.zeros(1, dtype=torch.float64),
                            f"{prefix}dn_loss_bbox": torch.tensor(0.0, dtype=torch.float64),
                            f"{prefix}dn_loss_iou": torch.tensor(0.0, dtype=torch.float64)})
            return out
        (cls_dn, box_dn), _, indices = dn
        for layer in range(num_layers):
            prefix = "" if layer == num_layers - 1 else f"d{layer}."
            num_pos, cls_avg_factor = self._averaged(self.layer_statistic(cls_dn[layer], indices), world)
            loss_cls = self.loss_cls(cls_dn[layer], targets, indices, cls_avg_factor)
            loss_bbox, loss_iou = self.loss_boxes(box_dn[layer], targets, indices, num_pos)
            out.update({f"{prefix}dn_loss_cls": loss_cls, f"{prefix}dn_loss_bbox": loss_bbox,
                        f"{prefix}dn_loss_iou": loss_iou})
        return out

    @staticmethod
    def total(losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """mmengine ``parse_losses``: the sum of ``value.mean()`` over keys containing ``loss``."""
        terms = [v.mean() for k, v in losses.items() if "loss" in k]
        return torch.stack(terms).sum() if terms else torch.tensor(0.0, dtype=torch.float64)
