"""Canonical calls of the dense-detector components (anchors, coders, assigners, anchor-head and YOLOv8 losses).

Each is ``call(inputs, config, profile) -> outputs`` as in components/contract.py, which registers
them. Hyper-parameters travel in ``config`` (JSON: tuples become lists); tensors in ``inputs``.
"""

from __future__ import annotations

import dataclasses

import torch

from oracle import anchors as A
from oracle import coders as C
from oracle import conventions as conv
from oracle.assign.max_iou import max_iou_assign
from oracle.assign.task_aligned import task_aligned_assign
from oracle.criteria import anchor_head as AH
from oracle.criteria import yolov8 as Y
from oracle.errors import OracleInputError


def _generator(config) -> A.AnchorGenerator:
    keys = ("strides", "ratios", "scales", "base_sizes", "scale_major", "octave_base_scale", "scales_per_octave",
            "centers", "center_offset")
    return A.AnchorGenerator(**{k: config[k] for k in keys if k in config})


def call_anchor_grid(inputs, config, profile):
    """config: an AnchorGenerator's fields, ``featmap_sizes``, ``pad_shape`` -> anchors and valid_flags per level."""
    gen = _generator(config)
    sizes = [tuple(s) for s in config["featmap_sizes"]]
    return {"anchors": gen.grid_anchors(sizes), "valid_flags": gen.valid_flags(sizes, tuple(config["pad_shape"]))}


def call_anchor_points(inputs, config, profile):
    """config: ``featmap_sizes``, ``strides``, ``offset`` -> points [A, 2] (grid units), strides [A, 1]."""
    points, strides = A.anchor_points([tuple(s) for s in config["featmap_sizes"]], list(config["strides"]),
                                      config.get("offset", 0.5))
    return {"points": points, "strides": strides}


def replace_fields(base, overrides, fields: tuple[str, ...], where: str):
    """``base`` (a convention dataclass) with ``overrides`` (``{field: value}``, fields of ``fields``) replaced; an
    unknown field raises OracleInputError naming ``where``, a value the convention refuses raises through its own
    checks."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise OracleInputError(f"{where}: expected fields of {', '.join(fields)}, got {unknown}")
    return dataclasses.replace(base, **overrides) if overrides else base


#: The config keys of the delta coders: every :class:`~oracle.coders.DeltaXYWHCoder` field (mmdet
#: ``DeltaXYWHBBoxCoder``'s ``target_means``, ``target_stds``, ... and torchvision ``BoxCoder``'s weights as
#: ``1 / stds``), absent ones at the dataclass's defaults.
CODER_FIELDS = ("means", "stds", "wh_ratio_clip", "wh_clamp", "clip_border", "add_ctr_clamp", "ctr_clamp")


def _coder(config, *, call_keys: tuple[str, ...] = ()) -> C.DeltaXYWHCoder:
    """The coder of a case's config (:data:`CODER_FIELDS`, plus the call's own ``call_keys``: decode's
    ``max_shape``); any other key raises OracleInputError."""
    fields = {k: (tuple(v) if isinstance(v, list) else v) for k, v in config.items() if k not in call_keys}
    return replace_fields(C.DeltaXYWHCoder(), fields, CODER_FIELDS, "config (delta coder)")


def call_delta_encode(inputs, config, profile):
    return {"deltas": _coder(config).encode(inputs["anchors"], inputs["gt"])}


def call_delta_decode(inputs, config, profile):
    shape = config.get("max_shape")
    return {"boxes": _coder(config, call_keys=("max_shape",)).decode(inputs["anchors"], inputs["deltas"],
                                           max_shape=tuple(shape) if shape is not None else None)}


def call_dist2bbox(inputs, config, profile):
    return {"boxes": C.dist2bbox(inputs["distances"], inputs["points"], fmt=config.get("fmt", "xyxy"))}


def call_bbox2dist(inputs, config, profile):
    return {"distances": C.bbox2dist(inputs["points"], inputs["boxes"], reg_max=config.get("reg_max"))}


def call_dfl_expectation(inputs, config, profile):
    return {"distances": C.dfl_expectation(inputs["logits"])}


def call_yolov8_decode(inputs, config, profile):
    from oracle.box_decode import yolov8_box_decode
    return {"boxes": yolov8_box_decode(inputs["box_maps"], config["strides"], fmt=config.get("fmt", "cxcywh"),
                                       offset=config.get("offset", 0.5))}


def _convention(config, key: str, field: str, profile: str | None, kind: type):
    """``config[key]``: a preset of the registry (``MAX_IOU_RPN_MMDET``) or a :class:`~oracle.conventions.Profile`
    field; absent, the profile's own ``field`` (``max_iou``), so that a dense case's profile means what a DETR
    case's does (oracle.conventions.lookup)."""
    which = config.get(key, field)
    return conv.named(which, kind) if profile is None else conv.lookup(profile, which, kind)


