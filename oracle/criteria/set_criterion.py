"""The DETR-family set criterion: DETR/YOLOS (softmax), Deformable-DETR and DINO (sigmoid focal), and
ultralytics' RT-DETR loss (varifocal).

``SetCriterion(config)(outputs, targets)`` returns the **unweighted** loss dict, as the upstream
criteria do (weights are applied by key in their training loops); :meth:`SetCriterion.weighted`
and :meth:`SetCriterion.total` give the weighted terms and their sum. Under ``keys="ultralytics"``
the dict is ultralytics ``DETRLoss``'s instead: terms already weighted, the non-last layers summed
(see :class:`~oracle.conventions.SetCriterionConvention`).

``outputs``: the last decoder layer's ``pred_logits`` ``[B, Q, K]``, ``pred_boxes`` ``[B, Q, 4]``
(normalised cxcywh) and optional ``pred_masks`` ``[B, Q, h, w]``, plus optional
``aux_outputs`` (list of layers 0..L-2), ``enc_outputs`` (Deformable-DETR two-stage: class-agnostic
targets, keys ``_enc``), ``interm_outputs`` (DINO: real labels, keys ``_interm``), and DINO's
denoising part ``dn_outputs`` (a layer with its own ``aux_outputs``) with ``dn_meta``
(``pad_size``, ``num_dn_group``). ``targets``: see :mod:`oracle.criteria._inputs`.

Keys: ``loss_ce``, ``loss_bbox``, ``loss_giou``, ``class_error`` (last layer, if the convention
logs it), ``cardinality_error``, ``loss_mask``/``loss_dice`` (last layer, when masks are given),
``loss_xy``/``loss_hw`` (DINO), each with suffix ``_{i}`` for aux layer i, ``_enc``, ``_interm``,
``_dn`` and ``_dn_{i}``. ``keys="ultralytics"``: ``loss_class``, ``loss_bbox``, ``loss_giou``, each also
with ``_aux`` (``interm_outputs``, RT-DETR's encoder, and the aux layers), ``_dn`` and ``_aux_dn``.

Upstream: facebookresearch/detr models/detr.py (``SetCriterion``), models/segmentation.py;
fundamentalvision/Deformable-DETR models/deformable_detr.py; IDEA-Research/DINO
models/dino/dino.py; transformers loss/loss_for_object_detection.py (``ImageLoss``) and
loss/loss_deformable_detr.py (``DeformableDetrImageLoss``); ultralytics 8.4.190 models/utils/loss.py
(``DETRLoss``, ``RTDETRDetectionLoss``), utils/loss.py (``VarifocalLoss``, ``FocalLoss``), nn/tasks.py
(``RTDETRDetectionModel.init_criterion``, ``.loss``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import boxes as box_ops
from .. import losses as L
from .._checks import check_choice, check_scalar, fail
from ..assign.hungarian import hungarian_match
from ..conventions import MatcherConvention, SetCriterionConvention, get_profile
from ..masks import resize_bilinear_formula
from ._inputs import Indices, Layer, Target, flat_index, indices_arg, layer_arg, matched_targets, targets_arg
from .denoising import _dn_meta, _dn_positive_indices

_WEIGHTED_TERMS = ("loss_ce", "loss_bbox", "loss_giou", "loss_mask", "loss_dice")
_SUFFIX = re.compile(r"^(loss_ce|loss_bbox|loss_giou|loss_mask|loss_dice|loss_xy|loss_hw|class_error|"
                     r"cardinality_error)(.*)$")
#: How the logged metrics (``class_error``, ``cardinality_error``) break an exact tie of the largest logits:
#: ``first`` takes the first maximum (torch's ``argmax``); ``favourable`` and ``unfavourable`` take, per query,
#: the maximum that makes the metric smallest or largest. Upstream uses ``topk(1)`` (DETR util/misc.py
#: ``accuracy``) or ``argmax``, whose choice among tied maxima is unspecified: a candidate may give any value
#: between the ``favourable`` and ``unfavourable`` ones (the suite compares these metrics tie-aware).
METRIC_TIES = ("first", "favourable", "unfavourable")
#: Per-layer term -> ultralytics DETRLoss's name (models/utils/loss.py:100, 138-139).
_ULTRALYTICS_NAMES = {"loss_ce": "loss_class", "loss_bbox": "loss_bbox", "loss_giou": "loss_giou"}
_ULTRALYTICS_KEY = re.compile(r"^(loss_class|loss_bbox|loss_giou)(_aux)?(_dn)?$")


@dataclass(frozen=True)
class SetCriterionConfig:
    """``num_classes`` (without the no-object class), the criterion's conventions and its matcher."""

    num_classes: int
    criterion: SetCriterionConvention
    matcher: MatcherConvention
    #: How ``class_error`` and ``cardinality_error`` break exact ties of the largest logits (:data:`METRIC_TIES`).
    metric_ties: str = "first"

    def __post_init__(self) -> None:
        check_choice("metric_ties", self.metric_ties, METRIC_TIES)
        if not isinstance(self.num_classes, int) or isinstance(self.num_classes, bool) or self.num_classes < 1:
            raise fail("num_classes", "a positive int", repr(self.num_classes))
        if not isinstance(self.criterion, SetCriterionConvention):
            raise fail("criterion", "a SetCriterionConvention", type(self.criterion).__name__)
        if not isinstance(self.matcher, MatcherConvention):
            raise fail("matcher", "a MatcherConvention", type(self.matcher).__name__)
        # The matcher's class cost reads the same logits: softmax over K = C + 1, or sigmoid (focal, varifocal).
        logits = "softmax" if self.criterion.classification == "softmax" else "focal"
        if self.matcher.class_cost != logits:
            raise fail("matcher.class_cost", f"{logits!r} to match the criterion's {self.criterion.classification} "
                       "logits", repr(self.matcher.class_cost))

    @classmethod
    def from_profile(cls, profile: str, num_classes: int, metric_ties: str = "first") -> SetCriterionConfig:
        """The criterion and matcher of a named profile (``detr``, ``hf_detr``, ``deformable_detr``,
        ``hf_deformable_detr``, ``dino``, ``ultralytics``)."""
        p = get_profile(profile)
        if p.criterion is None or p.matcher is None:
            raise fail("profile", "a profile with a DETR-family set criterion", repr(profile))
        return cls(num_classes=num_classes, criterion=p.criterion, matcher=p.matcher, metric_ties=metric_ties)

    @property
    def num_logits(self) -> int:
        """K: ``num_classes + 1`` (softmax, no-object last) or ``num_classes`` (focal, varifocal)."""
        return self.num_classes + (1 if self.criterion.classification == "softmax" else 0)


