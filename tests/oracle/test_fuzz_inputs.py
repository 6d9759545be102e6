"""Every public function of oracle/ refuses malformed input with an OracleInputError naming its own argument.

REGISTRY maps each public function (by qualified name) to a builder of a valid call's keyword arguments (a
function of a hypothesis-drawn seed). The fuzz property mutates one leaf of that call (a tensor, a number, a
sequence or a mapping, nested ones included: a target's ``boxes``, one ``featmap_sizes`` entry) with one of the
mutations below, and requires the call to either

- raise :class:`OracleInputError` whose message leads with one of the function's parameter names
  (``"pred: ..."``, ``"image 0: targets['boxes']: ..."``; a convention class's own ``"IoUConvention.eps: ..."``), or
- return only finite values (every floating tensor or float in the result, nested in tuples, lists, dicts and
  dataclasses; integer and boolean outputs are fine).

Any other exception, or a NaN/inf in the result, fails with the function, the mutation and the traceback. A
separate test walks the package and fails for a public function that is neither in REGISTRY nor in EXEMPT (with
its reason), so a new public function needs a builder here.

``python -m tests.oracle.test_fuzz_inputs [SHOW [FUNCTION ...]]`` (from the repository root, with it on
PYTHONPATH) runs every (function, mutation) pair once and prints the counts of clear errors, finite results, errors
naming a non-argument, unhelpful crashes (other exception types) and silent non-finite results; SHOW > 0 prints
that many defects first, and FUNCTION names restrict the run to those registry entries.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import pkgutil
import re
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle
from oracle import OracleInputError
from oracle.anchors import AnchorGenerator
from oracle.conventions import (IOU_ULTRALYTICS_XYXY, MAX_IOU_RETINANET_MMDET, MMDET_DINO_HEAD, PE_DINO, TAL_MMDET,
                                TAL_ULTRALYTICS, IoUConvention, SinePEConvention, get_profile)
from oracle.conventions.dense import RETINANET_HEAD_MMDET, YOLOV8_ULTRALYTICS, YOLOv8LossConfig
from oracle.criteria.denoising import CdnDraws
from oracle.params import (decoder_layer_weights, decoder_weights, detr_head_weights, encoder_layer_weights,
                           encoder_weights)

# --------------------------------------------------------------------------- valid calls


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _rand(g: torch.Generator, *shape: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    return low + (high - low) * torch.rand(*shape, generator=g, dtype=torch.float64)


def _xyxy(g: torch.Generator, n: int, scale: float = 1.0) -> torch.Tensor:
    """``n`` xyxy boxes of positive extent in ``[0, scale]``."""
    lo = _rand(g, n, 2, high=0.5 * scale)
    return torch.cat((lo, lo + _rand(g, n, 2, low=0.05 * scale, high=0.5 * scale)), dim=1)


def _cxcywh(g: torch.Generator, n: int) -> torch.Tensor:
    return torch.cat((_rand(g, n, 2, low=0.3, high=0.7), _rand(g, n, 2, low=0.1, high=0.5)), dim=1)


def _labels(g: torch.Generator, n: int, k: int) -> torch.Tensor:
    return torch.randint(0, k, (n,), generator=g)


def _detr_targets(g: torch.Generator, counts=(2, 1), k: int = 3) -> list[dict]:
    return [{"labels": _labels(g, n, k), "boxes": _cxcywh(g, n)} for n in counts]


def _pair_boxes(seed: int) -> dict:
    g = _gen(seed)
    return {"boxes1": _xyxy(g, 3), "boxes2": _xyxy(g, 2)}


def _loss_pair(seed: int) -> dict:
    g = _gen(seed)
    return {"pred": _xyxy(g, 3), "target": _xyxy(g, 3), "weight": _rand(g, 3)}


def _logits_targets(seed: int) -> dict:
    g = _gen(seed)
    return {"logits": _rand(g, 3, 2, low=-3, high=3), "targets": _rand(g, 3, 2), "weight": _rand(g, 3, 2)}


_E, _F, _H = 4, 8, 2  # embed dim, FFN dim, heads of the transformer calls


def _attention(seed: int) -> dict:
    g = _gen(seed)
    w = encoder_layer_weights(_E, _F, seed)
    weights = {k[len("self_attn."):]: v for k, v in w.items() if k.startswith("self_attn.")}
    return {"query": _rand(g, 2, 3, _E, low=-1), "key": _rand(g, 2, 5, _E, low=-1), "value": _rand(g, 2, 5, _E, low=-1),
            "weights": weights, "num_heads": _H, "key_padding_mask": torch.tensor([[False] * 5, [False] * 4 + [True]]),
            "attn_mask": torch.zeros(3, 5, dtype=torch.bool)}


def _encoder_layer(seed: int) -> dict:
    g = _gen(seed)
    return {"src": _rand(g, 2, 3, _E, low=-1), "weights": encoder_layer_weights(_E, _F, seed), "num_heads": _H,
            "pos": _rand(g, 2, 3, _E, low=-1), "key_padding_mask": torch.tensor([[False] * 3, [False, False, True]])}


def _encoder(seed: int) -> dict:
    kw = _encoder_layer(seed)
    return {**kw, "weights": encoder_weights(_E, _F, 2, seed), "num_layers": 2}


def _decoder_layer(seed: int) -> dict:
    g = _gen(seed)
    return {"tgt": _rand(g, 2, 3, _E, low=-1), "memory": _rand(g, 2, 4, _E, low=-1),
            "weights": decoder_layer_weights(_E, _F, seed), "num_heads": _H, "pos": _rand(g, 2, 4, _E, low=-1),
            "query_pos": _rand(g, 2, 3, _E, low=-1),
            "memory_key_padding_mask": torch.tensor([[False] * 4, [False] * 3 + [True]]),
            "tgt_mask": torch.zeros(3, 3, dtype=torch.bool)}


def _decoder(seed: int) -> dict:
    kw = _decoder_layer(seed)
    del kw["tgt_mask"]
    w = decoder_weights(_E, _F, 2, seed)
    return {**kw, "weights": w, "num_layers": 2}


_TINY_ANCHORS = AnchorGenerator(strides=(16,), ratios=(1.0,), scales=(1.0,))
_RETINA_TINY = dataclasses.replace(RETINANET_HEAD_MMDET, anchor_generator=_TINY_ANCHORS)


def _anchor_head(seed: int) -> dict:
    g = _gen(seed)
    c = _RETINA_TINY.cls_out_channels(2)
    return {"cls_scores": [_rand(g, 1, c, 2, 2, low=-2, high=2)],
            "bbox_preds": [_rand(g, 1, 4, 2, 2, low=-0.5, high=0.5)],
            "targets": [{"boxes": torch.tensor([[8.0, 8.0, 24.0, 16.0]]), "labels": torch.tensor([1])}],
            "img_metas": [{"img_shape": (32, 32)}], "config": _RETINA_TINY, "num_classes": 2}


def _image_targets(seed: int) -> dict:
    g = _gen(seed)
    anchors = _TINY_ANCHORS.grid_anchors([(2, 2)])[0]
    return {"anchors": anchors, "valid_flags": torch.ones(4, dtype=torch.bool),
            "target": {"boxes": _xyxy(g, 2, 32.0), "labels": _labels(g, 2, 2)}, "img_meta": {"img_shape": (32, 32)},
            "config": _RETINA_TINY, "num_classes": 2}


def _level_loss(seed: int) -> dict:
    g = _gen(seed)
    c = _RETINA_TINY.cls_out_channels(2)
    return {"cls_score": _rand(g, 2, c, low=-2, high=2), "bbox_pred": _rand(g, 2, 4, low=-0.5, high=0.5),
            "anchors": _xyxy(g, 2, 32.0), "labels": torch.tensor([0, 2]), "label_weights": torch.ones(2),
            "bbox_targets": _rand(g, 2, 4, low=-0.5, high=0.5), "bbox_weights": torch.ones(2, 4), "avg_factor": 2.0,
            "config": _RETINA_TINY, "num_classes": 2}


_YOLO_SIZES, _YOLO_STRIDES, _YOLO_R = [(4, 4), (2, 2)], [8.0, 16.0], 4
_YOLO_CONFIG = YOLOv8LossConfig(reg_max=_YOLO_R)


def _yolo(seed: int, seg: bool = False) -> dict:
    g = _gen(seed)
    a = sum(h * w for h, w in _YOLO_SIZES)
    batch = {"batch_idx": torch.tensor([0, 1]), "cls": torch.tensor([0, 1]), "bboxes": _cxcywh(g, 2)}
    kw = {"pred_distri": _rand(g, 2, a, 4 * _YOLO_R, low=-2, high=2), "pred_logits": _rand(g, 2, a, 2, low=-3, high=3),
          "featmap_sizes": _YOLO_SIZES, "strides": _YOLO_STRIDES, "batch": batch, "config": _YOLO_CONFIG}
    if seg:
        batch["masks"] = torch.randint(0, 3, (2, 8, 8), generator=g)
        kw["mask_coefficients"] = _rand(g, 2, a, 3, low=-1)
        kw["proto"] = _rand(g, 2, 3, 8, 8, low=-1)
    return kw


def _task_aligned(seed: int) -> dict:
    g = _gen(seed)
    ys, xs = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    points = (torch.stack((xs, ys), -1).reshape(-1, 2) + 0.5) * 8
    return {"pd_scores": _rand(g, 2, 16, 3), "pd_bboxes": _xyxy(g, 32, 32.0).reshape(2, 16, 4),
            "anchor_points": points.double(), "gt_labels": _labels(g, 4, 3).reshape(2, 2),
            "gt_bboxes": _xyxy(g, 4, 32.0).reshape(2, 2, 4), "mask_gt": torch.tensor([[True, True], [True, False]]),
            "convention": TAL_ULTRALYTICS}


def _cdn(seed: int, with_draws: bool = True) -> dict:
    g = _gen(seed)
    targets = _detr_targets(g, (2, 1), 3)
    kw = {"targets": targets, "dn_number": 1, "label_noise_ratio": 0.5, "num_classes": 3}
    if with_draws:
        k = 2 * 2 * 3  # 2 groups, 2 parts (positive, negative) ... K = 2 G N with N = 3 targets
        label_p = _rand(g, k)
        kw.update(box_noise_scale=1.0, num_queries=4, draws=CdnDraws(
            label_p=label_p, relabel=_labels(g, int((label_p < 0.25).sum()), 3),
            box_sign=torch.randint(0, 2, (k, 4), generator=g), box_part=_rand(g, k, 4)))
    return kw


def _targets_objs(seed: int, counts=(2, 1)):
    from oracle.criteria._inputs import targets_arg
    return targets_arg(_detr_targets(_gen(seed), counts), len(counts), 3)


def _matching(seed: int) -> dict:
    g = _gen(seed)
    return {"pred_logits": _rand(g, 2, 4, 4, low=-2, high=2), "pred_boxes": _cxcywh(g, 8).reshape(2, 4, 4),
            "targets": _detr_targets(g, (2, 1), 3)}


def _evaluate(seed: int) -> dict:
    g = _gen(seed)
    return {"cost_matrix": _rand(g, 3, 2, low=-1), "pred_idx": torch.tensor([2, 0]), "gt_idx": torch.tensor([0, 1])}


def _box_decode(seed: int) -> dict:
    g = _gen(seed)
    return {"box_maps": [_rand(g, 1, 4 * _YOLO_R, 4, 4, low=-2, high=2),
                         _rand(g, 1, 4 * _YOLO_R, 2, 2, low=-2, high=2)],
            "strides": _YOLO_STRIDES}


@dataclass(frozen=True)
class Entry:
    """A valid call of the registered function built from a seed."""

    build: Callable[[int], dict]


def _fields_of(preset: object) -> Callable[[int], dict]:
    """The constructor arguments that rebuild a convention preset (a frozen dataclass)."""
    return lambda seed: {f.name: getattr(preset, f.name) for f in dataclasses.fields(preset) if f.init}


def _const(**kw) -> Callable[[int], dict]:
    return lambda seed: {k: (v() if callable(v) and not isinstance(v, type) else v) for k, v in kw.items()}


REGISTRY: dict[str, Entry] = {
    # anchors
    "oracle.anchors.anchor_inside_flags": Entry(lambda s: {
        "anchors": _xyxy(_gen(s), 4, 32.0), "valid_flags": torch.tensor([True, True, False, True]),
        "img_shape": (32, 32),
        "allowed_border": 0.0}),
    "oracle.anchors.images_to_levels": Entry(lambda s: {
        "per_image": [_rand(_gen(s), 5, 4), _rand(_gen(s + 1), 5, 4)], "num_level_anchors": [3, 2]}),
    "oracle.anchors.anchor_points": Entry(_const(featmap_sizes=[(2, 3), (1, 2)], strides=[8.0, 16.0], offset=0.5)),
    # assigners
    "oracle.assign.hungarian.softmax_class_cost": Entry(lambda s: {
        "logits": _rand(_gen(s), 4, 3, low=-2, high=2), "labels": torch.tensor([0, 2])}),
    "oracle.assign.hungarian.focal_class_cost": Entry(lambda s: {
        "logits": _rand(_gen(s), 4, 3, low=-2, high=2), "labels": torch.tensor([0, 2]), "alpha": 0.25, "gamma": 2.0,
        "eps": 1e-8}),
    "oracle.assign.hungarian.matching_cost_matrix": Entry(lambda s: {
        "pred_logits": _rand(_gen(s), 4, 4, low=-2, high=2), "pred_boxes": _cxcywh(_gen(s + 1), 4),
        "target": _detr_targets(_gen(s + 2), (2,))[0]}),
    "oracle.assign.hungarian.hungarian_match": Entry(_matching),
    "oracle.assign.hungarian.evaluate_matching": Entry(_evaluate),
    "oracle.assign.max_iou.assign_wrt_overlaps": Entry(lambda s: {
        "overlaps": _rand(_gen(s), 2, 5), "gt_labels": torch.tensor([0, 1]), "convention": MAX_IOU_RETINANET_MMDET}),
    "oracle.assign.max_iou.max_iou_assign": Entry(lambda s: {
        "priors": _xyxy(_gen(s), 5, 32.0), "gt_boxes": _xyxy(_gen(s + 1), 2, 32.0), "gt_labels": torch.tensor([0, 1]),
        "convention": MAX_IOU_RETINANET_MMDET, "gt_boxes_ignore": _xyxy(_gen(s + 2), 1, 32.0)}),
    "oracle.assign.task_aligned.ultralytics_stride_val": Entry(_const(strides=[8.0, 16.0, 32.0])),
    "oracle.assign.task_aligned.task_aligned_assign": Entry(_task_aligned),
    # boxes and coders
    "oracle.box_decode.yolov8_box_decode": Entry(_box_decode),
    "oracle.box_formats.validate_boxes": Entry(lambda s: {"name": "boxes", "boxes": _xyxy(_gen(s), 3), "fmt": "xyxy"}),
    "oracle.box_formats.format_arg": Entry(_const(name="fmt", fmt="cxcywh")),
    "oracle.box_formats.convert": Entry(lambda s: {"boxes": _cxcywh(_gen(s), 3), "src": "cxcywh", "dst": "xyxy"}),
    "oracle.box_formats.area": Entry(lambda s: {"boxes": _xyxy(_gen(s), 3)}),
    "oracle.boxes.iou": Entry(_pair_boxes),
    "oracle.boxes.giou": Entry(_pair_boxes),
    "oracle.boxes.diou": Entry(_pair_boxes),
    "oracle.boxes.ciou": Entry(_pair_boxes),
    "oracle.coders.dist2bbox": Entry(lambda s: {"distances": _rand(_gen(s), 3, 4), "points": _rand(_gen(s + 1), 3, 2)}),
    "oracle.coders.bbox2dist": Entry(lambda s: {
        "points": _rand(_gen(s), 3, 2, high=32.0), "boxes": _xyxy(_gen(s + 1), 3, 32.0), "reg_max": 16}),
    "oracle.coders.dfl_expectation": Entry(lambda s: {"logits": _rand(_gen(s), 3, 4, 5, low=-3, high=3)}),
    # conventions
    "oracle.conventions.profiles.get_profile": Entry(_const(name="mmdet")),
    "oracle.conventions.registry.named": Entry(_const(name="IOU_MMDET", kind=IoUConvention)),
    "oracle.conventions.registry.lookup": Entry(_const(profile="mmdet", which="box_iou", kind=IoUConvention)),
    "oracle.conventions.registry.presets_of": Entry(_const(kind=IoUConvention)),
    "oracle.conventions.registry.profiles_with": Entry(_const(field="matcher")),
    "oracle.conventions.iou.IoUConvention": Entry(_fields_of(IOU_ULTRALYTICS_XYXY)),
    "oracle.conventions.matching.MatcherConvention": Entry(_fields_of(get_profile("dino").matcher)),
    "oracle.conventions.matching.MaxIoUConvention": Entry(_fields_of(MAX_IOU_RETINANET_MMDET)),
    "oracle.conventions.matching.TaskAlignedConvention": Entry(_fields_of(TAL_MMDET)),
    "oracle.conventions.position.SinePEConvention": Entry(_fields_of(PE_DINO)),
    "oracle.conventions.dense.AnchorHeadConfig": Entry(_fields_of(RETINANET_HEAD_MMDET)),
    "oracle.conventions.dense.YOLOv8LossConfig": Entry(_fields_of(YOLOV8_ULTRALYTICS)),
    "oracle.conventions.detr_criteria.SetCriterionConvention": Entry(_fields_of(get_profile("dino").criterion)),
    "oracle.conventions.detr_criteria.MMDetDETRHeadConvention": Entry(_fields_of(MMDET_DINO_HEAD)),
    "oracle.conventions.profiles.Profile": Entry(_fields_of(get_profile("mmdet"))),
    # criteria
    "oracle.criteria.anchor_head.image_targets": Entry(_image_targets),
    "oracle.criteria.anchor_head.level_loss": Entry(_level_loss),
    "oracle.criteria.anchor_head.anchor_head_loss": Entry(_anchor_head),
    "oracle.criteria.denoising.inverse_sigmoid": Entry(lambda s: {"x": _rand(_gen(s), 5), "eps": 1e-3}),
    "oracle.criteria.denoising.cdn_group_count": Entry(_const(max_targets=3, dn_number=100)),
    "oracle.criteria.denoising.draw_cdn": Entry(lambda s: {**_cdn(s, False), "generator": _gen(s)}),
    "oracle.criteria.denoising.prepare_for_cdn": Entry(_cdn),
    "oracle.criteria.denoising.cdn_attention_mask": Entry(_const(pad_size=8, groups=2, num_queries=3)),
    "oracle.criteria.denoising.split_denoising": Entry(lambda s: {
        "layer": {"pred_logits": _rand(_gen(s), 2, 7, 3), "pred_boxes": _cxcywh(_gen(s + 1), 14).reshape(2, 7, 4)},
        "dn_meta": {"pad_size": 4, "num_dn_group": 2}}),
    "oracle.criteria.denoising.dn_meta_arg": Entry(_const(dn_meta=lambda: {"pad_size": 8, "num_dn_group": 2})),
    "oracle.criteria.denoising.dn_positive_slots": Entry(_const(count=2, pad_size=8, groups=2)),
    "oracle.criteria.denoising.dn_positive_indices": Entry(lambda s: {
        "targets": _targets_objs(s), "pad_size": 8, "groups": 2}),
    "oracle.criteria.mmdet_detr_head.assign_result": Entry(_const(
        indices=lambda: (torch.tensor([3, 0]), torch.tensor([1, 0])), num_queries=4,
        labels=lambda: torch.tensor([2, 0]))),
    "oracle.criteria.set_criterion.num_boxes": Entry(lambda s: {
        "targets": _targets_objs(s), "world_num_boxes": [3.0, 5.0], "mode": "world_mean"}),
    "oracle.criteria.yolov8.yolov8_detection_loss": Entry(_yolo),
    "oracle.criteria.yolov8.yolov8_segmentation_loss": Entry(lambda s: _yolo(s, seg=True)),
    # heads, losses
    "oracle.heads.detr_head": Entry(lambda s: {
        "hidden": _rand(_gen(s), 2, 3, _E, low=-1), "weights": detr_head_weights(_E, 4, s)}),
    "oracle.losses.reduce_loss": Entry(lambda s: {"loss": _rand(_gen(s), 3, 2), "weight": _rand(_gen(s + 1), 3, 2),
                                                  "reduction": "mean", "avg_factor": 4.0}),
    "oracle.losses.background_class_weight": Entry(_const(num_classes=3, background_weight=0.1)),
    "oracle.losses.one_hot_targets": Entry(_const(labels=lambda: torch.tensor([0, 2, 3]), num_classes=3)),
    "oracle.losses.softmax_cross_entropy": Entry(lambda s: {
        "logits": _rand(_gen(s), 3, 4, low=-3, high=3), "labels": torch.tensor([0, 3, -100]),
        "class_weight": _rand(_gen(s + 1), 4, low=0.1), "ignore_index": -100, "weight": _rand(_gen(s + 2), 3)}),
    "oracle.losses.sigmoid_binary_cross_entropy": Entry(lambda s: {
        **_logits_targets(s), "pos_weight": _rand(_gen(s + 3), 2, low=0.5, high=2)}),
    "oracle.losses.sigmoid_focal_loss": Entry(_logits_targets),
    "oracle.losses.l1_loss": Entry(_loss_pair),
    "oracle.losses.smooth_l1_loss": Entry(lambda s: {**_loss_pair(s), "beta": 0.5}),
    "oracle.losses.giou_loss": Entry(_loss_pair),
    "oracle.losses.diou_loss": Entry(_loss_pair),
    "oracle.losses.ciou_loss": Entry(_loss_pair),
    "oracle.losses.dice_loss": Entry(lambda s: {
        "logits": _rand(_gen(s), 3, 6, low=-3, high=3), "targets": (_rand(_gen(s + 1), 3, 6) > 0.5).double(),
        "weight": _rand(_gen(s + 2), 3)}),
    "oracle.losses.distribution_focal_loss": Entry(lambda s: {
        "logits": _rand(_gen(s), 3, 4, 5, low=-3, high=3), "targets": _rand(_gen(s + 1), 3, 4, high=4.0),
        "weight": _rand(_gen(s + 2), 3)}),
    "oracle.losses.varifocal_loss": Entry(lambda s: {
        "logits": _rand(_gen(s), 3, 2, low=-3, high=3), "targets": _rand(_gen(s + 1), 3, 2),
        "labels": torch.tensor([[1, 0], [0, 0], [0, 1]])}),
    # masks
    "oracle.masks.padding_mask": Entry(_const(image_sizes=[(3, 4), (2, 2)], padded_shape=(3, 4))),
    "oracle.masks.nearest_source_index": Entry(_const(in_size=5, out_size=3)),
    "oracle.masks.resize_nearest": Entry(lambda s: {"masks": _rand(_gen(s), 2, 4, 5) > 0.5, "size": (3, 2)}),
    "oracle.masks.downsample_masks": Entry(lambda s: {
        "masks": (_rand(_gen(s), 2, 4, 5) > 0.5).double(), "size": (2, 3)}),
    "oracle.masks.bilinear_weights": Entry(_const(in_size=5, out_size=3)),
    "oracle.masks.resize_bilinear": Entry(lambda s: {"x": _rand(_gen(s), 2, 4, 5), "size": (3, 7)}),
    "oracle.masks.crop_mask": Entry(lambda s: {"masks": _rand(_gen(s), 2, 6, 6), "boxes": _xyxy(_gen(s + 1), 2, 6.0)}),
    # parameters, position, transformer
    "oracle.params.encoder_layer_weights": Entry(_const(embed_dim=4, ffn_dim=6, seed=1)),
    "oracle.params.decoder_layer_weights": Entry(_const(embed_dim=4, ffn_dim=6, seed=1)),
    "oracle.params.encoder_weights": Entry(_const(embed_dim=4, ffn_dim=6, num_layers=2, seed=1)),
    "oracle.params.decoder_weights": Entry(_const(embed_dim=4, ffn_dim=6, num_layers=2, seed=1)),
    "oracle.params.detr_head_weights": Entry(_const(embed_dim=4, num_logits=3, seed=1)),
    "oracle.position.sine_position_encoding": Entry(lambda s: {
        "mask": torch.tensor([[[False, False, True], [False, False, True]]]),
        "convention": SinePEConvention(num_feats=4)}),
    "oracle.transformer.multi_head_attention": Entry(_attention),
    "oracle.transformer.encoder_layer": Entry(_encoder_layer),
    "oracle.transformer.decoder_layer": Entry(_decoder_layer),
    "oracle.transformer.encoder": Entry(_encoder),
    "oracle.transformer.decoder": Entry(_decoder),
}

#: Public functions without a fuzz builder, each with the reason (the unchecked ``*_formula`` cores are added below).
EXEMPT: dict[str, str] = {}

_FORMULA_REASON = ("an unchecked *_formula core: it takes tensors its checked public caller (fuzzed here) has "
                   "validated, in their dtype, in a form torch.onnx.export traces")

#: Packages whose public classes are constructed from user input (the convention dataclasses): fuzzed as functions.
_CLASS_PACKAGES = ("oracle.conventions",)


def public_functions() -> list[str]:
    """Qualified names of the functions defined (not imported) in the modules of oracle/ whose names do not start
    with ``_`` (private modules excluded), and of the classes defined in :data:`_CLASS_PACKAGES`."""
    names = []
    for info in pkgutil.walk_packages(oracle.__path__, "oracle."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj) or (inspect.isclass(obj) and module.__name__.startswith(_CLASS_PACKAGES)):
                names.append(f"{module.__name__}.{name}")
    return sorted(names)


EXEMPT.update({name: _FORMULA_REASON for name in public_functions() if name.endswith("_formula")})
EXEMPT.update({
    "oracle.assign.hungarian.poison_value": "a helper of the non-finite matcher policy on a validated float64 "
                                            "cost matrix (the matcher's inputs, fuzzed through hungarian_match)",
    "oracle.assign.hungarian.poisoned_entries": "reads a cost matrix the reference built (as_float64 and check_rank "
                                                "guard it); fuzzed through hungarian_match and the comparison tests",
})


def _resolve(qualname: str):
    module, _, name = qualname.rpartition(".")
    return getattr(importlib.import_module(module), name)


# --------------------------------------------------------------------------- mutations

_HUGE = (1e155, 1e200, 1e300)


def _set_first(t: torch.Tensor, value: float) -> torch.Tensor:
    out = t.detach().clone()
    out.view(-1)[0] = value
    return out


def _scaled(t: torch.Tensor, size: float) -> torch.Tensor:
    """``t`` scaled so that its largest magnitude is ``size`` (and ones where it is all zero)."""
    d = t.detach().double()
    top = float(d.abs().max())
    return d * (size / top) if top > 0 else torch.full_like(d, size)


def _tensor_mutations(t: torch.Tensor) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    n = t.numel()
    if t.is_floating_point():
        if n:
            out += [("nan", _set_first(t, math.nan)), ("+inf", _set_first(t, math.inf)),
                    ("-inf", _set_first(t, -math.inf))]
            out += [(f"huge {h:.0e}", _scaled(t, h)) for h in _HUGE]
            out += [("negative", -t.detach().abs() - 1.0)]
        out += [("bool dtype", t.detach() > 0.5), ("complex dtype", t.detach().to(torch.complex128))]
    elif t.dtype == torch.bool:
        out += [("float dtype", t.double()), ("complex dtype", t.to(torch.complex128))]
    else:
        if n:
            out += [("label +1000", t + 1000), ("label -7", torch.full_like(t, -7))]
        out += [("float dtype", t.double() + 0.5), ("bool dtype", t > 0)]
    if t.dim() >= 1:
        out += [("empty leading dim", t[:0]), ("wrong rank", t[None])]
        if t.shape[-1] > 0:
            out += [("mismatched last dim", t[..., :-1])]
        if t.shape[-1] == 4 and t.shape[0] > 0 and t.is_floating_point():
            out += [("inverted boxes", t.detach()[..., [2, 3, 0, 1]])]
    else:
        out += [("wrong rank", t[None])]
    out += [("str", "x")]
    return out


def _leaf_mutations(value: object) -> list[tuple[str, object]]:
    if isinstance(value, torch.Tensor):
        return _tensor_mutations(value)
    if isinstance(value, bool):
        return [("str", "x")]
    if isinstance(value, str):
        return [("unknown name", "no-such-name"), ("int", 3)]
    if isinstance(value, type):
        return [("another class", dict), ("str", "x")]
    if isinstance(value, int):
        return [("-1", -1), ("0", 0), ("1.5", 1.5), ("str", "x")]
    if isinstance(value, float):
        return [("nan", math.nan), ("+inf", math.inf), ("-inf", -math.inf), ("-1.0", -1.0), ("huge 1e+300", 1e300),
                ("str", "x")]
    if isinstance(value, (list, tuple)):
        out: list[tuple[str, object]] = [("empty sequence", type(value)())]
        if len(value) > 1:
            out.append(("one element fewer", type(value)(value[:-1])))
        return out
    if isinstance(value, Mapping) and value:
        first = next(iter(value))
        return [(f"without {first!r}", {k: v for k, v in value.items() if k != first}), ("a list", [value])]
    return []


def _children(value: object) -> list[tuple[object, object]]:
    """(key, child) pairs a mutation may descend into."""
    if isinstance(value, Mapping):
        return list(value.items())
    if isinstance(value, (list, tuple)):
        return list(enumerate(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and any(
            isinstance(getattr(value, f.name), torch.Tensor) for f in dataclasses.fields(value)):
        return [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    return []


def _replace(value: object, key: object, child: object) -> object:
    if isinstance(value, Mapping):
        return {**value, key: child}
    if isinstance(value, (list, tuple)):
        seq = list(value)
        seq[key] = child
        return type(value)(seq)
    return dataclasses.replace(value, **{key: child})


def _mutations_of(value: object, path: str) -> list[tuple[str, Callable[[], object]]]:
    """(description, thunk building the mutated value) for ``value`` and everything nested in it."""
    out = [(f"{path}: {what}", (lambda m=m: m)) for what, m in _leaf_mutations(value)]
    for key, child in _children(value):
        for what, thunk in _mutations_of(child, f"{path}[{key!r}]"):
            out.append((what, lambda key=key, thunk=thunk: _replace(value, key, thunk())))
    return out


def mutations(kwargs: dict) -> list[tuple[str, Callable[[], dict]]]:
    """Every one-leaf mutation of a call's keyword arguments."""
    out = []
    for name, value in kwargs.items():
        for what, thunk in _mutations_of(value, name):
            out.append((what, lambda name=name, thunk=thunk: {**kwargs, name: thunk()}))
    return out


