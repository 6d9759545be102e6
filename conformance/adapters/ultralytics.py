"""ultralytics 8.4.190 through its own code (profile ``ultralytics``).

Component mapping (the library computes; the adapter converts layouts and builds inputs as a user would):

- ``boxes.convert``: ``utils.ops`` converters. ultralytics' ``xywh`` is the reference's ``cxcywh`` and its
  ``ltwh`` the reference's ``xywh`` (top-left corner and size): ``xyxy2xywh``, ``xywh2xyxy``, ``xyxy2ltwh``,
  ``ltwh2xyxy``, ``xywh2ltwh``, ``ltwh2xywh``.
- ``boxes.overlap`` (IoU, GIoU, DIoU, CIoU; IoF has no ultralytics function): ``utils.metrics.bbox_iou``, which is
  element-wise and broadcasting and returns ``[..., 1]``: aligned is ``bbox_iou(a, b)[..., 0]``, pairwise
  ``bbox_iou(a[..., :, None, :], b[..., None, :, :])[..., 0]``. Its two modes are two conventions: the profile's
  ``box_iou``/``iou_loss`` (and the constant ``IOU_ULTRALYTICS_XYXY``) is ``bbox_iou(xywh=False)`` on xyxy boxes,
  ``IOU_ULTRALYTICS_XYWH`` is ``bbox_iou(xywh=True)`` on centre-size boxes. Boxes in another format are converted
  with the ``utils.ops`` converters above first. Other IoU conventions are not provided.
- ``losses.ciou_loss`` (IOU_ULTRALYTICS_XYXY, reduction none/sum/mean): ``1 - bbox_iou(pred, target, xywh=False,
  CIoU=True)``, the element-wise term of ``BboxLoss``; its weighting by target scores and ``/ target_scores_sum``
  are checked through ``criteria.yolov8_detection``. Weights and ``avg_factor`` are not provided.
- ``losses.sigmoid_focal_loss``: ``utils.loss.FocalLoss(gamma, alpha)``, which returns ``loss.mean(1).sum()`` of a
  ``[N, P, ...]`` input, i.e. ``sum / P``: the canonical ``sum`` is that times ``P``, ``mean`` divides it by
  ``numel / P`` (or by ``avg_factor / P``). ``alpha=None`` is ultralytics' ``alpha=0`` (its alpha factor is applied
  only where ``alpha > 0``), so ``alpha=0`` itself is not expressible. Reduction ``none``, weights and 1-D inputs
  are not provided.
- ``losses.distribution_focal_loss`` (reduction none/sum/mean): ``utils.loss.DFLoss(R)`` on the logits viewed as
  ``[N * 4, R]`` (rows ordered sample-major, side-minor, as ``BboxLoss`` passes them) and the targets ``[N, 4]``; it
  returns ``[N, 1]``, the mean over the four sides. ``DFLoss`` clamps its target **in place**, so it gets a copy.
- ``anchors.points``: ``utils.tal.make_anchors`` on zero feature maps ``[1, 1, H_l, W_l]`` (it reads only their
  shapes and dtype; the call has no tensor inputs, so they are in torch's default dtype).
- ``coders.dist2bbox``: ``utils.tal.dist2bbox(distances, points, xywh=fmt == "cxcywh")``.
- ``coders.bbox2dist``: ``utils.tal.bbox2dist(points, boxes, reg_max - 1)``: the reference's ``reg_max`` is the
  number of DFL bins, ultralytics' argument the largest bin (it clamps at the argument minus 0.01), which is how
  ``BboxLoss`` calls it.
- ``coders.dfl_expectation``: ``nn.modules.block.DFL(R)``, the head's integral (a fixed 1x1 convolution with weights
  ``0 .. R-1``), cast to the run's dtype, on the logits ``[..., 4, R]`` laid out as the head's ``[1, 4 * R, N]``
  (side-major channels, anchors last); its ``[1, 4, N]`` output is laid back as ``[..., 4]``.
- ``masks.crop``: ``utils.ops.crop_mask`` (which zeroes its input in place: it gets a copy).
- ``assign.task_aligned`` (``TAL_ULTRALYTICS`` only: the legacy <= 8.2 and mmdet assigners are other code):
  ``utils.tal.TaskAlignedAssigner(topk, num_classes=C, alpha, beta, stride=[stride_val], eps)``, with the
  convention's ``topk``, ``alpha``, ``beta`` and ``norm_eps`` (``v8DetectionLoss`` builds it with 10, 0.5, 6.0 and
  the default 1e-9; the case's ``convention_overrides`` replace them). ultralytics derives the small-GT side
  ``stride_val`` from its stride list (``stride[1]``, or ``stride[0]`` for a single level), so the case's
  ``stride_val`` is passed as a one-level list.
  ``gt_labels`` and ``mask_gt`` gain the trailing unit axis it expects. Its early return for ``n = 0`` GT rows gives
  ``target_labels`` and ``target_gt_idx`` as *floating* tensors (``full_like(pd_scores[..., 0], num_classes)``,
  ``zeros_like``); they are integer-valued and returned as int64, the type of every other return path and the
  contract's (``exact_dtypes``). A canonicalising conversion, not a hidden difference: ultralytics' own consumer
  is indifferent to it (``v8DetectionLoss`` discards ``target_labels``, and every loss reads ``target_gt_idx`` only
  under ``if fg_mask.sum():``, which an assignment without GT never passes; utils/loss.py).
- ``criteria.yolov8_detection`` / ``criteria.yolov8_segmentation``: ``utils.loss.v8DetectionLoss`` /
  ``v8SegmentationLoss`` constructed standalone on :class:`_DetectModel`, the smallest stand-in for what the
  constructor reads (``next(model.parameters())`` for the device; ``model.args.box/cls/dfl``: the case's
  ``gains`` (``box_gain``, ``cls_gain``, ``dfl_gain``), else 7.5/0.5/1.5, the cfg/default.yaml gains, and
  ``model.args.overlap_mask``; ``model.model[-1].nc``, ``.reg_max`` (= 4R channels /
  4) and ``.stride`` (a tensor of the case's strides)). Layout conversions:

  - ``preds["boxes"] = pred_distri.permute(0, 2, 1)`` ``[B, 4 * reg_max, A]``, ``preds["scores"] =
    pred_logits.permute(0, 2, 1)`` ``[B, C, A]``, ``preds["feats"]``: zero maps ``[B, 1, H_l, W_l]`` in the run's
    dtype (ultralytics reads only their shapes, for the anchors and ``imgsz``, and the first one's dtype);
  - segmentation: ``preds["mask_coefficient"] = mask_coefficients.permute(0, 2, 1)`` ``[B, nm, A]``,
    ``preds["proto"] = proto``, ``batch["masks"]`` as given (index maps with ``overlap_mask``, else per-target masks);
  - ``batch``: ``batch_idx`` as a float column and ``cls`` as ``[N, 1]`` floats, the layout of ultralytics'
    collate function, and ``bboxes`` (normalised cxcywh), all in torch's default dtype (ultralytics index-puts them
    into a default-dtype buffer);
  - outputs: ``loss`` is the first return value (gained components times ``B``; the segmentation loss's fifth,
    ``sem_loss``, is 0 without a semantic head and is dropped), ``total`` its sum, ``fg_mask`` the assigner's, as the
    loss called it (a pass-through wrapper records it).

- ``assign.hungarian`` (profile ``ultralytics``): ``models.utils.ops.HungarianMatcher(cost_gain={"class": 2,
  "bbox": 5, "giou": 2})``, as ``DETRLoss`` hard-codes it (focal cost, alpha 0.25, gamma 2), the config's ``matcher``
  fields as its ``cost_gain``, ``alpha`` and ``gamma`` (a focal eps other than its hard-coded 1e-8 is not
  provided: the class has no parameter for it), with the targets
  concatenated (``gt_bboxes``, ``gt_cls``) and ``gt_groups`` the per-image counts; its GT indices are offsets into
  the concatenation and are converted to per-image indices. It returns no cost matrix. It computes the cost in
  float32 and sets NaN/inf costs to 0; the reference refuses non-finite input, so that policy is not exercised.
- ``criteria.set_criterion`` (profile ``ultralytics``: the reference returns ``DETRLoss``'s own keys, gained and with
  the non-last layers summed into ``*_aux``, so no renaming here): ``models.utils.loss.DETRLoss(nc=C, use_vfl=True)``,
  or with denoising (``dn_meta`` in the outputs) ``RTDETRDetectionLoss(nc=C, use_vfl=True)``, as
  ``RTDETRDetectionModel.init_criterion`` builds it (nn/tasks.py), with the config's ``criterion`` fields as its
  ``loss_gain`` (``class``, ``bbox``, ``giou``), ``alpha`` and ``gamma``; a drawn ``matcher`` is declined (DETRLoss
  builds its matcher with fixed cost gains and takes no parameter for them). Layout, as
  ``RTDETRDetectionModel.loss`` passes it: ``[L, B, Q, .]`` stacks of ``[interm_outputs (RT-DETR's encoder output,
  first), *aux_outputs, last layer]``; the
  targets concatenated as ``batch = {"cls", "bboxes", "gt_groups"}``. Denoising: the canonical ``dn_meta``
  (``pad_size`` = 2 G M, ``num_dn_group`` = G) becomes ultralytics' ``dn_num_group`` G, ``dn_pos_idx`` (per image,
  slots ``g * 2M + t`` group-major, as ``get_cdn_group`` lays them out) and ``dn_gt_idx`` (the image's targets as
  offsets into the concatenation; no subsampling), and the ``dn_outputs`` layers stack like the matching layers;
  ``pad_size`` 0 (no targets) is ``dn_meta=None``, whose ``*_dn`` terms are 0. ``indices``: the loss's own
  ``HungarianMatcher`` calls, recorded by a forward hook; it matches the last layer first, then the others in
  stacking order (the dn part is not matched), and its GT indices are made per-image. Not provided: ``enc_outputs``
  (class-agnostic two-stage targets), masks, ``world_num_boxes`` and given ``indices``. ``gt_scores`` is allocated in
  the default dtype and index-put with the predictions' IoU (models/utils/loss.py), so the call runs with the
  default dtype set to the run's; with half-precision predictions the float32 buffer refuses the half IoU values
  (RuntimeError): a known difference, recorded for float16 and bfloat16.
- Not provided: ``masks.downsample`` (8.4's segmentation loss upsamples the prototypes instead; there is no
  ultralytics function), everything else ultralytics lacks.

torch's default dtype: ultralytics allocates the loss vector, the target buffer and the model stride in it, so the
criteria run with it set to the run's dtype (float32 for float16/bfloat16 runs, whose ``batch`` floats are then
upcast to float32 exactly, as a float32 dataloader would give them next to half-precision predictions), and
restored afterwards. The segmentation loss casts ``batch["masks"]`` with ``.float()``, so its mask BCE runs in
float32 whatever the run's dtype.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

import torch

from components.canonical import cdn_global_targets, cdn_positive_slots, per_image_matching

from .base import YES, Adapter, MissingAdapter, NotProvided, Support, default_dtype, known_differences_file

INSTALL = 'pip install -c constraints.txt "ultralytics==8.4.190" (or pip install -e ".[ultralytics]")'

#: v8DetectionLoss's hyper-parameters from ultralytics/cfg/default.yaml (box, cls, dfl gains).
DEFAULT_GAINS = {"box": 7.5, "cls": 0.5, "dfl": 1.5}
#: The matching gains DETRLoss hard-codes for its HungarianMatcher (models/utils/loss.py).
DETR_MATCHER_GAINS = {"class": 2, "bbox": 5, "giou": 2}
#: The IoU conventions bbox_iou computes (utils/metrics.py): preset -> its ``xywh`` argument.
XYWH_ARGUMENT = {"IOU_ULTRALYTICS_XYXY": False, "IOU_ULTRALYTICS_XYWH": True}


def _xywh_argument(profile: str, which: str) -> bool | None:
    """bbox_iou's ``xywh`` argument for the convention a case names (a Profile field or a preset), or None
    where bbox_iou does not compute that convention."""
    from oracle import conventions as conv
    convention = conv.lookup(profile, which, conv.IoUConvention)
    return next((xywh for name, xywh in XYWH_ARGUMENT.items() if conv.named(name) == convention), None)


_OVERLAP_FLAGS = {"iou": {}, "giou": {"GIoU": True}, "diou": {"DIoU": True}, "ciou": {"CIoU": True}}


class _DetectHead(torch.nn.Module):
    """What ``v8DetectionLoss`` reads from ``model.model[-1]`` (the ``Detect``/``Segment`` head)."""

    def __init__(self, nc: int, reg_max: int, strides: list[float], device: torch.device):
        super().__init__()
        # Detect's stride is a plain tensor attribute in the default dtype, moved with the model (nn/tasks.py).
        self.nc, self.reg_max, self.stride = nc, reg_max, torch.tensor([float(s) for s in strides], device=device)
        self.anchor = torch.nn.Parameter(torch.zeros(1, device=device))  # next(model.parameters()) gives the device


class _DetectModel(torch.nn.Module):
    """The smallest stand-in for a YOLOv8 model as the loss constructors read it (module docstring)."""

    def __init__(self, nc: int, reg_max: int, strides: list[float], overlap_mask: bool, device: torch.device,
                 gains: Mapping[str, float]):
        super().__init__()
        self.model = torch.nn.ModuleList([_DetectHead(nc, reg_max, strides, device)])
        self.args = types.SimpleNamespace(**gains, overlap_mask=overlap_mask)


def _gains(config: Mapping[str, Any]) -> dict[str, float]:
    """``model.args``' ``box``, ``cls``, ``dfl``: the case's ``gains`` (YOLOv8LossConfig fields) over
    :data:`DEFAULT_GAINS`."""
    gains = dict(DEFAULT_GAINS)
    for field, value in (config.get("gains") or {}).items():
        gains[field.removesuffix("_gain")] = value
    return gains


#: The set criterion's fields (components.contract.CRITERION_FIELDS) DETRLoss takes: ``loss_gain`` class / bbox /
#: giou, and ``alpha`` / ``gamma`` (its FocalLoss' and VarifocalLoss').
_DETR_LOSS_FIELDS = ("weight_ce", "weight_bbox", "weight_giou", "focal_alpha", "focal_gamma")


def _reject(config: Mapping[str, Any], allowed: set[str], what: str) -> Support:
    extra = sorted(set(config) - allowed)
    return Support(False, f"{what} takes no {', '.join(extra)}") if extra else YES


class UltralyticsAdapter(Adapter):
    def __init__(self, version: str):
        from ultralytics.models.utils import loss as detr_loss
        from ultralytics.models.utils import ops as detr_ops
        from ultralytics.nn.modules.block import DFL
        from ultralytics.utils import loss, metrics, ops, tal
        self.loss, self.metrics, self.ops, self.tal, self.detr_ops, self.DFL = loss, metrics, ops, tal, detr_ops, DFL
        self.detr_loss = detr_loss
        super().__init__(name="ultralytics", version=version, components=self._components(),
                         profiles=frozenset({"ultralytics"}), install=INSTALL,
                         known_differences=known_differences_file("ultralytics"))

    # ----------------------------------------------------------------- what it declines

    def supports(self, component: str, device, dtype, profile: str, config: Mapping[str, Any] | None = None) -> Support:
        base = super().supports(component, device, dtype, profile, config)
        if not base:
            return base
        if config is None:
            return base
        check = {"boxes.convert": self._convert_support,
                 "boxes.overlap": lambda c: self._overlap_support(c, profile),
                 "losses.ciou_loss": lambda c: self._ciou_support(c, profile),
                 "losses.sigmoid_focal_loss": self._focal_support,
                 "losses.distribution_focal_loss": lambda c: _reject(c, {"reduction"}, "ultralytics' DFLoss"),
                 "coders.dist2bbox": lambda c: _reject(c, {"fmt"}, "ultralytics' dist2bbox"),
                 "coders.bbox2dist": lambda c: _reject(c, {"reg_max"}, "ultralytics' bbox2dist"),
                 "heads.yolov8_decode": lambda c: _reject(c, {"strides", "fmt", "offset"}, "ultralytics' Detect decode")
                 if c.get("offset", 0.5) == 0.5 else Support(False, "Detect's grid cell offset is 0.5"),
                 "anchors.points": lambda c: _reject(c, {"featmap_sizes", "strides", "offset"}, "make_anchors"),
                 "assign.task_aligned": self._task_aligned_support,
                 "criteria.yolov8_detection": self._yolov8_support,
                 "criteria.yolov8_segmentation": self._yolov8_support,
                 "criteria.set_criterion": self._set_criterion_support}.get(component)
        return check(config) if check else base

    @staticmethod
    def _convert_support(config) -> Support:
        if config["src"] == config["dst"]:
            return Support(False, "ultralytics has no identity conversion")
        return YES

    @staticmethod
    def _overlap_support(config, profile: str) -> Support:
        if config["op"] not in _OVERLAP_FLAGS:
            return Support(False, f"ultralytics has no {config['op']} function (bbox_iou computes IoU, GIoU, DIoU, "
                                  f"CIoU)")
        if _xywh_argument(profile, config["convention"]) is None:
            return Support(False, f"ultralytics' bbox_iou follows IOU_ULTRALYTICS_XYXY (xywh=False) or "
                                  f"IOU_ULTRALYTICS_XYWH (xywh=True), not {config['convention']}")
        return YES

    @staticmethod
    def _ciou_support(config, profile: str) -> Support:
        if _xywh_argument(profile, config.get("convention", "iou_loss")) is not False:
            return Support(False, "ultralytics' CIoU loss (BboxLoss) uses bbox_iou(xywh=False): IOU_ULTRALYTICS_XYXY")
        return _reject(config, {"convention", "reduction"}, "the adapter's CIoU loss (1 - bbox_iou, reduced)")

    @staticmethod
    def _focal_support(config) -> Support:
        if config.get("reduction", "mean") == "none":
            return Support(False, "ultralytics' FocalLoss returns loss.mean(1).sum(): no element-wise loss")
        if config.get("alpha", 0.25) == 0:
            return Support(False, "ultralytics' FocalLoss applies no alpha factor for alpha = 0 (alpha 0 and None "
                                  "are the same there)")
        if "avg_factor" in config and config.get("reduction", "mean") != "mean":
            return Support(False, "avg_factor applies to reduction 'mean' only")
        return _reject(config, {"alpha", "gamma", "reduction", "avg_factor"}, "ultralytics' FocalLoss")

    @staticmethod
    def _task_aligned_support(config) -> Support:
        if config["convention"] != "TAL_ULTRALYTICS":
            return Support(False, f"ultralytics 8.4's TaskAlignedAssigner is TAL_ULTRALYTICS, not "
                                  f"{config['convention']} (other releases or libraries)")
        if config.get("stride_val") is None:
            return Support(False, "ultralytics' assigner always enlarges GTs smaller than its stride_val: "
                                  "the case must give stride_val")
        return YES

    @staticmethod
    def _set_criterion_support(config) -> Support:
        if config.get("matcher"):
            return Support(False, f"ultralytics' DETRLoss builds its HungarianMatcher with cost_gain {{class 2, bbox "
                                  f"5, giou 2}}, alpha 0.25, gamma 2 (models/utils/loss.py) and takes no parameter "
                                  f"for them: matcher {dict(config['matcher'])} is not expressible")
        other = sorted(set(config.get("criterion") or {}) - set(_DETR_LOSS_FIELDS))
        if other:
            return Support(False, f"ultralytics' DETRLoss takes loss_gain class / bbox / giou, gamma and alpha only, "
                                  f"not {', '.join(other)}")
        return _reject(config, {"num_classes", "criterion"}, "ultralytics' DETRLoss")

    @staticmethod
    def _yolov8_support(config) -> Support:
        if config.get("preset", "YOLOV8_ULTRALYTICS") != "YOLOV8_ULTRALYTICS":
            return Support(False, f"ultralytics 8.4.190 is YOLOV8_ULTRALYTICS, not {config['preset']}")
        return _reject(config, {"featmap_sizes", "strides", "preset", "overlap_mask", "gains"}, "v8DetectionLoss")

    # ----------------------------------------------------------------- components

    def _components(self) -> dict:
        return {"boxes.convert": self.convert, "boxes.overlap": self.overlap, "losses.ciou_loss": self.ciou_loss,
                "losses.sigmoid_focal_loss": self.focal_loss, "losses.distribution_focal_loss": self.dfl_loss,
                "anchors.points": self.anchor_points, "coders.dist2bbox": self.dist2bbox,
                "coders.bbox2dist": self.bbox2dist, "coders.dfl_expectation": self.dfl_expectation,
                "heads.yolov8_decode": self.yolov8_decode,
                "masks.crop": self.crop, "assign.task_aligned": self.task_aligned,
                "criteria.yolov8_detection": self.yolov8_detection,
                "criteria.yolov8_segmentation": self.yolov8_segmentation, "assign.hungarian": self.hungarian,
                "criteria.set_criterion": self.set_criterion}

    def _converter(self, src: str, dst: str):
        """The ultralytics function from the reference's ``src`` to ``dst`` format (ultralytics' names differ)."""
        ops = self.ops
        return {("xyxy", "cxcywh"): ops.xyxy2xywh, ("cxcywh", "xyxy"): ops.xywh2xyxy,
                ("xyxy", "xywh"): ops.xyxy2ltwh, ("xywh", "xyxy"): ops.ltwh2xyxy,
                ("cxcywh", "xywh"): ops.xywh2ltwh, ("xywh", "cxcywh"): ops.ltwh2xywh}[(src, dst)]

    def convert(self, inputs, config, profile):
        return {"boxes": self._converter(config["src"], config["dst"])(inputs["boxes"])}

    def _bbox_iou(self, boxes1, boxes2, fmt: str, op: str, xywh: bool) -> torch.Tensor:
        """bbox_iou of broadcast boxes in its ``xywh`` mode, after converting them from ``fmt`` to that mode's."""
        wanted = "cxcywh" if xywh else "xyxy"
        if fmt != wanted:
            boxes1, boxes2 = self._converter(fmt, wanted)(boxes1), self._converter(fmt, wanted)(boxes2)
        return self.metrics.bbox_iou(boxes1, boxes2, xywh=xywh, **_OVERLAP_FLAGS[op])[..., 0]

    def overlap(self, inputs, config, profile):
        b1, b2 = inputs["boxes1"], inputs["boxes2"]
        if not config["aligned"]:  # pairwise by broadcasting [..., N, 1, 4] against [..., 1, M, 4]
            b1, b2 = b1[..., :, None, :], b2[..., None, :, :]
        return {"value": self._bbox_iou(b1, b2, config["fmt"], config["op"],
                                        _xywh_argument(profile, config["convention"]))}

    def ciou_loss(self, inputs, config, profile):
        if set(inputs) - {"pred", "target"}:
            raise NotProvided("the adapter's CIoU loss takes no weight")
        loss = 1.0 - self._bbox_iou(inputs["pred"], inputs["target"], "xyxy", "ciou", xywh=False)
        reduction = config.get("reduction", "mean")
        return {"loss": loss if reduction == "none" else loss.sum() if reduction == "sum" else loss.mean()}

    def focal_loss(self, inputs, config, profile):
        x, t = inputs["logits"], inputs["targets"]
        if set(inputs) - {"logits", "targets"} or x.dim() < 2:
            raise NotProvided("ultralytics' FocalLoss takes [N, P, ...] logits and targets, no weights")
        alpha = config.get("alpha", 0.25)
        per_p = self.loss.FocalLoss(gamma=config.get("gamma", 2.0), alpha=0.0 if alpha is None else alpha)(x, t)
        total = per_p * x.shape[1]  # FocalLoss = loss.mean(1).sum() = sum / P
        if config.get("reduction", "mean") == "sum":
            return {"loss": total}
        return {"loss": total / config.get("avg_factor", x.numel())}

    def dfl_loss(self, inputs, config, profile):
        logits, targets = inputs["logits"], inputs["targets"]
        if set(inputs) - {"logits", "targets"}:
            raise NotProvided("ultralytics' DFLoss takes no weight (BboxLoss weights it)")
        bins = logits.shape[-1]
        per_sample = self.loss.DFLoss(bins)(logits.reshape(-1, bins), targets.reshape(-1, 4).clone())
        loss = per_sample.reshape(targets.shape[:-1])
        reduction = config.get("reduction", "mean")
        return {"loss": loss if reduction == "none" else loss.sum() if reduction == "sum" else loss.mean()}

    def anchor_points(self, inputs, config, profile):
        feats = [torch.zeros(1, 1, h, w) for h, w in config["featmap_sizes"]]
        points, strides = self.tal.make_anchors(feats, list(config["strides"]), config.get("offset", 0.5))
        return {"points": points, "strides": strides}

    def dist2bbox(self, inputs, config, profile):
        return {"boxes": self.tal.dist2bbox(inputs["distances"], inputs["points"],
                                            xywh=config.get("fmt", "xyxy") == "cxcywh")}

    def bbox2dist(self, inputs, config, profile):
        reg_max = config.get("reg_max")
        return {"distances": self.tal.bbox2dist(inputs["points"], inputs["boxes"],
                                                None if reg_max is None else reg_max - 1)}

    def dfl_expectation(self, inputs, config, profile):
        logits = inputs["logits"]
        bins = logits.shape[-1]
        head = logits.reshape(-1, 4 * bins).T[None]  # (1, 4 * R, N): side-major channels, anchors last
        distances = self.DFL(bins).to(device=logits.device, dtype=logits.dtype)(head)  # (1, 4, N)
        return {"distances": distances[0].T.reshape(logits.shape[:-1])}

    def yolov8_decode(self, inputs, config, profile):
        from ultralytics.nn.modules.head import Detect
        maps = inputs["box_maps"]
        b, channels = maps[0].shape[:2]
        head = Detect(nc=1, reg_max=channels // 4, ch=(1,) * len(maps)).to(device=maps[0].device, dtype=maps[0].dtype)
        head.eval()
        head.stride = torch.tensor([float(s) for s in config["strides"]], device=maps[0].device)
        head.xyxy = config.get("fmt", "cxcywh") == "xyxy"
        preds = {"boxes": torch.cat([m.reshape(b, channels, -1) for m in maps], 2), "feats": maps}
        # Detect._get_decode_boxes: make_anchors from the feature maps' shapes, DFL, dist2bbox, times the strides.
        return {"boxes": head._get_decode_boxes(preds).transpose(1, 2)}

    def crop(self, inputs, config, profile):
        return {"masks": self.ops.crop_mask(inputs["masks"].clone(), inputs["boxes"])}

    def task_aligned(self, inputs, config, profile):
        from components.dense_calls import task_aligned_convention
        tal = task_aligned_convention(config)
        scores = inputs["pd_scores"]
        assigner = self.tal.TaskAlignedAssigner(topk=tal.topk, num_classes=scores.shape[-1], alpha=tal.alpha,
                                                beta=tal.beta, stride=[config["stride_val"]], eps=tal.norm_eps)
        labels, boxes, target_scores, fg, gt_idx = assigner(
            scores, inputs["pd_bboxes"], inputs["anchor_points"], inputs["gt_labels"][..., None], inputs["gt_bboxes"],
            inputs["mask_gt"][..., None])
        return {"target_labels": labels.long(), "target_bboxes": boxes, "target_scores": target_scores,
                "fg_mask": fg, "target_gt_idx": gt_idx.long()}

    # ----------------------------------------------------------------- YOLOv8 losses

    def _yolov8(self, inputs, config, segmentation: bool) -> dict:
        distri, logits = inputs["pred_distri"], inputs["pred_logits"]
        b = logits.shape[0]
        with default_dtype(logits.dtype):
            model = _DetectModel(nc=logits.shape[-1], reg_max=distri.shape[-1] // 4, strides=list(config["strides"]),
                                 overlap_mask=config.get("overlap_mask", True), device=logits.device,
                                 gains=_gains(config))
            cls = self.loss.v8SegmentationLoss if segmentation else self.loss.v8DetectionLoss
            criterion = cls(model)
            fg_masks = []
            assign = criterion.assigner

            def recording_assigner(*args, **kwargs):
                result = assign(*args, **kwargs)
                fg_masks.append(result[3])
                return result
            criterion.assigner = recording_assigner
            floats = torch.get_default_dtype()
            batch = inputs["batch"]
            ul_batch = {"batch_idx": batch["batch_idx"].to(floats), "cls": batch["cls"].to(floats)[:, None],
                        "bboxes": batch["bboxes"].to(floats)}
            preds = {"boxes": distri.permute(0, 2, 1), "scores": logits.permute(0, 2, 1),
                     "feats": [torch.zeros(b, 1, h, w, dtype=logits.dtype, device=logits.device)
                               for h, w in config["featmap_sizes"]]}
            if segmentation:
                preds.update(mask_coefficient=inputs["mask_coefficients"].permute(0, 2, 1), proto=inputs["proto"])
                ul_batch["masks"] = batch["masks"]
            loss, _ = criterion(preds, ul_batch)
        if segmentation:
            loss = loss[:4]  # box, seg, cls, dfl; sem_loss is 0 without a semantic head
        return {"loss": loss, "total": loss.sum(), "fg_mask": fg_masks[0]}

    def yolov8_detection(self, inputs, config, profile):
        return self._yolov8(inputs, config, segmentation=False)

    def yolov8_segmentation(self, inputs, config, profile):
        return self._yolov8(inputs, config, segmentation=True)

    # ----------------------------------------------------------------- RT-DETR matcher

    def hungarian(self, inputs, config, profile):
        targets = inputs["targets"]
        counts = [len(t["labels"]) for t in targets]
        gt_boxes, gt_cls = torch.cat([t["boxes"] for t in targets]), torch.cat([t["labels"] for t in targets])
        from components.contract import matcher_convention
        m = matcher_convention(config, profile)
        if m.focal_eps != 1e-8:
            raise NotProvided(f"ultralytics' HungarianMatcher hard-codes the focal cost's eps 1e-8 "
                              f"(models/utils/ops.py), and nothing sets it: {m.focal_eps:g} is not expressible")
        # DETRLoss builds it with DETR_MATCHER_GAINS and the default alpha and gamma; the config's matcher fields are
        # the constructor's arguments.
        matcher = self.detr_ops.HungarianMatcher(cost_gain={"class": m.weight_class, "bbox": m.weight_bbox,
                                                            "giou": m.weight_giou}, alpha=m.focal_alpha,
                                                 gamma=m.focal_gamma)
        pairs = matcher(inputs["pred_boxes"], inputs["pred_logits"], gt_boxes, gt_cls, counts)
        return {"indices": per_image_matching(pairs, counts)}

    # ----------------------------------------------------------------- RT-DETR loss

    def set_criterion(self, inputs, config, profile):
        outputs, targets = inputs["outputs"], inputs["targets"]
        unsupported = [k for k in ("enc_outputs", "pred_masks") if outputs.get(k) is not None] + \
            [k for k in ("world_num_boxes", "indices") if k in inputs]
        if unsupported:
            raise NotProvided(f"ultralytics' DETRLoss takes no {', '.join(unsupported)}")
        interm = [outputs["interm_outputs"]] if outputs.get("interm_outputs") is not None else []
        layers = interm + list(outputs.get("aux_outputs") or []) + [outputs]
        counts = [len(t["labels"]) for t in targets]
        batch = {"cls": torch.cat([t["labels"] for t in targets]), "bboxes": torch.cat([t["boxes"] for t in targets]),
                 "gt_groups": counts}
        logits = outputs["pred_logits"]
        calls = []
        # The profile's criterion with the config's fields, as DETRLoss' arguments (its defaults are the profile's).
        from components.contract import set_criterion_config
        crit = set_criterion_config({"num_classes": config["num_classes"], "criterion": config.get("criterion")},
                                    profile).criterion
        kwargs = {"loss_gain": {"class": crit.weight_ce, "bbox": crit.weight_bbox, "giou": crit.weight_giou},
                  "alpha": crit.focal_alpha, "gamma": crit.focal_gamma}
        with default_dtype(logits.dtype):
            if "dn_meta" in outputs:
                criterion = self.detr_loss.RTDETRDetectionLoss(nc=config["num_classes"], use_vfl=True, **kwargs)
            else:
                criterion = self.detr_loss.DETRLoss(nc=config["num_classes"], use_vfl=True, **kwargs)
            criterion.matcher.register_forward_hook(lambda module, args, result: calls.append(result))
            preds = (_stack(layers, "pred_boxes"), _stack(layers, "pred_logits"))
            if "dn_meta" in outputs:
                dn_meta = _ultralytics_dn_meta(outputs["dn_meta"], counts, num_queries=logits.shape[1])
                dn_bboxes = dn_scores = None
                if dn_meta is not None:
                    dn_layers = list(outputs["dn_outputs"].get("aux_outputs") or []) + [outputs["dn_outputs"]]
                    dn_bboxes, dn_scores = _stack(dn_layers, "pred_boxes"), _stack(dn_layers, "pred_logits")
                losses = criterion(preds, batch, dn_bboxes=dn_bboxes, dn_scores=dn_scores, dn_meta=dn_meta)
            else:
                losses = criterion(*preds, batch)
        # DETRLoss matches the last layer, then the others in stacking order (models/utils/loss.py).
        keys = ["last"] + ["interm"] * len(interm) + [str(i) for i in range(len(layers) - 1 - len(interm))]
        indices = {key: per_image_matching(pairs, counts) for key, pairs in zip(keys, calls)}
        return {"losses": dict(losses), "total": sum(losses.values()), "indices": indices}


def _stack(layers, key: str) -> torch.Tensor:
    return torch.stack([layer[key] for layer in layers])


def _ultralytics_dn_meta(dn_meta, counts: list[int], num_queries: int) -> dict | None:
    """``get_cdn_group``'s meta for the canonical ``{pad_size: 2 G M, num_dn_group: G}`` (None without denoising
    queries, as it returns for a batch without targets): positive slots ``g * 2M + t``, group-major per image, and
    each image's targets as offsets into the concatenated targets."""
    pad, groups = int(dn_meta["pad_size"]), int(dn_meta["num_dn_group"])
    if pad == 0:
        return None
    return {"dn_pos_idx": cdn_positive_slots(counts, pad, groups), "dn_gt_idx": cdn_global_targets(counts),
            "dn_num_group": groups, "dn_num_split": [pad, num_queries]}


def make_adapter() -> Adapter:
    try:
        import ultralytics
        return UltralyticsAdapter(ultralytics.__version__)
    except Exception as err:  # noqa: BLE001 - an ultralytics import can fail with other errors than ImportError
        return MissingAdapter("ultralytics", INSTALL, f"{type(err).__name__}: {err}")