def num_boxes(targets: Sequence[Target], *, world_num_boxes: Sequence[float] | None = None,
              mode: str = "world_mean") -> float:
    """The loss normaliser: the number of target boxes, clamped to >= 1.

    ``world_mean``: ``max(sum(world_num_boxes) / len(world_num_boxes), 1)`` (DETR's all-reduce
    and division by the world size); without ``world_num_boxes`` the world is this process.
    ``local``: this process's count, ``max(sum_i T_i, 1)``, whatever the other ranks hold.
    ``matched``: the local count here; :meth:`SetCriterion.layer_losses` replaces it by each layer's
    number of matched pairs.
    """
    local = float(sum(len(t.labels) for t in targets))
    if mode in ("local", "matched") or world_num_boxes is None:
        return max(local, 1.0)
    if isinstance(world_num_boxes, (str, bytes)) or not isinstance(world_num_boxes, Sequence) or not world_num_boxes:
        raise fail("world_num_boxes", "a non-empty sequence of per-rank target counts", repr(world_num_boxes))
    counts = [check_scalar(f"world_num_boxes[{i}]", c, low=0.0) for i, c in enumerate(world_num_boxes)]
    return max(sum(counts) / len(counts), 1.0)


class SetCriterion:
    """A stateless criterion: configuration only; every call is a pure function of its inputs."""

    def __init__(self, config: SetCriterionConfig):
        if not isinstance(config, SetCriterionConfig):
            raise fail("config", "a SetCriterionConfig", type(config).__name__)
        self.config = config
        self.conv = config.criterion

    # ----------------------------------------------------------------- loss terms

    def loss_labels(self, layer: Layer, targets: Sequence[Target], indices: Indices, num_boxes: float,
                    log: bool = True) -> dict[str, torch.Tensor]:
        """``loss_ce`` (and ``class_error`` when ``log``).

        Softmax: class-weighted mean of the cross-entropy over all ``B*Q`` queries, unmatched queries
        targeting the no-object class of weight ``eos_coef`` (``F.cross_entropy(weight=empty_weight)``).
        Focal: sum of the sigmoid focal loss over ``B*Q*C`` against one-hot targets, over ``num_boxes``.
        Varifocal: :meth:`varifocal`, or the focal loss where nothing is matched (ultralytics
        models/utils/loss.py:109-112 uses VFL only ``if num_gts``).
        """
        c = self.config.num_classes
        batch_idx, query_idx = flat_index(indices)
        labels_o, _ = matched_targets(indices, targets)
        target_classes = torch.full(layer.logits.shape[:2], c, dtype=torch.int64)
        target_classes[batch_idx, query_idx] = labels_o
        if self.conv.classification == "softmax":
            w = L.background_class_weight(c, self.conv.eos_coef)
            loss_ce = L.softmax_cross_entropy(layer.logits, target_classes, class_weight=w,
                                              avg_factor=w[target_classes].sum())
        elif self.conv.classification == "varifocal" and len(labels_o):
            loss_ce = self.varifocal(layer, targets, indices, target_classes, num_boxes)
        else:
            loss_ce = L.sigmoid_focal_loss(layer.logits, L.one_hot_targets(target_classes, c),
                                           alpha=self.conv.focal_alpha, gamma=self.conv.focal_gamma,
                                           avg_factor=num_boxes)
        out = {"loss_ce": loss_ce}
        if log and self.conv.class_error:
            out["class_error"] = self.class_error(layer.logits[batch_idx, query_idx], labels_o,
                                                  ties=self.config.metric_ties)
        return out

    def varifocal(self, layer: Layer, targets: Sequence[Target], indices: Indices, target_classes: torch.Tensor,
                  num_boxes: float) -> torch.Tensor:
        """RT-DETR's varifocal class loss, sum over ``B*Q*C`` / ``num_boxes`` (ultralytics
        models/utils/loss.py:100-117, 244-256).

        The target of a matched query at its class is the IoU of its box, detached, with its target box
        (``bbox_iou(pred_bboxes.detach(), gt_bboxes, xywh=True)``: normalised cxcywh under the
        convention's ``giou``), 0 elsewhere; ``target_classes`` ``[B, Q]`` holds ``num_classes`` for
        unmatched queries, an all-zero one-hot row.
        """
        batch_idx, query_idx = flat_index(indices)
        _, tgt = matched_targets(indices, targets)
        iou = box_ops.iou(layer.boxes[batch_idx, query_idx].detach(), tgt, aligned=True, fmt="cxcywh",
                          convention=self.conv.giou)
        scores = torch.zeros(layer.logits.shape[:2], dtype=torch.float64)
        scores[batch_idx, query_idx] = iou
        labels = L.one_hot_targets(target_classes, self.config.num_classes)
        return L.varifocal_loss(layer.logits, scores[..., None] * labels, labels, alpha=self.conv.focal_alpha,
                                gamma=self.conv.focal_gamma, avg_factor=num_boxes)

    @staticmethod
    def class_error(matched_logits: torch.Tensor, labels: torch.Tensor, ties: str = "first") -> torch.Tensor:
        """``100 - top-1 accuracy (%)`` over matched queries ``[M, K]`` with labels ``[M]``; 100 when nothing is
        matched (DETR util/misc.py ``accuracy`` returns 0 for an empty target). ``ties``: :data:`METRIC_TIES`
        (``favourable``: a label among tied maxima counts as predicted; ``unfavourable``: it does not)."""
        check_choice("ties", ties, METRIC_TIES)
        with torch.no_grad():
            if labels.numel() == 0:
                return torch.tensor(100.0, dtype=torch.float64)
            if ties == "first":
                correct = matched_logits.argmax(-1) == labels
            else:
                tied = matched_logits == matched_logits.amax(-1, keepdim=True)
                label_is_a_max = tied.gather(1, labels[:, None]).squeeze(1)
                correct = label_is_a_max if ties == "favourable" else label_is_a_max & (tied.sum(-1) == 1)
            return 100.0 - 100.0 * correct.to(torch.float64).mean()

    def loss_cardinality(self, layer: Layer, targets: Sequence[Target], indices: Indices,
                         num_boxes: float) -> dict[str, torch.Tensor]:
        """``cardinality_error``: mean over images of |predicted object count - target count| (no gradient)."""
        with torch.no_grad():
            logits = layer.logits.detach()
            lengths = torch.tensor([len(t.labels) for t in targets], dtype=torch.float64)
            if self.conv.cardinality == "argmax_not_last":
                count = self._object_count(logits, lengths).to(torch.float64)
            else:  # sigmoid(max logit) > 0.5, i.e. max logit > 0: a threshold, no tie to break
                count = (torch.sigmoid(logits).amax(-1) > 0.5).sum(1).to(torch.float64)
            return {"cardinality_error": L.l1_loss(count, lengths)}

    def _object_count(self, logits: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Per image ``[B]``: the queries of ``logits`` ``[B, Q, K]`` whose argmax is not the no-object class (the
        last); a query whose largest logits tie between it and another class counts either way under
        ``metric_ties`` ``favourable`` (the count nearest the image's target count ``lengths`` ``[B]``) and
        ``unfavourable`` (the farthest)."""
        ties = self.config.metric_ties
        if ties == "first":
            return (logits.argmax(-1) != logits.shape[-1] - 1).sum(1)
        tied = logits == logits.amax(-1, keepdim=True)
        surely = (~tied[..., -1]).sum(1)
        either = (tied[..., -1] & (tied.sum(-1) > 1)).sum(1)
        low, high = surely.to(torch.float64), (surely + either).to(torch.float64)
        if ties == "favourable":
            return torch.minimum(torch.maximum(lengths, low), high)
        return torch.where((lengths - low).abs() >= (high - lengths).abs(), low, high)

    def loss_boxes(self, layer: Layer, targets: Sequence[Target], indices: Indices,
                   num_boxes: float) -> dict[str, torch.Tensor]:
        """``loss_bbox`` (L1 on normalised cxcywh) and ``loss_giou`` (1 - GIoU on normalised xyxy), each
        summed over matched pairs and divided by ``num_boxes``; DINO adds ``loss_xy``/``loss_hw``."""
        batch_idx, query_idx = flat_index(indices)
        src = layer.boxes[batch_idx, query_idx]
        _, tgt = matched_targets(indices, targets)
        out = {
            "loss_bbox": L.l1_loss(src, tgt, avg_factor=num_boxes),
            "loss_giou": L.giou_loss(box_ops.convert(src, "cxcywh", "xyxy"), box_ops.convert(tgt, "cxcywh", "xyxy"),
                                     convention=self.conv.giou, avg_factor=num_boxes),
        }
        if self.conv.box_diagnostics:
            with torch.no_grad():
                out["loss_xy"] = L.l1_loss(src[:, :2].detach(), tgt[:, :2], avg_factor=num_boxes)
                out["loss_hw"] = L.l1_loss(src[:, 2:].detach(), tgt[:, 2:], avg_factor=num_boxes)
        return out

    def loss_masks(self, layer: Layer, targets: Sequence[Target], indices: Indices,
                   num_boxes: float) -> dict[str, torch.Tensor]:
        """``loss_mask`` (sigmoid focal, per-mask pixel mean, over ``num_boxes``) and ``loss_dice``.

        Target masks are zero-padded to the largest ``H, W`` in the batch (DETR's
        ``nested_tensor_from_tensor_list``); predicted masks are resized to that size bilinearly
        with ``align_corners=False`` (detr models/segmentation.py ``loss_masks``).
        """
        if layer.masks is None:
            raise fail("outputs['pred_masks']", "mask logits when targets carry masks", "None")
        batch_idx, query_idx = flat_index(indices)
        h = max(t.masks.shape[1] for t in targets)
        w = max(t.masks.shape[2] for t in targets)
        padded = [F.pad(t.masks, (0, w - t.masks.shape[2], 0, h - t.masks.shape[1])) for t in targets]
        tgt = torch.cat([m[cols] for m, (_, cols) in zip(padded, indices)])
        src = layer.masks[batch_idx, query_idx]
        src = resize_bilinear_formula(src, (h, w))
        src, tgt = src.flatten(1), tgt.flatten(1)
        return {
            "loss_mask": L.sigmoid_focal_loss(src, tgt, alpha=self.conv.focal_alpha, gamma=self.conv.focal_gamma,
                                              avg_factor=num_boxes * h * w),
            "loss_dice": L.dice_loss(src, tgt, avg_factor=num_boxes),
        }

    # ----------------------------------------------------------------- matching and layers

    def match(self, layer: Layer, targets: Sequence[Target]) -> Indices:
        """The reference matching of one layer (oracle.assign.hungarian)."""
        plain = [{"labels": t.labels, "boxes": t.boxes, **({"image_size": t.image_size} if t.image_size else {})}
                 for t in targets]
        return [(m.pred_idx, m.gt_idx) for m in hungarian_match(layer.logits, layer.boxes, plain,
                                                                  convention=self.config.matcher)]

    def layer_losses(self, layer: Layer, targets: Sequence[Target], indices: Indices, num_boxes: float,
                     *, log: bool, masks: bool) -> dict[str, torch.Tensor]:
        """Every term of one layer under a given matching (labels, cardinality, boxes, and masks if asked)."""
        if self.conv.num_boxes == "matched":
            # ultralytics DETRLoss: num_gts = len(gt_bboxes[gt_idx]), this layer's matched pairs (loss.py:245,
            # 256); the class loss divides by max(num_gts, 1) (L113), the box sums are 0 when it is 0 (L142-150).
            num_boxes = max(float(sum(len(rows) for rows, _ in indices)), 1.0)
        out = self.loss_labels(layer, targets, indices, num_boxes, log=log)
        out.update(self.loss_cardinality(layer, targets, indices, num_boxes))
        out.update(self.loss_boxes(layer, targets, indices, num_boxes))
        if masks:
            out.update(self.loss_masks(layer, targets, indices, num_boxes))
        return out

    def _indices_for(self, suffix: str, layer: Layer, targets: Sequence[Target],
                     given: Mapping[str, object] | None) -> Indices:
        if given is not None and suffix in given:
            return indices_arg(f"indices[{suffix!r}]", given[suffix], layer.logits.shape[1], targets)
        return self.match(layer, targets)

    # ----------------------------------------------------------------- the criterion

    def __call__(self, outputs: Mapping, targets: Sequence[Mapping], *, indices: Mapping[str, object] | None = None,
                 world_num_boxes: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
        """The unweighted loss dict.

        ``indices`` maps a key suffix (``""`` for the last layer, ``"_0"``.. for aux layers,
        ``"_enc"``, ``"_interm"``) to a per-image list of ``(pred_idx, gt_idx)``; layers without an
        entry are matched by the reference matcher. ``world_num_boxes``: per-rank target counts for
        the ``world_mean`` normaliser (see :func:`num_boxes`). Under ``keys="ultralytics"`` the
        per-layer terms are renamed, weighted and summed at the end (:meth:`ultralytics_keys`).
        """
        if not isinstance(outputs, Mapping):
            raise fail("outputs", "a mapping of layer outputs", type(outputs).__name__)
        if indices is not None and not isinstance(indices, Mapping):
            raise fail("indices", "a mapping from key suffix ('', '_0', '_enc', ...) to per-image pairs",
                       type(indices).__name__)
        k = self.config.num_logits
        last = layer_arg("outputs", outputs, num_logits=k)
        batch = last.logits.shape[0]
        if batch == 0:
            raise fail("outputs['pred_logits']", "a batch of at least one image", "B = 0")
        has_masks = last.masks is not None
        if self.conv.keys == "ultralytics":
            for what, given_value in (("outputs['pred_masks']", last.masks), ("outputs['enc_outputs']",
                                                                             outputs.get("enc_outputs"))):
                if given_value is not None:
                    raise fail(what, "None: ultralytics' DETRLoss has no mask or class-agnostic encoder terms "
                               "(RT-DETR's encoder output, with real labels, is outputs['interm_outputs'])", "a value")
        if self.conv.num_boxes == "matched" and world_num_boxes is not None:
            raise fail("world_num_boxes", "None: num_boxes 'matched' normalises each layer by its own matched pairs, "
                       "with no multi-rank reduction", repr(world_num_boxes))
        tgts = targets_arg(targets, batch, self.config.num_classes, need_masks=has_masks,
                           need_image_size=self.config.matcher.giou.units == "pixel")
        n_boxes = num_boxes(tgts, world_num_boxes=world_num_boxes, mode=self.conv.num_boxes)

        losses = self.layer_losses(last, tgts, self._indices_for("", last, tgts, indices), n_boxes,
                                   log=True, masks=has_masks)
        aux = outputs.get("aux_outputs") or []
        for i, raw in enumerate(aux):
            layer = layer_arg(f"outputs['aux_outputs'][{i}]", raw, num_logits=k, batch=batch)
            terms = self.layer_losses(layer, tgts, self._indices_for(f"_{i}", layer, tgts, indices), n_boxes,
                                      log=False, masks=False)
            losses.update({f"{key}_{i}": v for key, v in terms.items()})
        if outputs.get("interm_outputs") is not None:
            layer = layer_arg("outputs['interm_outputs']", outputs["interm_outputs"], num_logits=k, batch=batch)
            terms = self.layer_losses(layer, tgts, self._indices_for("_interm", layer, tgts, indices), n_boxes,
                                      log=False, masks=False)
            losses.update({f"{key}_interm": v for key, v in terms.items()})
        if outputs.get("enc_outputs") is not None:
            layer = layer_arg("outputs['enc_outputs']", outputs["enc_outputs"], num_logits=k, batch=batch)
            # Deformable-DETR two-stage: class-agnostic targets, every label 0.
            binary = [Target(torch.zeros_like(t.labels), t.boxes, None, t.image_size) for t in tgts]
            terms = self.layer_losses(layer, binary, self._indices_for("_enc", layer, binary, indices), n_boxes,
                                      log=False, masks=False)
            losses.update({f"{key}_enc": v for key, v in terms.items()})
        denoising = outputs.get("dn_outputs") is not None or outputs.get("dn_meta") is not None
        if denoising:
            losses.update(self.loss_denoising(outputs, tgts, n_boxes, num_aux=len(aux)))
        return self.ultralytics_keys(losses, denoising=denoising) if self.conv.keys == "ultralytics" else losses

    _DN_KEYS = ("loss_ce", "loss_bbox", "loss_giou", "loss_xy", "loss_hw", "cardinality_error")

    def loss_denoising(self, outputs: Mapping, targets: Sequence[Target], num_boxes: float,
                       *, num_aux: int) -> dict[str, torch.Tensor]:
        """DINO's ``_dn`` (last layer) and ``_dn_{i}`` (aux layers) terms.

        ``outputs['dn_outputs']`` is the denoising part (``pred_logits`` ``[B, pad_size, K]``,
        ``pred_boxes``, ``aux_outputs``) and ``outputs['dn_meta']`` its meta. With no denoising queries
        (``pad_size`` 0, e.g. a batch without targets) every term is the constant 0, as in DINO.
        """
        pad, groups = _dn_meta(outputs.get("dn_meta"), "outputs['dn_meta']")
        zero_keys = [k for k in self._DN_KEYS if k not in ("loss_xy", "loss_hw") or self.conv.box_diagnostics]
        if pad == 0:
            losses = {f"{k}_dn": torch.tensor(0.0, dtype=torch.float64) for k in zero_keys}
            for i in range(num_aux):
                losses.update({f"{k}_dn_{i}": torch.tensor(0.0, dtype=torch.float64) for k in zero_keys})
            return losses
        dn = outputs.get("dn_outputs")
        if dn is None:
            raise fail("outputs['dn_outputs']", f"the denoising outputs for pad_size {pad}", "None")
        k = self.config.num_logits
        batch = len(targets)
        indices = _dn_positive_indices(targets, pad, groups, "outputs['dn_meta']")
        dn_boxes = num_boxes * groups
        losses = {}
        layers = [("_dn", dn)] + [(f"_dn_{i}", raw) for i, raw in enumerate(dn.get("aux_outputs") or [])]
        if len(layers) - 1 != num_aux:
            raise fail("outputs['dn_outputs']['aux_outputs']", f"{num_aux} layers, as many as outputs['aux_outputs']",
                       f"{len(layers) - 1}")
        for suffix, raw in layers:
            layer = layer_arg(f"outputs['dn_outputs']{'' if suffix == '_dn' else '[aux]'}", raw, num_logits=k,
                              batch=batch)
            if layer.logits.shape[1] != pad:
                raise fail("outputs['dn_outputs']['pred_logits']", f"{pad} denoising queries (dn_meta['pad_size'])",
                           f"shape {tuple(layer.logits.shape)}")
            terms = self.layer_losses(layer, targets, indices, dn_boxes, log=False, masks=False)
            losses.update({f"{key}{suffix}": v for key, v in terms.items()})
        return losses

    def ultralytics_keys(self, losses: Mapping[str, torch.Tensor], *, denoising: bool) -> dict[str, torch.Tensor]:
        """Per-layer terms as ultralytics ``DETRLoss`` returns them: each class/L1/GIoU term times its weight,
        the last layer's as ``loss_class``, ``loss_bbox``, ``loss_giou``, every other layer's (``_interm``,
        ``_{i}``) summed into ``*_aux``, and, with ``denoising``, ``*_dn`` / ``*_aux_dn`` likewise (0 where no
        layer contributes, as ``_get_loss_aux``'s ``torch.zeros(3)`` and ``RTDETRDetectionLoss``'s zero ``_dn``
        terms; models/utils/loss.py:178-199, 331-344). Other terms (``cardinality_error``) are dropped."""
        groups = ("", "_aux") + (("_dn", "_aux_dn") if denoising else ())
        out = {name + g: torch.zeros((), dtype=torch.float64) for g in groups for name in _ULTRALYTICS_NAMES.values()}
        for key, value in losses.items():
            base, suffix = _SUFFIX.match(key).groups()
            if base not in _ULTRALYTICS_NAMES:
                continue
            if suffix.startswith("_dn"):
                group = "_dn" if suffix == "_dn" else "_aux_dn"
            else:
                group = "" if suffix == "" else "_aux"
            name = _ULTRALYTICS_NAMES[base] + group
            out[name] = out[name] + self._term_weight(base, suffix) * value
        return out

    # ----------------------------------------------------------------- weighting

    def weight_of(self, key: str) -> float:
        """The coefficient of a loss key: its base term's weight (times ``interm_coef`` for ``_interm``);
        0 for the logged-only terms; 1 for ``keys="ultralytics"``, whose terms carry their weights."""
        if self.conv.keys == "ultralytics":
            if _ULTRALYTICS_KEY.match(key) is None:
                raise fail("key", "a loss key of ultralytics' DETRLoss (loss_class, loss_bbox, loss_giou with _aux "
                           "and/or _dn)", repr(key))
            return 1.0
        m = _SUFFIX.match(key)
        if m is None:
            raise fail("key", "a loss key of this criterion (loss_ce, loss_bbox, ... with a suffix)", repr(key))
        return self._term_weight(*m.groups())

    def _term_weight(self, base: str, suffix: str) -> float:
        if base not in _WEIGHTED_TERMS:
            return 0.0
        weight = getattr(self.conv, "weight_" + base.removeprefix("loss_"))
        return weight * self.conv.interm_coef if suffix == "_interm" else weight

    def weighted(self, losses: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The weighted terms (those with a non-zero weight)."""
        return {k: v * self.weight_of(k) for k, v in losses.items() if self.weight_of(k) != 0.0}

    def total(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``sum(weight[k] * loss[k])``, as DETR's engine.py adds them up (ultralytics: ``sum(loss.values())``)."""
        terms = list(self.weighted(losses).values())
        return torch.stack(terms).sum() if terms else torch.tensor(0.0, dtype=torch.float64)
