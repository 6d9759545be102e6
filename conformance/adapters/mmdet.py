"""mmdet 3.3.0 (with mmcv 2.1.0 and mmengine 0.10.7) through its own classes, built from config dicts.

Every module is built as a user's config builds it: ``mmdet.utils.register_all_modules()`` once, then
``MODELS.build(dict(type=...))`` (heads, losses, positional encodings, transformer stacks) or
``TASK_UTILS.build(dict(type=...))`` (anchor generators, coders, assigners, match costs). The adapter
converts the canonical inputs into mmdet's structures and its outputs back; it computes nothing itself.

Conversions (canonical -> mmdet):

- Boxes stay xyxy pixels (mmdet's own format everywhere below) unless stated.
- Ground truth of one image -> ``mmengine.structures.InstanceData(bboxes=[K, 4] xyxy pixels, labels=[K])``;
  ignore boxes -> ``InstanceData(bboxes=...)``; priors -> ``InstanceData(priors=...)``.
- Image metas -> dicts ``{"img_shape": (H, W), "pad_shape": (H, W)}`` as mmdet's data samples carry them.

Component mapping:

- ``anchors.grid``: ``AnchorGenerator(strides, ratios, scales | octave_base_scale + scales_per_octave,
  base_sizes, scale_major, centers, center_offset)``; ``grid_priors(featmap_sizes, dtype=run dtype)`` and
  ``valid_flags(featmap_sizes, pad_shape)``. mmdet builds its base anchors in float32 whatever the dtype.
- ``coders.delta_xywh_encode`` / ``decode``: ``DeltaXYWHBBoxCoder(target_means, target_stds, clip_border,
  add_ctr_clamp, ctr_clamp)``, ``encode(anchors, gt)`` (which computes in float32: ``bbox2delta`` calls
  ``.float()``) and ``decode(anchors, deltas, max_shape, wh_ratio_clip)``. mmdet clamps the size deltas on
  both sides, or from above only together with its centre clamp: ``wh_clamp="upper"`` without
  ``add_ctr_clamp`` (torchvision's BoxCoder) is not provided.
- ``assign.max_iou`` for the mmdet presets (``MAX_IOU_RETINANET_MMDET``, ``MAX_IOU_RPN_MMDET``, with
  overrides): ``MaxIoUAssigner(pos_iou_thr, neg_iou_thr, min_pos_iou, gt_max_assign_all, ignore_iof_thr,
  ignore_wrt_candidates, match_low_quality)`` on ``BboxOverlaps2D``; ``assign(InstanceData(priors),
  InstanceData(bboxes, labels), InstanceData(bboxes=ignore))``; its ``gt_inds`` / ``max_overlaps`` /
  ``labels`` are the canonical outputs as they are. torchvision's Matcher variant is not provided.
- ``assign.task_aligned`` for ``TAL_MMDET`` (with the case's ``convention_overrides`` of topk, alpha and beta):
  ``TaskAlignedAssigner(topk)`` per image, ``assign(InstanceData(priors, bboxes, scores), InstanceData(bboxes,
  labels), alpha, beta)``. Priors are the
  anchor points as zero-size boxes ``(x, y, x, y)`` (mmdet reads only their centres); only the real GT
  rows (``mask_gt``) are passed. Back: ``fg_mask = gt_inds > 0``; ``target_gt_idx`` = the padded row of
  the assigned GT (0 on background); ``target_labels`` / ``target_bboxes`` gathered from that row (so the
  background carries row 0's, the canonical convention; ``num_classes`` and zeros without rows);
  ``target_scores = one_hot(label) * assign_metrics`` on the foreground.
- ``criteria.anchor_head``: ``RetinaHead`` (preset ``RETINANET_HEAD_MMDET``) or ``AnchorHead``
  (``ANCHOR_HEAD_MMDET``) built with the preset's anchor generator, coder, losses and ``train_cfg``
  (``MaxIoUAssigner``, PseudoSampler, ``allowed_border``, ``pos_weight``); ``loss_by_feat(cls_scores,
  bbox_preds, gt InstanceData, metas, ignore InstanceData)``. ``labels``, ``label_weights`` and
  ``avg_factor`` come from ``get_targets`` (per level, concatenated per image).
- ``boxes.overlap`` (profile ``mmdet``): ``structures.bbox.bbox_overlaps(mode="iou"|"iof"|"giou",
  is_aligned, eps=1e-6)`` under ``IOU_MMDET``, on xyxy (cxcywh converted with mmdet's
  ``bbox_cxcywh_to_xyxy``); aligned CIoU under ``IOU_MMDET_CIOU_LOSS`` as ``1 - CIoULoss(eps=1e-7,
  reduction="none")``. mmdet has no pairwise DIoU/CIoU: not provided.
- Losses, each the registered class with ``loss_weight=1`` and ``reduction`` (``reduction_override`` is
  not needed), called with ``weight`` and ``avg_factor`` where the case has them. mmdet's
  ``weight_reduce_loss`` always divides by ``avg_factor + FLT_EPS``: a case with an ``avg_factor`` and
  another ``avg_factor_eps`` is not expressible (not provided).

  - ``losses.softmax_cross_entropy``: ``CrossEntropyLoss(use_sigmoid=False, class_weight=list,
    ignore_index)``, logits ``[N, C]``.
  - ``losses.sigmoid_binary_cross_entropy``: ``CrossEntropyLoss(use_sigmoid=True, class_weight=pos_weight
    as a list)`` (mmdet passes its ``class_weight`` as ``pos_weight``), targets of the logits' shape.
  - ``losses.sigmoid_focal_loss``: ``FocalLoss(gamma, alpha)``. On CPU the canonical (one-hot or soft)
    targets go in as they are and mmdet runs its Python formula ``py_sigmoid_focal_loss``. On CUDA,
    hard one-hot targets are passed as integer labels (background = ``C``), as mmdet's heads pass them,
    so that mmdet dispatches to the compiled ``mmcv.ops.sigmoid_focal_loss`` (which has no CPU kernel);
    soft targets there take the Python formula, as in mmdet. ``alpha=None`` is not expressible.
  - ``losses.l1_loss`` (``L1Loss``), ``losses.smooth_l1_loss`` (``SmoothL1Loss(beta)``, beta > 0),
    ``losses.giou_loss`` (``GIoULoss(eps=1e-6)`` under ``IOU_MMDET``), ``losses.ciou_loss``
    (``CIoULoss(eps=1e-7)`` under ``IOU_MMDET_CIOU_LOSS``), boxes xyxy.

- ``assign.hungarian`` (profiles whose matcher mmdet's costs express: ``mmdet``): ``HungarianAssigner`` with
  ``ClassificationCost`` (or ``FocalLossCost(alpha, gamma, eps)``), ``BBoxL1Cost(box_format="xywh")`` and
  ``IoUCost(iou_mode="giou")`` at the profile's weights and focal parameters, with the config's ``matcher`` fields
  replaced (each is a match cost's argument). Per image: ``pred_instances = InstanceData(scores=
  logits, bboxes=pixel xyxy)``, ``gt_instances`` in pixel xyxy, ``img_meta = {"img_shape": image_size}``
  (normalised cxcywh -> pixel xyxy with mmdet's ``bbox_cxcywh_to_xyxy`` times ``[w, h, w, h]``, as mmdet's
  heads hold them). ``indices`` from ``gt_inds``; ``cost`` = the assigner's ``match_costs`` summed, exactly
  as ``HungarianAssigner.assign`` sums them (it does not return the matrix).
- ``criteria.mmdet_detr_head``: ``DETRHead`` / ``DeformableDETRHead`` / ``DINOHead`` as configs/{detr,
  deformable_detr,dino} build them (losses, loss weights, match costs, ``sync_cls_avg_factor``), small
  ``embed_dims``, the config's ``criterion`` fields as ``loss_cls`` ``loss_weight`` / ``bg_cls_weight`` / ``alpha`` /
  ``gamma``, ``loss_bbox`` and ``loss_iou`` ``loss_weight``, its ``matcher`` fields as the match costs';
  ``loss_by_feat`` with the targets as above. DINO: the denoising outputs are concatenated
  before the matching queries along the query axis and ``dn_meta`` becomes ``{num_denoising_queries:
  pad_size, num_denoising_groups: num_dn_group}``, which DINOHead.split_outputs undoes; the denoising
  queries themselves are given (nothing is sampled). Keys' dots are written ``/``; ``total`` is mmengine's
  ``BaseModel.parse_losses`` of the dict.
- ``position.sine`` (profiles with one temperature: ``detr``, ``deformable_detr``, ``dino``, ``mmdet``,
  ``hf_*``): ``SinePositionalEncoding(num_feats, temperature, normalize, scale, eps, offset)`` from the
  profile's convention, ``forward(mask)``, or ``forward(None, input=[B, 1, H, W])`` without a mask. It
  computes in float32.
- ``masks.padding`` / ``masks.resize``: the DETR mask path, ``DETR.pre_transformer`` of a DETR built from a
  small config: images of ``img_shape`` in a batch of ``batch_input_shape``, a feature map of the target
  size; ``feat_mask`` (``None`` when no image is padded: all False) back to ``[B, h, w]``. ``masks.resize``
  reads each mask's top-left valid rectangle as the image's ``img_shape`` (other masks: not provided).
- ``transformer.encoder`` / ``transformer.decoder``: ``DetrTransformerEncoder`` / ``DetrTransformerDecoder``
  (as ``DETR._init_layers`` builds them; dropout 0, ReLU, ``batch_first``) with the case's weights loaded
  through :func:`_mmdet_state_dict` (``self_attn`` / ``multihead_attn`` -> ``self_attn.attn`` /
  ``cross_attn.attn``, the packed ``nn.MultiheadAttention`` inside mmcv's; ``linear1`` / ``linear2`` ->
  ``ffn.layers.0.0`` / ``ffn.layers.1``; ``norm{k}`` -> ``norms.{k-1}``; the decoder's ``norm`` ->
  ``post_norm``); masks as ``key_padding_mask`` (True = padding), ``pos`` as ``query_pos`` (encoder) /
  ``key_pos`` (decoder).
- ``heads.detr``: ``DETRHead.forward`` with ``cls`` -> ``fc_cls``, ``reg.{i}`` -> ``reg_ffn`` (an mmcv FFN:
  ``num_reg_fcs >= 2``) and ``reg.out`` -> ``fc_reg``.

Not provided: ``criteria.cdn`` (mmdet's ``CdnQueryGenerator`` draws its noise from torch's global RNG and
returns embedded label queries, not labels), ``criteria.set_criterion`` (mmdet has no DETR SetCriterion),
box conversions and areas as components, the ultralytics components, DIoU, Dice and DFL losses.

Dtype: mmdet allocates in its inputs' dtype; the float32 casts inside it (anchors, ``bbox2delta``, the
positional encoding, loss weights) are its own. Known differences: known_differences/mmdet.toml.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch

from components.canonical import canonical_keys, dotted_keys
from oracle.conventions import FLT_EPS  # added to every avg_factor by mmdet

from .base import YES, Adapter, MissingAdapter, NotProvided, Support, known_differences_file

INSTALL = "bash .ci/install-mmdet (mmcv 2.1.0 built with its ops, mmengine 0.10.7, mmdet 3.3.0: see docs/install.md)"

DENSE = ("anchors.grid", "coders.delta_xywh_encode", "coders.delta_xywh_decode", "assign.max_iou",
         "assign.task_aligned", "criteria.anchor_head")
LOSSES = ("losses.softmax_cross_entropy", "losses.sigmoid_binary_cross_entropy", "losses.sigmoid_focal_loss",
          "losses.l1_loss", "losses.smooth_l1_loss", "losses.giou_loss", "losses.ciou_loss")
#: Config keys each loss class can take (besides tensors); others are not expressible.
_LOSS_KEYS = {
    "losses.softmax_cross_entropy": {"reduction", "avg_factor", "avg_factor_eps", "ignore_index"},
    "losses.sigmoid_binary_cross_entropy": {"reduction", "avg_factor", "avg_factor_eps"},
    "losses.sigmoid_focal_loss": {"reduction", "avg_factor", "avg_factor_eps", "alpha", "gamma"},
    "losses.l1_loss": {"reduction", "avg_factor", "avg_factor_eps"},
    "losses.smooth_l1_loss": {"reduction", "avg_factor", "avg_factor_eps", "beta"},
    "losses.giou_loss": {"reduction", "avg_factor", "avg_factor_eps", "convention"},
    "losses.ciou_loss": {"reduction", "avg_factor", "avg_factor_eps", "convention"},
}


def _instances(**fields):
    from mmengine.structures import InstanceData
    return InstanceData(**fields)


def _iou_convention(profile: str, which: str):
    from components.contract import profile_convention
    return profile_convention(profile, which)


class MMDetAdapter(Adapter):
    def __init__(self, version: str):
        from mmdet.registry import MODELS, TASK_UTILS
        from mmdet.utils import register_all_modules
        register_all_modules(init_default_scope=False)
        self.MODELS, self.TASK_UTILS = MODELS, TASK_UTILS
        super().__init__(name="mmdet", version=version, components=self._components(), profiles=None,
                         install=INSTALL, known_differences=known_differences_file("mmdet"))

    # ----------------------------------------------------------------- what mmdet can express

    def supports(self, component: str, device, dtype, profile: str, config: Mapping[str, Any] | None = None) -> Support:
        base = super().supports(component, device, dtype, profile, config)
        if not base:
            return base
        from oracle import conventions as conv
        if component == "boxes.overlap" and profile != "mmdet":
            return Support(False, f"mmdet's bbox_overlaps follows profile 'mmdet', not {profile!r}")
        if component in ("losses.giou_loss", "losses.ciou_loss") and profile != "mmdet":
            return Support(False, f"mmdet's IoU losses follow profile 'mmdet', not {profile!r}")
        if component == "assign.hungarian":
            m = conv.get_profile(profile).matcher
            if m.giou != conv.IOU_MMDET or m.giou_cost_offset != 0:
                return Support(False, f"mmdet's IoUCost is -GIoU under IOU_MMDET (clamp 1e-6 in pixels); profile "
                                      f"{profile!r} matches otherwise")
        if component == "criteria.mmdet_detr_head" and profile != "mmdet":
            return Support(False, f"mmdet's DETR heads follow profile 'mmdet', not {profile!r}")
        if component == "position.sine":
            t = conv.get_profile(profile).position.temperature
            if isinstance(t, tuple) and t[0] != t[1]:
                return Support(False, "mmdet's SinePositionalEncoding has one temperature for x and y")
        if config is None:
            return base
        c = dict(config)
        if component.startswith("coders.delta_xywh"):
            if c.get("wh_clamp", "both") == "upper" and not c.get("add_ctr_clamp", False):
                return Support(False, "mmdet's DeltaXYWHBBoxCoder clamps size deltas on both sides (from above only "
                                      "with add_ctr_clamp): wh_clamp='upper' alone is torchvision's BoxCoder")
        if component == "assign.max_iou":
            return self._max_iou_support(c)
        if component == "assign.task_aligned":
            from components.dense_calls import task_aligned_convention
            tal = task_aligned_convention(c)
            if dataclasses.replace(tal, topk=conv.TAL_MMDET.topk, alpha=conv.TAL_MMDET.alpha,
                                   beta=conv.TAL_MMDET.beta) != conv.TAL_MMDET:
                return Support(False, f"mmdet's TaskAlignedAssigner is the TAL_MMDET convention (any topk, alpha, "
                                      f"beta), not {c['convention']}")
        if component == "criteria.anchor_head":
            return self._anchor_head_support(c)
        if component == "boxes.overlap":
            return self._overlap_support(c, profile)
        if component in _LOSS_KEYS:
            return self._loss_support(component, c, profile)
        return base

    @staticmethod
    def _max_iou_support(c: Mapping[str, Any]) -> Support:
        from components.dense_calls import max_iou_convention
        m = max_iou_convention(c)
        from oracle.conventions import IOU_MMDET
        if m.low_quality_gt != "overwrite" or m.iou != IOU_MMDET:
            return Support(False, f"{c['convention']} is torchvision's Matcher rule, not mmdet's MaxIoUAssigner "
                                  "(low-quality matches overwrite in GT order, BboxOverlaps2D)")
        return YES

    @staticmethod
    def _anchor_head_support(c: Mapping[str, Any]) -> Support:
        from components.dense_calls import anchor_head_config
        head = anchor_head_config(c)
        if head.sampler != "pseudo":
            return Support(False, "RandomSampler draws from torch's global RNG; the adapter runs PseudoSampler heads")
        if head.avg_factor_eps != FLT_EPS:
            return Support(False, "mmdet's losses divide by avg_factor + FLT_EPS")
        return YES

    @staticmethod
    def _overlap_support(c: Mapping[str, Any], profile: str) -> Support:
        from oracle.conventions import IOU_MMDET, IOU_MMDET_CIOU_LOSS
        if c["fmt"] not in ("xyxy", "cxcywh"):
            return Support(False, f"mmdet converts xyxy and cxcywh boxes, not {c['fmt']}")
        convention = _iou_convention(profile, c["convention"])
        if c["op"] in ("iou", "iof", "giou"):
            if convention != IOU_MMDET:
                return Support(False, "mmdet's bbox_overlaps is the IOU_MMDET convention (clamp 1e-6)")
            return YES
        if c["op"] == "ciou" and c["aligned"] and convention == IOU_MMDET_CIOU_LOSS:
            return YES
        return Support(False, f"mmdet has no {'aligned' if c['aligned'] else 'pairwise'} {c['op']} under "
                              f"{c['convention']} (only aligned CIoU, through ciou_loss)")

    @staticmethod
    def _loss_support(component: str, c: Mapping[str, Any], profile: str) -> Support:
        from oracle.conventions import IOU_MMDET, IOU_MMDET_CIOU_LOSS
        extra = set(c) - _LOSS_KEYS[component]
        if extra:
            return Support(False, f"mmdet's loss class has no {', '.join(sorted(extra))}")
        if "avg_factor" in c and c.get("avg_factor_eps", 0.0) != FLT_EPS:
            return Support(False, "mmdet's weight_reduce_loss divides by avg_factor + FLT_EPS "
                                  f"(avg_factor_eps={FLT_EPS!r}); this case asks for avg_factor_eps="
                                  f"{c.get('avg_factor_eps', 0.0)!r}")
        if c.get("reduction") == "sum" and "avg_factor" in c:
            return Support(False, "mmdet raises on avg_factor with reduction='sum'")
        if component == "losses.sigmoid_focal_loss" and c.get("alpha", 0.25) is None:
            return Support(False, "mmdet's FocalLoss always weights by alpha (no alpha=None)")
        if component == "losses.smooth_l1_loss" and not c.get("beta", 1.0) > 0:
            return Support(False, "mmdet's SmoothL1Loss asserts beta > 0")
        if component == "losses.giou_loss" and _iou_convention(profile, c.get("convention", "iou_loss")) != IOU_MMDET:
            return Support(False, "mmdet's GIoULoss is the IOU_MMDET convention (clamp 1e-6)")
        if component == "losses.ciou_loss" and \
                _iou_convention(profile, c.get("convention", "iou_loss")) != IOU_MMDET_CIOU_LOSS:
            return Support(False, "mmdet's CIoULoss is the IOU_MMDET_CIOU_LOSS convention")
        return YES

    # ----------------------------------------------------------------- components

    def _components(self) -> dict:
        calls = {"anchors.grid": self.anchor_grid, "coders.delta_xywh_encode": self.delta_encode,
                 "coders.delta_xywh_decode": self.delta_decode, "assign.max_iou": self.max_iou,
                 "assign.task_aligned": self.task_aligned, "criteria.anchor_head": self.anchor_head,
                 "boxes.overlap": self.overlap, "assign.hungarian": self.hungarian,
                 "criteria.mmdet_detr_head": self.detr_head_loss, "position.sine": self.position,
                 "masks.padding": self.padding_mask, "masks.resize": self.resized_mask,
                 "transformer.encoder": self.encoder, "transformer.decoder": self.decoder, "heads.detr": self.head}
        calls.update({name: self._loss(name) for name in LOSSES})
        return calls

    # anchors and coders

    def anchor_grid(self, inputs, config, profile):
        keys = ("strides", "ratios", "scales", "base_sizes", "scale_major", "octave_base_scale", "scales_per_octave",
                "centers", "center_offset")
        gen = self.TASK_UTILS.build(dict(type="AnchorGenerator", **{k: config[k] for k in keys if k in config}))
        sizes = [tuple(s) for s in config["featmap_sizes"]]
        dtype = _run_dtype(inputs)
        return {"anchors": gen.grid_priors(sizes, dtype=dtype, device="cpu"),
                "valid_flags": gen.valid_flags(sizes, tuple(config["pad_shape"]), device="cpu")}

    def _coder(self, config):
        keys = {"means": "target_means", "stds": "target_stds", "clip_border": "clip_border",
                "add_ctr_clamp": "add_ctr_clamp", "ctr_clamp": "ctr_clamp"}
        return self.TASK_UTILS.build(dict(type="DeltaXYWHBBoxCoder",
                                          **{v: config[k] for k, v in keys.items() if k in config}))

    def delta_encode(self, inputs, config, profile):
        return {"deltas": self._coder(config).encode(inputs["anchors"], inputs["gt"])}

    def delta_decode(self, inputs, config, profile):
        shape = config.get("max_shape")
        return {"boxes": self._coder(config).decode(inputs["anchors"], inputs["deltas"],
                                                    max_shape=tuple(shape) if shape is not None else None,
                                                    wh_ratio_clip=config.get("wh_ratio_clip", 16 / 1000))}

    # assigners

    def _max_iou_assigner(self, m):
        return self.TASK_UTILS.build(dict(
            type="MaxIoUAssigner", pos_iou_thr=m.pos_iou_thr, neg_iou_thr=m.neg_iou_thr, min_pos_iou=m.min_pos_iou,
            gt_max_assign_all=m.gt_max_assign_all, ignore_iof_thr=m.ignore_iof_thr,
            ignore_wrt_candidates=m.ignore_wrt_candidates, match_low_quality=m.match_low_quality))

    def max_iou(self, inputs, config, profile):
        from components.dense_calls import max_iou_convention
        assigner = self._max_iou_assigner(max_iou_convention(config))
        ignore = inputs.get("gt_boxes_ignore")
        result = assigner.assign(_instances(priors=inputs["priors"]),
                                 _instances(bboxes=inputs["gt_boxes"], labels=inputs["gt_labels"]),
                                 None if ignore is None else _instances(bboxes=ignore))
        return {"gt_inds": result.gt_inds, "max_overlaps": result.max_overlaps, "labels": result.labels}

    def task_aligned(self, inputs, config, profile):
        from components.dense_calls import task_aligned_convention
        tal = task_aligned_convention(config)
        assigner = self.TASK_UTILS.build(dict(type="TaskAlignedAssigner", topk=tal.topk))
        scores, pred, points = inputs["pd_scores"], inputs["pd_bboxes"], inputs["anchor_points"]
        labels, gt, valid = inputs["gt_labels"], inputs["gt_bboxes"], inputs["mask_gt"]
        b, a, c = scores.shape
        n = gt.shape[1]
        priors = torch.cat((points, points), dim=-1)  # zero-size boxes centred on the points
        out = {k: [] for k in ("target_labels", "target_bboxes", "target_scores", "fg_mask", "target_gt_idx")}
        for i in range(b):
            rows = torch.nonzero(valid[i]).flatten()
            result = assigner.assign(_instances(priors=priors, bboxes=pred[i], scores=scores[i]),
                                     _instances(bboxes=gt[i, rows], labels=labels[i, rows]),
                                     alpha=tal.alpha, beta=tal.beta)
            fg = result.gt_inds > 0
            idx = torch.where(fg, rows[(result.gt_inds - 1).clamp(min=0)] if len(rows) else 0, 0)
            if n == 0:
                target_labels = torch.full((a,), c, dtype=torch.int64)
                target_bboxes = pred.new_zeros((a, 4))
            else:
                target_labels, target_bboxes = labels[i, idx], gt[i, idx]
            one_hot = torch.nn.functional.one_hot(target_labels.clamp(max=c - 1), c).to(scores.dtype) * fg[:, None]
            out["target_labels"].append(target_labels)
            out["target_bboxes"].append(target_bboxes)
            out["target_scores"].append(one_hot * result.assign_metrics[:, None])
            out["fg_mask"].append(fg)
            out["target_gt_idx"].append(idx)
        return {k: torch.stack(v) for k, v in out.items()}

    # the anchor head

    def anchor_head_module(self, head, num_classes: int):
        """The mmdet head of a reference :class:`~oracle.conventions.AnchorHeadConfig`: RetinaHead as in
        configs/_base_/models/retinanet_r50_fpn.py (focal + L1), else AnchorHead, with 8 input channels (the loss
        reads none of the convolutions). tests/oracle/test_anchor_head.py and tests/crosscheck/test_golden_upstream.py
        use it too."""
        gen = head.anchor_generator
        anchor_generator = dict(type="AnchorGenerator", strides=list(gen.strides), ratios=list(gen.ratios))
        if gen.scales is not None:
            anchor_generator["scales"] = list(gen.scales)
        else:
            anchor_generator.update(octave_base_scale=gen.octave_base_scale, scales_per_octave=gen.scales_per_octave)
        loss_cls = {"sigmoid_focal": dict(type="FocalLoss", use_sigmoid=True, gamma=head.focal_gamma,
                                          alpha=head.focal_alpha),
                    "sigmoid_ce": dict(type="CrossEntropyLoss", use_sigmoid=True),
                    "softmax_ce": dict(type="CrossEntropyLoss", use_sigmoid=False)}[head.classification]
        loss_bbox = {"l1": dict(type="L1Loss"), "smooth_l1": dict(type="SmoothL1Loss", beta=head.smooth_l1_beta),
                     "giou": dict(type="GIoULoss", eps=1e-6)}[head.regression]
        a = head.assigner
        assigner = dict(type="MaxIoUAssigner", pos_iou_thr=a.pos_iou_thr, neg_iou_thr=a.neg_iou_thr,
                        min_pos_iou=a.min_pos_iou, ignore_iof_thr=a.ignore_iof_thr,
                        gt_max_assign_all=a.gt_max_assign_all, match_low_quality=a.match_low_quality,
                        ignore_wrt_candidates=a.ignore_wrt_candidates)
        coder = head.coder
        cfg = dict(num_classes=num_classes, in_channels=8, feat_channels=8, anchor_generator=anchor_generator,
                   bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=list(coder.means),
                                   target_stds=list(coder.stds)),
                   reg_decoded_bbox=head.reg_decoded_bbox, loss_cls=dict(loss_cls, loss_weight=head.loss_weight_cls),
                   loss_bbox=dict(loss_bbox, loss_weight=head.loss_weight_bbox),
                   train_cfg=dict(assigner=assigner, allowed_border=head.allowed_border, pos_weight=head.pos_weight,
                                  debug=False))
        if head.classification == "sigmoid_focal" and head.regression == "l1":
            cfg.update(type="RetinaHead", stacked_convs=1)  # the RetinaNet config's head (loss_by_feat: AnchorHead's)
        else:
            cfg.update(type="AnchorHead")
        return self.MODELS.build(cfg)

    def anchor_head(self, inputs, config, profile):
        from components.dense_calls import anchor_head_config
        head = self.anchor_head_module(anchor_head_config(config), config["num_classes"])
        cls_scores, bbox_preds = list(inputs["cls_scores"]), list(inputs["bbox_preds"])
        metas = [{"img_shape": tuple(m["img_shape"]), "pad_shape": tuple(m.get("pad_shape", m["img_shape"]))}
                 for m in config["img_metas"]]
        gts = [_instances(bboxes=t["boxes"], labels=t["labels"]) for t in inputs["targets"]]
        ignore = None
        if any("ignore_boxes" in t for t in inputs["targets"]):
            ignore = [_instances(bboxes=t.get("ignore_boxes", t["boxes"].new_zeros((0, 4)))) for t in inputs["targets"]]
        losses = head.loss_by_feat(cls_scores, bbox_preds, gts, metas, ignore)
        sizes = [tuple(s.shape[-2:]) for s in cls_scores]
        anchors, valid = head.get_anchors(sizes, metas, device=cls_scores[0].device)
        labels, label_weights, _, _, avg_factor = head.get_targets(anchors, valid, gts, metas, ignore)
        loss_cls, loss_bbox = list(losses["loss_cls"]), list(losses["loss_bbox"])
        return {"loss_cls": loss_cls, "loss_bbox": loss_bbox,
                "avg_factor": torch.tensor(float(avg_factor), dtype=torch.float64),
                "total": torch.stack([*loss_cls, *loss_bbox]).sum(),
                "labels": list(torch.cat(labels, dim=1)), "label_weights": list(torch.cat(label_weights, dim=1))}

    # box overlaps

    def overlap(self, inputs, config, profile):
        from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps
        b1, b2 = inputs["boxes1"], inputs["boxes2"]
        if config["fmt"] == "cxcywh":
            b1, b2 = bbox_cxcywh_to_xyxy(b1), bbox_cxcywh_to_xyxy(b2)
        if config["op"] == "ciou":
            loss = self.MODELS.build(dict(type="CIoULoss", eps=1e-7, reduction="none"))
            return {"value": 1 - loss(b1, b2)}
        return {"value": bbox_overlaps(b1, b2, mode=config["op"], is_aligned=config["aligned"], eps=1e-6)}

    # DETR family: the Hungarian assigner and the heads' losses

    def _match_costs(self, matcher) -> list[dict]:
        """``HungarianAssigner`` match costs of a reference ``MatcherConvention`` (mmdet's DETR / Deformable-DETR /
        DINO configs): a class cost, ``BBoxL1Cost`` on cxcywh (``box_format='xywh'``), ``IoUCost(giou)``."""
        if matcher.class_cost == "softmax":
            cls_cost = dict(type="ClassificationCost", weight=matcher.weight_class)
        else:
            cls_cost = dict(type="FocalLossCost", weight=matcher.weight_class, alpha=matcher.focal_alpha,
                            gamma=matcher.focal_gamma, eps=matcher.focal_eps)
        return [cls_cost, dict(type="BBoxL1Cost", weight=matcher.weight_bbox, box_format="xywh"),
                dict(type="IoUCost", iou_mode="giou", weight=matcher.weight_giou)]

    def hungarian(self, inputs, config, profile):
        from components.contract import matcher_convention
        assigner = self.TASK_UTILS.build(dict(type="HungarianAssigner",
                                              match_costs=self._match_costs(matcher_convention(config, profile))))
        indices, costs = [], []
        for logits, boxes, target in zip(inputs["pred_logits"], inputs["pred_boxes"], inputs["targets"]):
            meta = _img_meta(target)
            preds = _instances(scores=logits, bboxes=_pixel_xyxy(boxes, meta))
            gts = _gt_instances(target, meta)
            result = assigner.assign(preds, gts, img_meta=meta)
            pred = torch.nonzero(result.gt_inds > 0).flatten()
            indices.append({"pred": pred, "gt": result.gt_inds[pred] - 1})
            # The cost matrix exactly as HungarianAssigner.assign sums it (it does not return it).
            if len(target["labels"]):
                costs.append(torch.stack([mc(pred_instances=preds, gt_instances=gts, img_meta=meta)
                                          for mc in assigner.match_costs]).sum(0))
            else:
                costs.append(logits.new_zeros((logits.shape[0], 0)))
        return {"indices": indices, "cost": costs}

    def _detr_head(self, config, two_stage: bool):
        """DETRHead / DeformableDETRHead / DINOHead as configs/{detr,deformable_detr,dino}/*.py build them, with the
        config's ``criterion`` and ``matcher`` fields as the loss configs' and match costs' arguments (small
        embed_dims: the loss does not use the head's layers)."""
        from components.contract import mmdet_head_convention
        kind, num_classes = config["head"], config["num_classes"]
        h = mmdet_head_convention(config)
        if h.classification == "softmax":
            loss_cls = dict(type="CrossEntropyLoss", bg_cls_weight=h.bg_cls_weight, use_sigmoid=False,
                            loss_weight=h.loss_weight_cls, class_weight=1.0)
        else:
            loss_cls = dict(type="FocalLoss", use_sigmoid=True, gamma=h.focal_gamma, alpha=h.focal_alpha,
                            loss_weight=h.loss_weight_cls)
        cfg = dict(type={"detr": "DETRHead", "deformable_detr": "DeformableDETRHead", "dino": "DINOHead"}[kind],
                   num_classes=num_classes, embed_dims=8, loss_cls=loss_cls,
                   loss_bbox=dict(type="L1Loss", loss_weight=h.loss_weight_bbox),
                   loss_iou=dict(type="GIoULoss", loss_weight=h.loss_weight_iou),
                   train_cfg=dict(assigner=dict(type="HungarianAssigner", match_costs=self._match_costs(h.matcher))))
        cfg.update(sync_cls_avg_factor=h.sync_cls_avg_factor)
        if kind != "detr":
            cfg.update(as_two_stage=two_stage, num_pred_layer=1)
        return self.MODELS.build(cfg)

    def detr_head_loss(self, inputs, config, profile):
        from mmengine.model import BaseModel
        kind = config["head"]
        two_stage = inputs.get("enc_cls_scores") is not None
        head = self._detr_head(config, two_stage)
        metas = [_img_meta(t) for t in inputs["targets"]]
        gts = [_gt_instances(t, m) for t, m in zip(inputs["targets"], metas)]
        cls_scores, bbox_preds = inputs["all_cls_scores"], inputs["all_bbox_preds"]
        if kind == "detr":
            if two_stage or "dn_meta" in inputs:
                raise NotProvided("DETRHead has no encoder or denoising outputs")
            losses = head.loss_by_feat(cls_scores, bbox_preds, gts, metas)
        elif kind == "deformable_detr":
            if "dn_meta" in inputs:
                raise NotProvided("DeformableDETRHead has no denoising outputs")
            losses = head.loss_by_feat(cls_scores, bbox_preds, inputs.get("enc_cls_scores"),
                                       inputs.get("enc_bbox_preds"), gts, metas)
        else:
            if "dn_meta" not in inputs:
                raise NotProvided("DINOHead.loss_by_feat needs dn_meta (it reads it before its None check)")
            # DINOHead takes the denoising queries first along the query axis and splits them off by dn_meta.
            dn_meta = {"num_denoising_queries": int(inputs["dn_meta"]["pad_size"]),
                       "num_denoising_groups": int(inputs["dn_meta"]["num_dn_group"])}
            if dn_meta["num_denoising_queries"]:
                cls_scores = torch.cat((inputs["dn_cls_scores"], cls_scores), dim=2)
                bbox_preds = torch.cat((inputs["dn_bbox_preds"], bbox_preds), dim=2)
            losses = head.loss_by_feat(cls_scores, bbox_preds, inputs.get("enc_cls_scores"),
                                       inputs.get("enc_bbox_preds"), gts, metas, dn_meta)
        # mmengine's own sum of the loss dict (BaseModel.parse_losses uses nothing of the model).
        total, _ = BaseModel.parse_losses(None, losses)
        return {"losses": canonical_keys(losses), "total": total}

    # positional encoding, the DETR mask path, transformer stacks and the DETR head

    def position(self, inputs, config, profile):
        module = sine_position_module(profile, config.get("num_feats"))
        mask = inputs.get("mask")
        if mask is None:  # mmdet's no-mask path: positions from the feature map's shape
            b, h, w = config["shape"]
            return {"pos": module(None, input=torch.zeros(b, 1, h, w))}
        return {"pos": module(mask)}

    def _detr_detector(self):
        """A DETR built from a (small) config: DETR.pre_transformer uses only its positional_encoding."""
        if getattr(self, "_detr", None) is None:
            layer = dict(self_attn_cfg=dict(embed_dims=8, num_heads=1, dropout=0.0, batch_first=True),
                         ffn_cfg=dict(embed_dims=8, feedforward_channels=8, num_fcs=2, ffn_drop=0.0,
                                      act_cfg=dict(type="ReLU", inplace=True)))
            self._detr = self.MODELS.build(dict(
                type="DETR", num_queries=1,
                backbone=dict(type="ResNet", depth=18, num_stages=1, strides=(1,), dilations=(1,), out_indices=(0,),
                              norm_cfg=dict(type="BN", requires_grad=False), norm_eval=True, style="pytorch"),
                neck=dict(type="ChannelMapper", in_channels=[64], kernel_size=1, out_channels=8, act_cfg=None,
                          norm_cfg=None, num_outs=1),
                encoder=dict(num_layers=1, layer_cfg=layer),
                decoder=dict(num_layers=1, layer_cfg=dict(layer, cross_attn_cfg=layer["self_attn_cfg"])),
                positional_encoding=dict(num_feats=4, normalize=True),
                bbox_head=dict(type="DETRHead", num_classes=1, embed_dims=8, loss_cls=_detr_loss_cls()))).eval()
        return self._detr

    def _detr_mask(self, img_shapes: list[tuple[int, int]], batch_input_shape: tuple[int, int],
                   feat_size: tuple[int, int]) -> torch.Tensor:
        """``DETR.pre_transformer``'s padding mask of a feature map of ``feat_size`` for images of ``img_shapes``
        padded to ``batch_input_shape`` (True = padding); mmdet's ``None`` (no image padded) is all False."""
        from mmdet.structures import DetDataSample
        samples = []
        for shape in img_shapes:
            sample = DetDataSample()
            sample.set_metainfo(dict(img_shape=shape, batch_input_shape=batch_input_shape))
            samples.append(sample)
        # float32, as a model's feature map is: the mask is built in the feature's dtype and its nearest
        # interpolation picks source pixels by a scale computed in that dtype (not torch's default dtype).
        feat = torch.zeros(len(img_shapes), 8, *feat_size, dtype=torch.float32)
        encoder_inputs, _ = self._detr_detector().pre_transformer((feat,), samples)
        mask = encoder_inputs["feat_mask"]
        if mask is None:
            return torch.zeros(len(img_shapes), *feat_size, dtype=torch.bool)
        return mask.view(len(img_shapes), *feat_size)

    def padding_mask(self, inputs, config, profile):
        shapes = [(int(h), int(w)) for h, w in inputs["image_sizes"].tolist()]
        padded = tuple(int(v) for v in config["padded_shape"])
        return {"mask": self._detr_mask(shapes, padded, padded)}

    def resized_mask(self, inputs, config, profile):
        mask = inputs["mask"]
        shapes = []
        for m in mask.cpu():  # mmdet builds its masks from img_shape: a top-left valid rectangle per image
            valid = ~m
            h, w = int(valid.any(1).sum()), int(valid.any(0).sum())
            rebuilt = torch.ones_like(m)
            rebuilt[:h, :w] = False
            if not torch.equal(rebuilt, m):
                raise NotProvided("mmdet derives DETR masks from img_shape: only top-left valid rectangles")
            shapes.append((h, w))
        return {"mask": self._detr_mask(shapes, tuple(mask.shape[1:]), tuple(int(v) for v in config["size"]))}

    def encoder(self, inputs, config, profile):
        src = inputs["src"]
        module = transformer_module(_weights(inputs), config, src.dtype, encoder=True)
        return {"memory": module(query=src, query_pos=inputs.get("pos"),
                                 key_padding_mask=inputs.get("key_padding_mask"))}

    def decoder(self, inputs, config, profile):
        tgt, memory = inputs["tgt"], inputs["memory"]
        module = transformer_module(_weights(inputs), config, tgt.dtype, encoder=False)
        return {"hidden": module(query=tgt, key=memory, value=memory, query_pos=inputs.get("query_pos"),
                                 key_pos=inputs.get("pos"), key_padding_mask=inputs.get("memory_key_padding_mask"))}

    def head(self, inputs, config, profile):
        hidden = inputs["hidden"]
        logits, boxes = detr_head_module(_weights(inputs), config.get("num_reg_fcs", 2), hidden.dtype)(hidden)
        return {"logits": logits, "boxes": boxes}

    # losses

    def _loss(self, component: str):
        def call(inputs, config, profile):
            c = dict(config)
            kwargs = {}
            if "avg_factor" in c:
                kwargs["avg_factor"] = c["avg_factor"]
            if "weight" in inputs:
                kwargs["weight"] = inputs["weight"]
            build = dict(reduction=c.get("reduction", "mean"), loss_weight=1.0)
            if component == "losses.softmax_cross_entropy":
                x, y = inputs["logits"], inputs["labels"]
                if x.dim() != 2:
                    raise NotProvided("mmdet's CrossEntropyLoss takes [N, C] logits")
                if "class_weight" in inputs:
                    build["class_weight"] = inputs["class_weight"].tolist()
                if c.get("ignore_index") is not None:
                    build["ignore_index"] = c["ignore_index"]
                loss = self.MODELS.build(dict(type="CrossEntropyLoss", use_sigmoid=False, **build))
                return {"loss": loss(x, y, **kwargs)}
            if component == "losses.sigmoid_binary_cross_entropy":
                if "pos_weight" in inputs:
                    build["class_weight"] = inputs["pos_weight"].tolist()
                loss = self.MODELS.build(dict(type="CrossEntropyLoss", use_sigmoid=True, **build))
                return {"loss": loss(inputs["logits"], inputs["targets"], **kwargs)}
            if component == "losses.sigmoid_focal_loss":
                loss = self.MODELS.build(dict(type="FocalLoss", use_sigmoid=True, gamma=c.get("gamma", 2.0),
                                              alpha=c.get("alpha", 0.25), **build))
                return {"loss": _focal(loss, inputs["logits"], inputs["targets"], kwargs,
                                       as_labels=inputs["logits"].is_cuda)}
            if component in ("losses.l1_loss", "losses.smooth_l1_loss"):
                extra = {"beta": c.get("beta", 1.0)} if component == "losses.smooth_l1_loss" else {}
                loss = self.MODELS.build(dict(type="L1Loss" if component == "losses.l1_loss" else "SmoothL1Loss",
                                              **extra, **build))
                return {"loss": loss(inputs["pred"], inputs["target"], **kwargs)}
            kind, eps = ("GIoULoss", 1e-6) if component == "losses.giou_loss" else ("CIoULoss", 1e-7)
            loss = self.MODELS.build(dict(type=kind, eps=eps, **build))
            return {"loss": loss(inputs["pred"], inputs["target"], **kwargs)}
        return call


def _img_meta(target) -> dict:
    """mmdet's img_meta of a DETR-family target: ``img_shape`` = the canonical ``image_size`` (h, w)."""
    h, w = (float(v) for v in target["image_size"])
    return {"img_shape": (h, w)}


def _pixel_xyxy(boxes: torch.Tensor, meta: dict) -> torch.Tensor:
    """Normalised cxcywh -> pixel xyxy, as mmdet's data samples and DETRHead._get_targets_single hold them."""
    from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
    h, w = meta["img_shape"]
    return bbox_cxcywh_to_xyxy(boxes) * boxes.new_tensor([w, h, w, h])


def _gt_instances(target, meta: dict):
    boxes = target["boxes"].reshape(-1, 4)
    return _instances(bboxes=_pixel_xyxy(boxes, meta), labels=target["labels"])


def _detr_loss_cls() -> dict:
    """DETRHead's default loss_cls, as a fresh dict: DETRHead.__init__ rewrites the dict it is given (class_weight
    becomes a tensor), so its mutable default makes a second DETRHead built without loss_cls fail its assertion."""
    return dict(type="CrossEntropyLoss", bg_cls_weight=0.1, use_sigmoid=False, loss_weight=1.0, class_weight=1.0)


# --------------------------------------------------------------------------- the modules (also exported to ONNX)

def sine_position_module(profile: str, num_feats: int | None = None) -> torch.nn.Module:
    """``SinePositionalEncoding`` with the profile's convention (``num_feats`` its own unless given); called as
    ``module(mask)`` (True = padding) or ``module(None, input=feature)``."""
    from mmdet.registry import MODELS

    from oracle.conventions import get_profile
    pe = get_profile(profile).position
    t = pe.temperature[0] if isinstance(pe.temperature, tuple) else pe.temperature
    return MODELS.build(dict(type="SinePositionalEncoding", num_feats=num_feats or pe.num_feats, temperature=t,
                             normalize=pe.normalize, scale=pe.scale, eps=pe.eps, offset=pe.offset))


def _layer_cfg(weights: Mapping[str, torch.Tensor], heads: int, decoder: bool) -> dict:
    e = weights["layers.0.self_attn.out_proj.weight"].shape[0]
    ffn = weights["layers.0.linear1.weight"].shape[0]
    attn = dict(embed_dims=e, num_heads=heads, dropout=0.0, batch_first=True)
    cfg = dict(self_attn_cfg=attn, ffn_cfg=dict(embed_dims=e, feedforward_channels=ffn, num_fcs=2, ffn_drop=0.0,
                                                act_cfg=dict(type="ReLU", inplace=True)))
    if decoder:
        cfg["cross_attn_cfg"] = dict(attn)
    return cfg


def transformer_module(weights: Mapping[str, torch.Tensor], config: Mapping[str, Any], dtype: torch.dtype, *,
                       encoder: bool) -> torch.nn.Module:
    """``DetrTransformerEncoder`` / ``DetrTransformerDecoder`` as ``DETR._init_layers`` builds them (``**cfg.encoder``),
    in ``dtype`` (first, so that loading does not round the weights), eval mode, with the case's canonical weights
    (dotted names) by their mmdet names (:func:`mmdet_state_dict`)."""
    from mmdet.models.layers import DetrTransformerDecoder, DetrTransformerEncoder
    layer_cfg = _layer_cfg(weights, config["num_heads"], decoder=not encoder)
    if encoder:
        module = DetrTransformerEncoder(num_layers=config["num_layers"], layer_cfg=layer_cfg)
    else:
        module = DetrTransformerDecoder(num_layers=config["num_layers"], layer_cfg=layer_cfg,
                                        return_intermediate=config.get("return_intermediate", True))
    module = module.to(dtype).eval()
    module.load_state_dict(mmdet_state_dict(weights))
    return module


def detr_head_module(weights: Mapping[str, torch.Tensor], num_reg_fcs: int, dtype: torch.dtype) -> torch.nn.Module:
    """``DETRHead`` (``forward(hidden) -> (logits, boxes)``) with the case's weights (:func:`detr_head_state_dict`)."""
    from mmdet.registry import MODELS
    if num_reg_fcs < 2:
        raise NotProvided("DETRHead's reg_ffn is an mmcv FFN, which needs num_fcs >= 2")
    k, e = weights["cls.weight"].shape
    module = MODELS.build(dict(type="DETRHead", num_classes=k - 1, embed_dims=e, num_reg_fcs=num_reg_fcs,
                               loss_cls=_detr_loss_cls()))
    module = module.to(dtype).eval()
    module.load_state_dict(detr_head_state_dict(weights, num_reg_fcs))
    return module


def detr_head_state_dict(weights: Mapping[str, torch.Tensor], num_reg_fcs: int) -> dict[str, torch.Tensor]:
    """reg.{i} -> reg_ffn.layers.{i}.0 (Linear + ReLU blocks), the last hidden Linear reg_ffn.layers.{n-1};
    reg.out -> fc_reg (after DETRHead's own ReLU); cls -> fc_cls."""
    state = {"fc_cls.weight": weights["cls.weight"], "fc_cls.bias": weights["cls.bias"],
             "fc_reg.weight": weights["reg.out.weight"], "fc_reg.bias": weights["reg.out.bias"]}
    for i in range(num_reg_fcs):
        name = f"reg_ffn.layers.{i}.0" if i < num_reg_fcs - 1 else f"reg_ffn.layers.{i}"
        state.update({f"{name}.weight": weights[f"reg.{i}.weight"], f"{name}.bias": weights[f"reg.{i}.bias"]})
    return state


def _weights(inputs) -> dict[str, torch.Tensor]:
    """The case's weight dict by its dotted names (components/canonical.py)."""
    return dotted_keys(inputs["weights"])


#: The reference's (torch / facebookresearch/detr) layer names -> mmdet's DetrTransformer{Encoder,Decoder}Layer.
_MMDET_LAYER_NAMES = {"self_attn": "self_attn.attn", "multihead_attn": "cross_attn.attn", "linear1": "ffn.layers.0.0",
                      "linear2": "ffn.layers.1", "norm1": "norms.0", "norm2": "norms.1", "norm3": "norms.2"}


def mmdet_state_dict(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``layers.{i}.{module}.{leaf}`` -> mmdet names (``_MMDET_LAYER_NAMES``); the decoder's ``norm`` is ``post_norm``.
    mmcv's MultiheadAttention wraps an ``nn.MultiheadAttention`` as ``.attn`` (packed in_proj, out_proj)."""
    out = {}
    for name, value in weights.items():
        if name.startswith("norm."):
            out["post_norm." + name[len("norm."):]] = value
            continue
        _, index, module, leaf = name.split(".", 3)
        out[f"layers.{index}.{_MMDET_LAYER_NAMES[module]}.{leaf}"] = value
    return out


def _run_dtype(inputs) -> torch.dtype:
    """The run's floating dtype, read from any floating input (anchors.grid has none: float32)."""
    for value in inputs.values():
        if isinstance(value, torch.Tensor) and value.dtype.is_floating_point:
            return value.dtype
    return torch.float32


def _hard(targets: torch.Tensor) -> bool:
    """One-hot targets: every entry 0 or 1, at most one 1 per row (the last axis)."""
    return bool(((targets == 0) | (targets == 1)).all()) and bool((targets.sum(-1) <= 1).all())


def _focal(loss, logits: torch.Tensor, targets: torch.Tensor, kwargs: dict, *, as_labels: bool) -> torch.Tensor:
    """mmdet's FocalLoss on the canonical targets. Elsewhere than CUDA, and for soft targets, the targets go in as
    they are (mmdet: ``py_sigmoid_focal_loss``). On CUDA, hard targets go in as integer labels (background = C), as
    mmdet's heads pass them, so that FocalLoss dispatches to ``mmcv.ops.sigmoid_focal_loss`` (no CPU kernel); the op
    takes ``[N, C]``, so ``[N, C]`` logits pass as they are and 1-D logits ``[N]`` as one class column ``[N, 1]``.
    (``as_labels`` on CPU takes FocalLoss's CPU label path, ``one_hot`` + the Python formula: tests use it.)"""
    if not as_labels or logits.dim() not in (1, 2) or not _hard(targets.reshape(len(targets), -1)):
        return loss(logits, targets, **kwargs)
    x = logits if logits.dim() == 2 else logits[:, None]
    t = targets if targets.dim() == 2 else targets[:, None]
    labels = torch.where(t.sum(-1) > 0, t.argmax(-1), x.shape[-1])
    out = loss(x, labels, **kwargs)
    return out.reshape(logits.shape) if logits.dim() == 1 and out.dim() == 2 else out


def make_adapter() -> Adapter:
    try:
        import mmcv  # noqa: F401
        import mmdet
        import mmengine  # noqa: F401
        return MMDetAdapter(mmdet.__version__)
    except Exception as err:  # noqa: BLE001 - mmcv without its ops raises at import, not always ImportError
        return MissingAdapter("mmdet", INSTALL, f"{type(err).__name__}: {err}")