def max_iou_convention(config, profile: str | None = None):
    """config ``convention``: a preset (``MAX_IOU_RETINANET_MMDET``) or, absent, the profile's ``max_iou``, with
    optional field overrides in ``convention_overrides`` (``neg_iou_thr`` as a list is a (lo, hi) range)."""
    base = _convention(config, "convention", "max_iou", profile, conv.MaxIoUConvention)
    overrides = dict(config.get("convention_overrides", {}))
    if isinstance(overrides.get("neg_iou_thr"), list):
        overrides["neg_iou_thr"] = tuple(overrides["neg_iou_thr"])
    return dataclasses.replace(base, **overrides) if overrides else base


def call_max_iou(inputs, config, profile):
    """priors [N, 4], gt_boxes [K, 4] xyxy pixels, gt_labels [K], optional gt_boxes_ignore [M, 4]
    -> gt_inds [N] (k + 1 / 0 negative / -1 ignored), max_overlaps [N], labels [N] (-1 where not positive)."""
    result = max_iou_assign(inputs["priors"], inputs["gt_boxes"], inputs["gt_labels"],
                            convention=max_iou_convention(config, profile),
                            gt_boxes_ignore=inputs.get("gt_boxes_ignore"))
    return {"gt_inds": result.gt_inds, "max_overlaps": result.max_overlaps, "labels": result.labels}


#: The numeric fields of an anchor head that ``criteria.anchor_head``'s config ``head_overrides`` may replace: what an
#: mmdet config sets beside the head's type (``loss_cls`` alpha and gamma, ``loss_bbox`` beta, the loss weights,
#: ``train_cfg`` allowed_border and pos_weight); the anchors, the assigner and the losses' form stay the preset's.
ANCHOR_HEAD_FIELDS = ("focal_alpha", "focal_gamma", "smooth_l1_beta", "loss_weight_cls", "loss_weight_bbox",
                      "allowed_border", "pos_weight")


def anchor_head_config(config, profile: str | None = None):
    """config ``head``: a preset (``RETINANET_HEAD_MMDET``) or, absent, the profile's ``anchor_head``, with
    ``head_overrides`` (``{field: value}``, fields of :data:`ANCHOR_HEAD_FIELDS`) replaced; ``strides`` (optional)
    replaces its anchor generator's strides (same anchors per level), so that small images keep every level."""
    head = _convention(config, "head", "anchor_head", profile, conv.AnchorHeadConfig)
    head = replace_fields(head, config.get("head_overrides"), ANCHOR_HEAD_FIELDS, "config.head_overrides (anchor head)")
    if "strides" in config:
        head = dataclasses.replace(head, anchor_generator=dataclasses.replace(
            head.anchor_generator, strides=tuple(config["strides"])))
    return head


def call_anchor_head(inputs, config, profile):
    """cls_scores, bbox_preds (per level, mmdet layout), targets (boxes xyxy pixels, labels, optional
    ignore_boxes); config head, num_classes, img_metas -> loss_cls, loss_bbox (per level), avg_factor,
    total, labels and label_weights per image (over all anchors)."""
    metas = [{k: tuple(v) for k, v in m.items()} for m in config["img_metas"]]
    loss = AH.anchor_head_loss(inputs["cls_scores"], inputs["bbox_preds"], inputs["targets"], metas,
                            config=anchor_head_config(config, profile), num_classes=config["num_classes"])
    return {"loss_cls": list(loss.loss_cls), "loss_bbox": list(loss.loss_bbox),
            "avg_factor": torch.tensor(float(loss.avg_factor), dtype=torch.float64), "total": loss.total,
            "labels": [t.labels for t in loss.targets], "label_weights": [t.label_weights for t in loss.targets]}


#: The numeric fields of a task-aligned convention that ``assign.task_aligned``'s config ``convention_overrides`` may
#: replace: what a model's config or loss sets (ultralytics ``TaskAlignedAssigner(topk, alpha, beta, eps)``, mmdet
#: ``TaskAlignedAssigner(topk)`` with ``assign(alpha, beta)``); the algorithm's form (selection, resolution, overlap)
#: stays the preset's. ``centre_margin`` is a constant in both libraries (no parameter sets it); ``topk2`` is off in
#: every preset.
TASK_ALIGNED_FIELDS = ("topk", "alpha", "beta", "norm_eps")