# --------------------------------------------------------------------------- the property

_LEAD = re.compile(r"^(?:(?:image|level|layer|group) [\w']+: )*([A-Za-z_]\w*)")


def parameter_names(qualname: str) -> set[str]:
    """The names an error may lead with: the parameters, and a class's own name (``"IoUConvention.eps: ..."``)."""
    fn = _resolve(qualname)
    names = set(inspect.signature(fn).parameters) - {"self"}
    return names | ({fn.__name__} if inspect.isclass(fn) else set())


def _non_finite(result: object, where: str = "result") -> str | None:
    if isinstance(result, torch.Tensor):
        if (result.is_floating_point() or result.is_complex()) and not bool(torch.isfinite(result.detach()).all()):
            return f"{where}: non-finite values in {tuple(result.shape)} {result.dtype}"
        return None
    if isinstance(result, float):
        return None if math.isfinite(result) else f"{where}: {result}"
    if isinstance(result, Mapping):
        items = list(result.items())
    elif isinstance(result, (list, tuple)):
        items = list(enumerate(result))
    elif dataclasses.is_dataclass(result) and not isinstance(result, type):
        items = [(f.name, getattr(result, f.name)) for f in dataclasses.fields(result)]
    else:
        return None
    for key, value in items:
        bad = _non_finite(value, f"{where}[{key!r}]")
        if bad:
            return bad
    return None


