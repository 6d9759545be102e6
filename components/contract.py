"""The component contract: canonical inputs, config and outputs of every reference component.

A component is called as ``call(inputs, config, profile) -> outputs``, with nested dicts/lists of
tensors in and out. The golden fixtures store exactly these inputs and outputs, and an adapter of the
conformance suite implements the same calls for a third-party library. Each :class:`Component` also
says which inputs are differentiated (``grad_inputs``) and with respect to which scalar
(``objective``), and where its matchings are (``matching``).

Upstream of every formula: see the oracle modules each call uses.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from oracle import boxes as box_ops
from oracle import conventions as conv
from oracle import heads as H
from oracle import losses as L
from oracle import masks as M
from oracle import position as PE
from oracle import transformer as T
from oracle.assign.hungarian import hungarian_match
from oracle.criteria import CdnDraws, MMDetDETRHeadLoss, SetCriterion, SetCriterionConfig, prepare_for_cdn
from oracle.criteria._inputs import layer_arg, targets_arg
from oracle.errors import OracleInputError

from . import dense_calls as D
from .canonical import canonical_keys, dotted_keys

Tree = Any
Call = Callable[[Mapping[str, Any], Mapping[str, Any], str], dict]


def _all_zero(value: torch.Tensor) -> str | None:
    """None when every value is exactly 0 (a NaN is not), else how many are not."""
    if not isinstance(value, torch.Tensor):
        return f"not a tensor: {type(value).__name__}"
    bad = value.detach().cpu() != 0
    if not bool(bad.any()):
        return None
    worst = value.detach().cpu().to(torch.float64)[bad].abs().max().item()
    return f"{int(bad.sum())} of {value.numel()} values not 0, the largest |value| {worst:.6g}"


#: Named predicates on the values of an extra output: ``tensor -> None`` when it meets the rule, else why not.
EXTRA_OUTPUT_RULES: dict[str, Callable[[torch.Tensor], str | None]] = {"zero": _all_zero}


@dataclass(frozen=True)
class ExtraOutputs:
    """Output names a library gives beyond the reference's, under the ``profiles`` that follow it.

    ``glob`` matches an output path (``losses.*_dn``, fnmatch); ``rule`` names the predicate of
    :data:`EXTRA_OUTPUT_RULES` its values must meet (``"zero"``: every value exactly 0); ``source`` is the
    upstream behaviour it models. Names the reference gives are compared as usual whatever the rules say."""

    glob: str
    rule: str
    profiles: frozenset[str]
    source: str

    def __post_init__(self) -> None:
        if self.rule not in EXTRA_OUTPUT_RULES:
            raise ValueError(f"extra-output rule {self.rule!r} is not one of {', '.join(EXTRA_OUTPUT_RULES)}")


#: DINO's criterion without a denoising part (``dn_meta`` None: evaluation, ``dn_number`` 0) still returns
#: ``loss_bbox_dn``, ``loss_giou_dn``, ``loss_ce_dn``, ``loss_xy_dn``, ``loss_hw_dn``, ``cardinality_error_dn``,
#: and each with ``_{i}`` for aux layer i, as constant zeros; the reference returns the ``_dn`` terms only for an
#: input with ``dn_meta`` (zeros where ``pad_size`` is 0), so these are extra names a DINO candidate may give.
_DINO_ZERO_DENOISING = "IDEA-Research/DINO models/dino/dino.py SetCriterion.forward (faa8520f, lines 533-541, 577-586)"
DINO_ZERO_DN_OUTPUTS = (ExtraOutputs("losses.*_dn", "zero", frozenset({"dino"}), _DINO_ZERO_DENOISING),
                        ExtraOutputs("losses.*_dn_[0-9]*", "zero", frozenset({"dino"}), _DINO_ZERO_DENOISING))


@dataclass(frozen=True)
class Component:
    """One component of the contract.

    - ``call``: the reference implementation of the canonical call.
    - ``grad_inputs``: top-level input keys whose float tensors are differentiated.
    - ``objective``: ``outputs -> scalar`` that is differentiated (None: no gradient).
    - ``matching``: output key with per-layer/per-image matchings ``{"pred", "gt"}``, if any.
    - ``profile_dependent``: whether the result depends on the case's profile (its conventions); an
      adapter's declared profiles only restrict the components for which it does.
    - ``doc``: inputs, config and outputs in words.
    - ``tie_dependent``: globs of output paths (``losses.class_error``) whose value depends on how an exact tie of
      the largest logits is broken, and which the call computes under ``config["metric_ties"]`` (``first``,
      ``favourable``, ``unfavourable``: oracle.criteria.set_criterion.METRIC_TIES); a candidate may give any
      value between the favourable and unfavourable ones.
    - ``exact_dtypes``: the dtype of each integer or boolean output. Indices and labels are int64 (what
      PyTorch indexes with everywhere; facebookresearch/detr's matcher once returned int32 or float indices,
      which its criterion's indexing rejects on other platforms), masks and flags bool.
    - ``extra_outputs``: the output names a candidate may give beyond the reference's (:class:`ExtraOutputs`):
      under the rule's profiles, an extra name its glob matches is accepted when its values meet the rule; any
      other extra name fails the check as an unexpected name.
    """

    name: str
    call: Call
    grad_inputs: tuple[str, ...] = ()
    objective: Callable[[Mapping[str, Any]], torch.Tensor] | None = None
    matching: str | None = None
    doc: str = ""
    profile_dependent: bool = True
    optional_outputs: tuple[str, ...] = ()
    tie_dependent: tuple[str, ...] = ()
    #: ``{output path prefix: dtype}`` of its integer and boolean outputs, as the reference produces them: a
    #: candidate's such output must have exactly this dtype (a prefix covers every tensor under it).
    exact_dtypes: Mapping[str, torch.dtype] = field(default_factory=dict)
    extra_outputs: tuple[ExtraOutputs, ...] = ()

    def extra_output_problem(self, path: str, value: torch.Tensor, profile: str) -> str | None:
        """None when a candidate's output at ``path``, a name the reference does not give, is accepted under
        ``profile`` by a rule of :attr:`extra_outputs`; otherwise why not, naming the rule that would have
        applied."""
        rules = [r for r in self.extra_outputs if fnmatch.fnmatchcase(path, r.glob)]
        if not rules:
            return "unexpected name"
        applicable = [r for r in rules if profile in r.profiles]
        if not applicable:
            return "; ".join(f"unexpected name: the rule {r.rule!r} for {r.glob} applies under profile(s) "
                             f"{', '.join(sorted(r.profiles))} only, not {profile!r}" for r in rules)
        problems = []
        for r in applicable:
            why = EXTRA_OUTPUT_RULES[r.rule](value)
            if why is None:
                return None
            problems.append(f"unexpected name: the rule {r.rule!r} for {r.glob} under profile {profile!r} "
                            f"rejects it ({why})")
        return "; ".join(problems)

    def exact_dtype(self, path: str) -> torch.dtype | None:
        """The contract's dtype of the output at ``path`` (``indices.0.pred``), if it is an integer or boolean
        output: the one of the longest prefix of ``path`` in :attr:`exact_dtypes`."""
        best = None
        for prefix, dtype in self.exact_dtypes.items():
            if (path == prefix or path.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[0])):
                best = (prefix, dtype)
        return None if best is None else best[1]


def profile_convention(profile: str, which: str) -> conv.IoUConvention:
    """``which`` is a Profile field (``box_iou``, ``iou_loss``) or a preset (``IOU_MMDET_CIOU_LOSS``)."""
    return conv.lookup(profile, which, conv.IoUConvention)


# --------------------------------------------------------------------------- calls

def call_convert(inputs, config, profile):
    return {"boxes": box_ops.convert(inputs["boxes"], config["src"], config["dst"])}


def call_area(inputs, config, profile):
    return {"area": box_ops.area(inputs["boxes"], config["fmt"])}


def call_overlap(inputs, config, profile):
    # Looked up at call time, so that a changed formula (or a test's monkeypatch) reaches every case.
    fn = functools.partial(box_ops.iou, mode="iof") if config["op"] == "iof" else getattr(box_ops, config["op"])
    return {"value": fn(inputs["boxes1"], inputs["boxes2"], aligned=config["aligned"], fmt=config["fmt"],
                        convention=profile_convention(profile, config["convention"]))}


LOSS_POSITIONAL: dict[str, tuple[str, ...]] = {
    # oracle.losses function: its positional inputs; other tensor inputs are keyword arguments
    "softmax_cross_entropy": ("logits", "labels"),
    "sigmoid_binary_cross_entropy": ("logits", "targets"),
    "sigmoid_focal_loss": ("logits", "targets"),
    "l1_loss": ("pred", "target"),
    "smooth_l1_loss": ("pred", "target"),
    "giou_loss": ("pred", "target"),
    "diou_loss": ("pred", "target"),
    "ciou_loss": ("pred", "target"),
    "dice_loss": ("logits", "targets"),
    "distribution_focal_loss": ("logits", "targets"),
}


def _loss_call(name: str) -> Call:
    def call(inputs, config, profile):
        positional = LOSS_POSITIONAL[name]
        kwargs = {k: v for k, v in config.items() if k != "convention"}
        if "convention" in config:
            kwargs["convention"] = profile_convention(profile, config["convention"])
        extra = {k: v for k, v in inputs.items() if k not in positional}
        return {"loss": getattr(L, name)(*(inputs[k] for k in positional), **extra, **kwargs)}
    return call


#: The numeric fields of a profile's MatcherConvention that ``assign.hungarian``'s config ``matcher`` may replace:
#: what a model's config sets (DETR's set_cost_class/bbox/giou, Deformable-DETR's focal_alpha, ultralytics'
#: cost_gain), while the cost's form (class_cost, giou convention, giou_cost_offset) stays the profile's.
MATCHER_FIELDS = ("weight_class", "weight_bbox", "weight_giou", "focal_alpha", "focal_gamma", "focal_eps")


def matcher_convention(config: Mapping[str, Any], profile: str) -> conv.MatcherConvention:
    """The profile's ``matcher`` with ``config["matcher"]`` (``{field: value}``, fields of :data:`MATCHER_FIELDS`)
    replaced; a value the convention refuses raises OracleInputError through its own checks."""
    matcher = conv.get_profile(profile).matcher
    overrides = dict(config.get("matcher") or {})
    if overrides and matcher is None:
        raise OracleInputError(f"config.matcher: profile {profile!r} has no matcher convention to override")
    return D.replace_fields(matcher, overrides, MATCHER_FIELDS, "config.matcher")


#: The numeric fields of a profile's SetCriterionConvention that ``criteria.set_criterion``'s config ``criterion`` may
#: replace: what a model's config sets (DETR's eos_coef and *_loss_coef, Deformable-DETR's focal_alpha and
#: cls_loss_coef, DINO's interm_loss_coef, ultralytics DETRLoss' loss_gain, gamma and alpha), while the loss's form
#: (classification, num_boxes, keys, giou convention) stays the profile's.
CRITERION_FIELDS = ("eos_coef", "focal_alpha", "focal_gamma", "weight_ce", "weight_bbox", "weight_giou", "weight_mask",
                    "weight_dice", "interm_coef")
#: The numeric fields of an mmdet head's MMDetDETRHeadConvention that ``criteria.mmdet_detr_head``'s config
#: ``criterion`` may replace: the loss configs' ``loss_weight``, ``bg_cls_weight``, ``alpha`` and ``gamma``.
MMDET_HEAD_FIELDS = ("bg_cls_weight", "focal_alpha", "focal_gamma", "loss_weight_cls", "loss_weight_bbox",
                     "loss_weight_iou")


def set_criterion_config(config: Mapping[str, Any], profile: str) -> SetCriterionConfig:
    """The profile's criterion and matcher with ``config["criterion"]`` (fields of :data:`CRITERION_FIELDS`) and
    ``config["matcher"]`` (:data:`MATCHER_FIELDS`, the criterion's own matcher) replaced."""
    base = SetCriterionConfig.from_profile(profile, num_classes=config["num_classes"],
                                           metric_ties=config.get("metric_ties", "first"))
    return dataclasses.replace(
        base, criterion=D.replace_fields(base.criterion, config.get("criterion"), CRITERION_FIELDS, "config.criterion"),
        matcher=matcher_convention(config, profile))


def mmdet_head_convention(config: Mapping[str, Any]) -> conv.MMDetDETRHeadConvention:
    """The head ``config["head"]`` (:data:`MMDET_HEADS`) with ``config["criterion"]`` (fields of
    :data:`MMDET_HEAD_FIELDS`) and ``config["matcher"]`` (:data:`MATCHER_FIELDS`, its HungarianAssigner's costs)
    replaced."""
    head = MMDET_HEADS[config["head"]]
    head = D.replace_fields(head, config.get("criterion"), MMDET_HEAD_FIELDS, "config.criterion")
    return dataclasses.replace(head, matcher=D.replace_fields(head.matcher, config.get("matcher"), MATCHER_FIELDS,
                                                              "config.matcher"))


def call_hungarian(inputs, config, profile):
    matches = hungarian_match(inputs["pred_logits"], inputs["pred_boxes"], inputs["targets"],
                              convention=matcher_convention(config, profile))
    return {"indices": [{"pred": m.pred_idx, "gt": m.gt_idx} for m in matches],
            "cost": [m.cost_matrix for m in matches],
            "total_cost": torch.tensor([m.total_cost for m in matches], dtype=torch.float64)}


def criterion_layers(outputs: Mapping) -> dict[str, Mapping]:
    """The matched layers of a set-criterion ``outputs``, by index key: ``last``, ``0``.., ``enc``, ``interm``."""
    layers = {"last": outputs}
    layers.update({str(i): a for i, a in enumerate(outputs.get("aux_outputs") or [])})
    for key, name in (("enc_outputs", "enc"), ("interm_outputs", "interm")):
        if outputs.get(key) is not None:
            layers[name] = outputs[key]
    return layers


def _suffix(layer_key: str) -> str:
    return "" if layer_key == "last" else f"_{layer_key}"


def call_set_criterion(inputs, config, profile):
    """inputs: ``outputs`` (the model's layers), ``targets``, optional ``world_num_boxes`` and ``indices``
    (``{layer: [{"pred", "gt"} per image]}``, the matching to use). outputs: ``losses`` (unweighted, except
    under a convention with ``keys="ultralytics"``: DETRLoss's own weighted keys),
    ``total`` (weighted), ``indices`` (the matching used, per layer)."""
    crit = SetCriterion(set_criterion_config(config, profile))
    outputs = dict(inputs["outputs"])
    if "dn_meta" in outputs:
        outputs["dn_meta"] = {k: int(v) for k, v in outputs["dn_meta"].items()}
    world = inputs.get("world_num_boxes")
    given = inputs.get("indices") or {}
    indices = {}
    for key, raw in criterion_layers(outputs).items():
        if key in given:
            indices[_suffix(key)] = [(p["pred"], p["gt"]) for p in given[key]]
            continue
        targets = inputs["targets"]
        if key == "enc":  # Deformable-DETR two-stage: class-agnostic targets
            targets = [{**t, "labels": torch.zeros_like(t["labels"])} for t in targets]
        layer = layer_arg("outputs", raw, num_logits=crit.config.num_logits)
        indices[_suffix(key)] = crit.match(layer, targets_arg(targets, len(targets), crit.config.num_classes))
    losses = crit(outputs, inputs["targets"], indices=indices,
                  world_num_boxes=None if world is None else world.tolist())
    return {"losses": losses, "total": crit.total(losses),
            "indices": {("last" if s == "" else s.lstrip("_")): [{"pred": p, "gt": g} for p, g in idx]
                        for s, idx in indices.items()}}


def call_cdn(inputs, config, profile):
    d = inputs["draws"]
    q = prepare_for_cdn(inputs["targets"], dn_number=config["dn_number"], label_noise_ratio=config["label_noise_ratio"],
                        box_noise_scale=config["box_noise_scale"], num_classes=config["num_classes"],
                        num_queries=config["num_queries"],
                        draws=CdnDraws(d["label_p"], d["relabel"], d["box_sign"], d["box_part"]))
    return {"labels": q.labels, "boxes": q.boxes, "boxes_unact": q.boxes_unact, "valid": q.valid,
            "attn_mask": q.attn_mask, "dn_meta": {k: torch.tensor(v) for k, v in q.dn_meta.items()}}


MMDET_HEADS = {"detr": conv.MMDET_DETR_HEAD, "deformable_detr": conv.MMDET_DEFORMABLE_DETR_HEAD,
               "dino": conv.MMDET_DINO_HEAD}
MMDET_SCORE_INPUTS = ("all_cls_scores", "all_bbox_preds", "enc_cls_scores", "enc_bbox_preds", "dn_cls_scores",
                      "dn_bbox_preds")


def call_mmdet_head(inputs, config, profile):
    """inputs: the head's scores and targets, optional ``world_statistics`` ``{layer: [ranks, 2]}`` (every rank's
    ``(num_pos, cls_avg_factor)`` in a process group, components/ranks.py). outputs: ``losses`` with mmdet's
    keys, dots written as ``/`` (``d0/loss_cls``), and ``total``."""
    head = MMDetDETRHeadLoss(mmdet_head_convention(config), num_classes=config["num_classes"])
    kwargs = {k: inputs[k] for k in MMDET_SCORE_INPUTS[2:] if k in inputs}
    if "dn_meta" in inputs:
        kwargs["dn_meta"] = {k: int(v) for k, v in inputs["dn_meta"].items()}
    if "world_statistics" in inputs:  # {layer: [ranks, 2]} -> per rank {layer: (num_pos, cls_avg_factor)}
        stats = inputs["world_statistics"]
        ranks = len(next(iter(stats.values())))
        kwargs["world"] = [{key: tuple(float(v) for v in value[r]) for key, value in stats.items()}
                           for r in range(ranks)]
    losses = head(inputs["all_cls_scores"], inputs["all_bbox_preds"], inputs["targets"], **kwargs)
    return {"losses": canonical_keys(losses), "total": head.total(losses)}


def _weights(inputs) -> dict:
    """The case's weights by their dotted names (components/canonical.py)."""
    return dotted_keys(inputs["weights"])


def call_padding(inputs, config, profile):
    return {"mask": M.padding_mask(inputs["image_sizes"], tuple(config["padded_shape"]))}


def call_resize(inputs, config, profile):
    return {"mask": M.resize_nearest(inputs["mask"], tuple(config["size"]))}


def call_crop(inputs, config, profile):
    return {"masks": M.crop_mask(inputs["masks"], inputs["boxes"])}


def call_downsample(inputs, config, profile):
    return {"masks": M.downsample_masks(inputs["masks"], tuple(config["size"]))}


def call_position(inputs, config, profile):
    import dataclasses
    convention = conv.get_profile(profile).position
    if "num_feats" in config:
        convention = dataclasses.replace(convention, num_feats=config["num_feats"])
    return {"pos": PE.sine_position_encoding(inputs.get("mask"), tuple(config["shape"]) if "shape" in config else None,
                                             convention=convention)}


def call_encoder(inputs, config, profile):
    return {"memory": T.encoder(inputs["src"], _weights(inputs), config["num_layers"], config["num_heads"],
                                pos=inputs.get("pos"), key_padding_mask=inputs.get("key_padding_mask"))}


def call_decoder(inputs, config, profile):
    return {"hidden": T.decoder(inputs["tgt"], inputs["memory"], _weights(inputs), config["num_layers"],
                                config["num_heads"], pos=inputs.get("pos"), query_pos=inputs.get("query_pos"),
                                memory_key_padding_mask=inputs.get("memory_key_padding_mask"),
                                return_intermediate=config.get("return_intermediate", True))}


def call_detr_head(inputs, config, profile):
    logits, boxes = H.detr_head(inputs["hidden"], _weights(inputs), num_reg_fcs=config.get("num_reg_fcs", 2))
    return {"logits": logits, "boxes": boxes}


COMPONENTS: dict[str, Component] = {c.name: c for c in [
    Component("boxes.convert", call_convert, doc="boxes [..., 4] in config.src -> boxes in config.dst",
              profile_dependent=False),
    Component("boxes.area", call_area, doc="boxes [..., 4] in config.fmt -> area [...]", profile_dependent=False),
    Component("boxes.overlap", call_overlap, ("boxes1", "boxes2"), lambda o: o["value"].sum(),
              doc="boxes1, boxes2 -> value [N, M] (or [N] aligned); config op, aligned, fmt, convention"),
    *[Component(f"losses.{name}", _loss_call(name), (pos[0],), lambda o: o["loss"].sum(),
                doc=f"oracle.losses.{name}: inputs {', '.join(pos)} (+ keyword tensors) -> loss",
                profile_dependent=name.endswith("iou_loss"))  # only the IoU losses take a profile's convention
      for name, pos in LOSS_POSITIONAL.items()],
    Component("assign.hungarian", call_hungarian, matching="indices", optional_outputs=("cost", "total_cost"),
              doc="pred_logits [B,Q,K] logits, pred_boxes [B,Q,4] normalised cxcywh, targets (labels [T], boxes [T, 4] "
                  "normalised cxcywh, optional image_size [2] (h, w)) -> indices, cost [Q, T] per image, total_cost "
                  "[B]; config: optional matcher {field: value} replacing numeric fields of the profile's "
                  "MatcherConvention (MATCHER_FIELDS: weight_class, weight_bbox, weight_giou, focal_alpha, "
                  "focal_gamma, focal_eps), as a model's config sets them",
              exact_dtypes={"indices": torch.int64}),
    Component("criteria.set_criterion", call_set_criterion, ("outputs",), lambda o: o["total"], matching="indices",
              optional_outputs=("indices",), tie_dependent=("losses.class_error*", "losses.cardinality_error*"),
              extra_outputs=DINO_ZERO_DN_OUTPUTS,
              doc="outputs, targets -> losses (unweighted; weighted under ultralytics keys), total, indices; config: "
                  "num_classes, optional criterion {field: value} (CRITERION_FIELDS: eos_coef, focal_alpha, "
                  "focal_gamma, weight_ce, weight_bbox, weight_giou, weight_mask, weight_dice, interm_coef) and "
                  "matcher {field: value} (MATCHER_FIELDS) replacing numeric fields of the profile's conventions",
              exact_dtypes={"indices": torch.int64}),
    Component("criteria.cdn", call_cdn, doc="targets, draws -> labels, boxes, boxes_unact, valid, attn_mask, dn_meta",
              exact_dtypes={"labels": torch.int64, "dn_meta": torch.int64, "valid": torch.bool,
                            "attn_mask": torch.bool}),
    Component("criteria.mmdet_detr_head", call_mmdet_head, MMDET_SCORE_INPUTS, lambda o: o["total"],
              doc="all_cls_scores, all_bbox_preds, targets (+ enc, dn) -> losses (mmdet keys), total; config: head, "
                  "num_classes, optional criterion {field: value} (MMDET_HEAD_FIELDS: bg_cls_weight, focal_alpha, "
                  "focal_gamma, loss_weight_cls, loss_weight_bbox, loss_weight_iou) and matcher {field: value} "
                  "(MATCHER_FIELDS) replacing numeric fields of the head's convention"),
    Component("masks.padding", call_padding, doc="image_sizes [B, 2] -> mask [B, H, W] (True = padding)",
              profile_dependent=False,
              exact_dtypes={"mask": torch.bool}),
    Component("masks.resize", call_resize, doc="mask [B, H, W] bool -> mask [B, h, w] (PyTorch nearest)",
              profile_dependent=False,
              exact_dtypes={"mask": torch.bool}),
    Component("masks.crop", call_crop, doc="masks [N, h, w], boxes [N, 4] xyxy pixels -> masks",
              profile_dependent=False),
    Component("masks.downsample", call_downsample, doc="masks [N, H, W] -> masks [N, h, w] (nearest)",
              profile_dependent=False),
    Component("position.sine", call_position, doc="mask [B, H, W] (or config.shape) -> pos [B, 2F, H, W]"),
    Component("transformer.encoder", call_encoder, ("src", "pos"), lambda o: o["memory"].sum(),
              doc="src [B, L, E], pos, key_padding_mask, weights ('/' for '.') -> memory [B, L, E]",
              profile_dependent=False),
    Component("transformer.decoder", call_decoder, ("tgt", "memory", "pos", "query_pos"), lambda o: o["hidden"].sum(),
              doc="tgt [B, Q, E], memory [B, L, E], pos, query_pos, memory_key_padding_mask, weights -> hidden",
              profile_dependent=False),
    Component("heads.detr", call_detr_head, ("hidden",), lambda o: o["logits"].sum() + o["boxes"].sum(),
              doc="hidden [..., Q, E], weights -> logits [..., Q, K], boxes [..., Q, 4]", profile_dependent=False),
    Component("anchors.grid", D.call_anchor_grid, profile_dependent=False,
              doc="config: AnchorGenerator fields, featmap_sizes, pad_shape -> anchors, valid_flags (per level)",
              exact_dtypes={"valid_flags": torch.bool}),
    Component("anchors.points", D.call_anchor_points, profile_dependent=False,
              doc="config: featmap_sizes, strides, offset -> points [A, 2] (grid units), strides [A, 1]"),
    Component("coders.delta_xywh_encode", D.call_delta_encode, ("gt",), lambda o: o["deltas"].sum(),
              profile_dependent=False, doc="anchors [N, 4], gt [N, 4] xyxy; config: coder fields -> deltas [N, 4]"),
    Component("coders.delta_xywh_decode", D.call_delta_decode, ("deltas",), lambda o: o["boxes"].sum(),
              profile_dependent=False,
              doc="anchors [N, 4] xyxy, deltas [N, 4]; config: coder fields, max_shape -> boxes [N, 4] xyxy"),
    Component("coders.dist2bbox", D.call_dist2bbox, ("distances",), lambda o: o["boxes"].sum(), profile_dependent=False,
              doc="distances [..., 4] ltrb, points [..., 2]; config fmt -> boxes [..., 4]"),
    Component("coders.bbox2dist", D.call_bbox2dist, ("boxes",), lambda o: o["distances"].sum(), profile_dependent=False,
              doc="points [..., 2], boxes [..., 4] xyxy; config reg_max -> distances [..., 4] ltrb"),
    Component("coders.dfl_expectation", D.call_dfl_expectation, ("logits",), lambda o: o["distances"].sum(),
              profile_dependent=False, doc="logits [..., 4, reg_max] -> distances [..., 4]"),
    Component("heads.yolov8_decode", D.call_yolov8_decode, ("box_maps",), lambda o: o["boxes"].sum(),
              profile_dependent=False, doc="box_maps: list of [B, 4 * reg_max, H_l, W_l]; config strides, fmt "
                                           "(cxcywh), offset (0.5) -> boxes [B, A, 4] pixels"),
    Component("assign.max_iou", D.call_max_iou, profile_dependent=False,
              doc="priors [N, 4], gt_boxes [K, 4], gt_labels [K] (+ gt_boxes_ignore); config convention (a preset "
                  "name) -> gt_inds, max_overlaps, labels",
              exact_dtypes={"gt_inds": torch.int64, "labels": torch.int64}),
    Component("assign.task_aligned", D.call_task_aligned, profile_dependent=False,
              doc="pd_scores, pd_bboxes, anchor_points, gt_labels, gt_bboxes, mask_gt; config convention, stride_val "
                  "-> target_labels, target_bboxes, target_scores, fg_mask, target_gt_idx",
              exact_dtypes={"target_labels": torch.int64, "target_gt_idx": torch.int64, "fg_mask": torch.bool}),
    Component("criteria.yolov8_detection", D.call_yolov8_detection, ("pred_distri", "pred_logits"),
              lambda o: o["total"], optional_outputs=("fg_mask",), profile_dependent=False,
              doc="pred_distri, pred_logits, batch; config featmap_sizes, strides -> loss [3], total, fg_mask",
              exact_dtypes={"fg_mask": torch.bool}),
    Component("criteria.yolov8_segmentation", D.call_yolov8_segmentation,
              ("pred_distri", "pred_logits", "mask_coefficients", "proto"), lambda o: o["total"],
              optional_outputs=("fg_mask",), profile_dependent=False,
              doc="+ mask_coefficients, proto, batch.masks; config overlap_mask -> loss [4], total, fg_mask",
              exact_dtypes={"fg_mask": torch.bool}),
    Component("criteria.anchor_head", D.call_anchor_head, ("cls_scores", "bbox_preds"), lambda o: o["total"],
              optional_outputs=("labels", "label_weights"), profile_dependent=False,
              doc="cls_scores, bbox_preds per level, targets; config head (+ head_overrides), num_classes, "
                  "img_metas -> loss_cls, "
                  "loss_bbox (per level), avg_factor, total, labels, label_weights",
              exact_dtypes={"labels": torch.int64}),
]}


# --------------------------------------------------------------------------- gradients

def float_leaves(tree: Tree, path: tuple = ()) -> list[tuple[tuple, torch.Tensor]]:
    """``(path, tensor)`` of every tensor in a tree that requires grad."""
    if isinstance(tree, torch.Tensor):
        return [(path, tree)] if tree.requires_grad else []
    if isinstance(tree, Mapping):
        return [leaf for k, v in tree.items() for leaf in float_leaves(v, path + (str(k),))]
    if isinstance(tree, (list, tuple)):
        return [leaf for i, v in enumerate(tree) for leaf in float_leaves(v, path + (str(i),))]
    return []


def with_grad(inputs: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """A copy of ``inputs`` in which every floating tensor under ``keys`` requires grad."""
    def mark(tree: Tree) -> Tree:
        if isinstance(tree, torch.Tensor):
            return tree.detach().clone().requires_grad_(True) if tree.dtype.is_floating_point else tree
        if isinstance(tree, Mapping):
            return {k: mark(v) for k, v in tree.items()}
        if isinstance(tree, (list, tuple)):
            return [mark(v) for v in tree]
        return tree
    return {k: (mark(v) if k in keys else v) for k, v in inputs.items()}


def gradients(objective: torch.Tensor, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """``{path: d objective / d leaf}`` as a nested tree (zeros where the leaf is unused)."""
    leaves = float_leaves(inputs)
    if not leaves or not objective.requires_grad:
        return {}
    grads = torch.autograd.grad(objective, [t for _, t in leaves], allow_unused=True)
    out: dict[str, Any] = {}
    for (path, t), g in zip(leaves, grads):
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = torch.zeros_like(t) if g is None else g
    return out


def reference_outputs(component: str, inputs: Mapping[str, Any], config: Mapping[str, Any], profile: str,
                      *, with_grads: bool = True) -> dict:
    """The reference's outputs of a canonical call, with ``grad`` (gradients of the objective) when
    the component has one."""
    comp = COMPONENTS[component]
    if with_grads and comp.objective is not None:
        inputs = with_grad(inputs, comp.grad_inputs)
    outputs = comp.call(inputs, config, profile)
    if with_grads and comp.objective is not None:
        grads = gradients(comp.objective(outputs), {k: inputs[k] for k in comp.grad_inputs if k in inputs})
        if grads:
            outputs["grad"] = grads
    return outputs