def task_aligned_convention(config, profile: str | None = None) -> conv.TaskAlignedConvention:
    """config ``convention``: a preset (``TAL_ULTRALYTICS``) or, absent, the profile's ``task_aligned``, with
    ``convention_overrides`` (``{field: value}``, fields of :data:`TASK_ALIGNED_FIELDS`) replaced."""
    base = _convention(config, "convention", "task_aligned", profile, conv.TaskAlignedConvention)
    return replace_fields(base, config.get("convention_overrides"), TASK_ALIGNED_FIELDS,
                          "config.convention_overrides (task-aligned)")


def call_task_aligned(inputs, config, profile):
    """pd_scores [B, A, C] probabilities, pd_bboxes [B, A, 4] and anchor_points [A, 2] pixels, gt_labels [B, n],
    gt_bboxes [B, n, 4] xyxy pixels, mask_gt [B, n]; config convention (a preset, or absent: the profile's
    task_aligned), optional convention_overrides (:data:`TASK_ALIGNED_FIELDS`), stride_val -> target_labels,
    target_bboxes, target_scores, fg_mask, target_gt_idx."""
    convention = task_aligned_convention(config, profile)
    a = task_aligned_assign(inputs["pd_scores"], inputs["pd_bboxes"], inputs["anchor_points"], inputs["gt_labels"],
                            inputs["gt_bboxes"], inputs["mask_gt"], convention=convention,
                            stride_val=config.get("stride_val"))
    return {"target_labels": a.target_labels, "target_bboxes": a.target_bboxes, "target_scores": a.target_scores,
            "fg_mask": a.fg_mask, "target_gt_idx": a.target_gt_idx}


#: The loss gains of a YOLOv8 loss that the config ``gains`` may replace: ultralytics' ``hyp.box``, ``hyp.cls``,
#: ``hyp.dfl`` (cfg/default.yaml 7.5, 0.5, 1.5; engine/tuner.py searches box 1-20, cls 0.1-4, dfl 0.4-12).
YOLOV8_GAIN_FIELDS = ("box_gain", "cls_gain", "dfl_gain")


def yolov8_config(config, profile: str | None = None) -> conv.YOLOv8LossConfig:
    """config ``preset`` (``YOLOV8_ULTRALYTICS_LEGACY``) or, absent, the profile's ``yolov8``; ``overlap_mask``;
    ``gains`` (``{field: value}``, fields of :data:`YOLOV8_GAIN_FIELDS`)."""
    base = _convention(config, "preset", "yolov8", profile, conv.YOLOv8LossConfig)
    if "overlap_mask" in config:
        base = dataclasses.replace(base, overlap_mask=config["overlap_mask"])
    return replace_fields(base, config.get("gains"), YOLOV8_GAIN_FIELDS, "config.gains (YOLOv8 loss)")


def _yolov8_outputs(result: Y.YOLOv8LossResult) -> dict:
    return {"loss": result.loss, "total": result.total, "fg_mask": result.assignment.fg_mask}


def call_yolov8_detection(inputs, config, profile):
    """pred_distri [B, A, 4 * reg_max], pred_logits [B, A, C], batch (batch_idx, cls, bboxes normalised cxcywh);
    config featmap_sizes, strides, preset -> loss [3] (box, cls, dfl; gained, times B), total, fg_mask."""
    return _yolov8_outputs(Y.yolov8_detection_loss(
        inputs["pred_distri"], inputs["pred_logits"], [tuple(s) for s in config["featmap_sizes"]],
        list(config["strides"]), inputs["batch"], config=yolov8_config(config, profile)))


def call_yolov8_segmentation(inputs, config, profile):
    """As criteria.yolov8_detection, plus mask_coefficients [B, A, nm], proto [B, nm, Hm, Wm], batch.masks;
    config overlap_mask -> loss [4] (box, seg, cls, dfl), total, fg_mask."""
    return _yolov8_outputs(Y.yolov8_segmentation_loss(
        inputs["pred_distri"], inputs["pred_logits"], inputs["mask_coefficients"], inputs["proto"],
        [tuple(s) for s in config["featmap_sizes"]], list(config["strides"]), inputs["batch"],
        config=yolov8_config(config, profile)))