CLEAR, WRONG_NAME, CRASH, NON_FINITE = "clear error", "error naming a non-argument", "unhelpful crash", "non-finite"


def classify(qualname: str, kwargs: dict) -> tuple[str | None, str]:
    """(None if fine, else the kind of defect; a description)."""
    fn = _resolve(qualname)
    try:
        result = fn(**kwargs)
    except OracleInputError as err:
        lead = _LEAD.match(str(err))
        if lead and lead.group(1) in parameter_names(qualname):
            return None, CLEAR
        return WRONG_NAME, f"OracleInputError naming no parameter of {qualname}: {err}"
    except Exception:  # noqa: BLE001 - any other exception is the defect being reported
        return CRASH, traceback.format_exc(limit=-4)
    bad = _non_finite(result)
    return (NON_FINITE, bad) if bad else (None, "finite")


# --------------------------------------------------------------------------- tests


def test_every_public_function_is_registered_or_exempt():
    public = public_functions()
    missing = [n for n in public if n not in REGISTRY and n not in EXEMPT]
    assert not missing, f"public functions without a fuzz builder in REGISTRY (or a reason in EXEMPT): {missing}"
    stale = [n for n in list(REGISTRY) + list(EXEMPT) if n not in public or not _exists(n)]
    assert not stale, f"REGISTRY/EXEMPT name what is not a public function of oracle/: {stale}"
    assert not set(REGISTRY) & set(EXEMPT)
    assert all(isinstance(r, str) and r.strip() for r in EXEMPT.values())


def _exists(qualname: str) -> bool:
    try:
        _resolve(qualname)
    except (ImportError, AttributeError):
        return False
    return True


@pytest.mark.parametrize("qualname", sorted(REGISTRY))
def test_valid_call_is_finite(qualname):
    kind, what = classify(qualname, REGISTRY[qualname].build(0))
    assert kind is None, f"{qualname} on its valid builder's input: {what}"


@pytest.mark.parametrize("qualname", sorted(REGISTRY))
@settings(derandomize=True, database=None, deadline=None, max_examples=30,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2 ** 16), data=st.data())
def test_mutated_input_is_refused_by_name_or_finite(qualname, seed, data):
    kwargs = REGISTRY[qualname].build(seed)
    muts = mutations(kwargs)
    what, thunk = data.draw(st.sampled_from(muts), label="mutation")
    try:
        mutated = thunk()
    except OracleInputError:
        return  # the mutation itself is refused (a dataclass argument validates on construction)
    kind, detail = classify(qualname, mutated)
    assert kind is None, f"{qualname} with {what}: {kind}\n{detail}"


# --------------------------------------------------------------------------- the counting run


def count_all(names: list[str] | None = None, *, show: int = 0) -> dict[str, int]:
    """Run every (function, mutation) pair once (seed 0) and count the outcomes."""
    counts = {CLEAR: 0, "finite": 0, WRONG_NAME: 0, CRASH: 0, NON_FINITE: 0, "mutation refused": 0}
    shown = 0
    for qualname in names or sorted(REGISTRY):
        kwargs = REGISTRY[qualname].build(0)
        for what, thunk in mutations(kwargs):
            try:
                mutated = thunk()
            except OracleInputError:
                counts["mutation refused"] += 1
                continue
            kind, detail = classify(qualname, mutated)
            counts[kind or detail] += 1
            if kind and shown < show:
                shown += 1
                print(f"--- {qualname} with {what}: {kind}\n{detail.strip()[-600:]}")
    return counts


if __name__ == "__main__":
    _show = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    _counts = count_all(sys.argv[2:] or None, show=_show)
    print(f"{sum(_counts.values())} calls over {len(sys.argv[2:]) or len(REGISTRY)} functions: "
          + ", ".join(f"{v} {k}" for k, v in _counts.items()))
