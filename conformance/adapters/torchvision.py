"""torchvision 0.28 through its own ``torchvision.ops`` (profile ``torchvision``).

Component mapping (every call is the library's; the adapter only renames and selects):

- ``boxes.convert``: ``ops.box_convert(boxes, src, dst)`` (torchvision's ``xywh`` is the reference's
  ``xywh``: top-left corner and size).
- ``boxes.area``: ``ops.box_area`` (after ``ops.box_convert`` to xyxy when needed).
- ``boxes.overlap`` pairwise, under the profile's ``box_iou`` convention: ``ops.box_iou``,
  ``generalized_box_iou``, ``distance_box_iou``, ``complete_box_iou``; aligned, under ``iou_loss``:
  ``1 - generalized_box_iou_loss / distance_box_iou_loss / complete_box_iou_loss`` (reduction none).
  IoF and aligned IoU have no torchvision op: not provided.
- ``losses.giou_loss`` / ``diou_loss`` / ``ciou_loss`` (xyxy, reduction none/sum/mean, no weights or
  avg_factor) and ``losses.sigmoid_focal_loss`` (``alpha=None`` is torchvision's ``alpha=-1``).

- ``coders.delta_xywh_encode`` / ``decode``: ``models.detection._utils.BoxCoder(weights=1 / stds)``,
  ``encode_single(gt, anchors)`` and ``decode_single(deltas, anchors)``, for the configurations it has:
  zero means, no centre clamp, the default ``bbox_xform_clip = log(1000 / 16)`` applied from above only
  (``wh_clamp="upper"``) and no clipping to the image; others are not provided.
- ``assign.max_iou`` under ``MAX_IOU_RETINANET_TORCHVISION``: ``ops.box_iou(gt, priors)`` into
  ``models.detection._utils.Matcher(0.5, 0.4, allow_low_quality_matches=True)`` (RetinaNet's), whose
  0-based GT index / -1 (below) / -2 (between) become the reference's ``k + 1`` / 0 / -1; ``max_overlaps``
  is the IoU matrix's column maximum and ``labels`` the matched GT's label. The Matcher raises on an
  image without GT (RetinaNet special-cases it before calling): a known difference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .base import YES, Adapter, MissingAdapter, NotProvided, Support, known_differences_file

INSTALL = 'pip install -c constraints.txt "torchvision==0.28.0" (from the package index: see docs/install.md)'
_LOSS_CONFIG = {"reduction", "convention"}
_FOCAL_CONFIG = {"alpha", "gamma", "reduction"}


class TorchvisionAdapter(Adapter):
    def __init__(self, ops: Any, version: str):
        self.ops = ops
        super().__init__(name="torchvision", version=version, components=self._components(),
                         profiles=frozenset({"torchvision"}), install=INSTALL,
                         known_differences=known_differences_file("torchvision"))

    def supports(self, component: str, device, dtype, profile: str, config: Mapping[str, Any] | None = None) -> Support:
        base = super().supports(component, device, dtype, profile, config)
        if not base or config is None:
            return base
        if component == "boxes.overlap":
            if config["op"] == "iof" or (config["op"] == "iou" and config["aligned"]):
                return Support(False, f"torchvision has no {'aligned ' if config['aligned'] else ''}{config['op']} op")
            wanted = "iou_loss" if config["aligned"] else "box_iou"
            if config["convention"] != wanted:
                return Support(False, f"torchvision's {'losses' if config['aligned'] else 'pairwise ops'} follow the "
                                      f"{wanted} convention, not {config['convention']}")
        if component.endswith("iou_loss") and (set(config) - _LOSS_CONFIG or config.get("convention") != "iou_loss"):
            return Support(False, "torchvision's IoU losses take reduction none/sum/mean only (no weight, avg_factor)")
        if component == "assign.max_iou" and (config.get("convention") != "MAX_IOU_RETINANET_TORCHVISION"
                                              or config.get("convention_overrides")):
            return Support(False, "the adapter runs torchvision's Matcher as RetinaNet builds it "
                                  "(MAX_IOU_RETINANET_TORCHVISION)")
        if component.startswith("coders.delta_xywh"):
            return self._coder_support(component, config)
        if component == "losses.sigmoid_focal_loss" and set(config) - _FOCAL_CONFIG:
            return Support(False, "torchvision's sigmoid_focal_loss takes alpha, gamma and reduction only")
        return base

    @staticmethod
    def _coder_support(component: str, config: Mapping[str, Any]) -> Support:
        if any(m != 0 for m in config.get("means", (0, 0, 0, 0))) or config.get("add_ctr_clamp", False):
            return Support(False, "torchvision's BoxCoder has no means and no centre clamp")
        if config.get("wh_ratio_clip", 16 / 1000) != 16 / 1000:
            return Support(False, "the adapter uses BoxCoder's default bbox_xform_clip = log(1000 / 16)")
        if component.endswith("decode") and (config.get("wh_clamp", "both") != "upper"
                                             or (config.get("clip_border", True) and config.get("max_shape"))):
            return Support(False, "torchvision's BoxCoder clamps size deltas from above only and never clips "
                                  "to the image (wh_clamp='upper', no max_shape)")
        return YES

    def _components(self) -> dict:
        ops = self.ops
        from torchvision.models.detection._utils import BoxCoder, Matcher

        def box_coder(config) -> BoxCoder:
            return BoxCoder(tuple(1.0 / s for s in config.get("stds", (1.0, 1.0, 1.0, 1.0))))

        def encode(inputs, config, profile):
            return {"deltas": box_coder(config).encode_single(inputs["gt"], inputs["anchors"])}

        def decode(inputs, config, profile):
            return {"boxes": box_coder(config).decode_single(inputs["deltas"], inputs["anchors"])}

        def max_iou(inputs, config, profile):
            iou = ops.box_iou(inputs["gt_boxes"], inputs["priors"])
            matches = Matcher(0.5, 0.4, allow_low_quality_matches=True)(iou)
            gt_inds = torch.where(matches >= 0, matches + 1, torch.where(matches == -1, 0, -1))
            labels = torch.where(matches >= 0, inputs["gt_labels"][matches.clamp(min=0)], -1)
            return {"gt_inds": gt_inds, "max_overlaps": iou.max(dim=0).values, "labels": labels}

        def convert(inputs, config, profile):
            return {"boxes": ops.box_convert(inputs["boxes"], config["src"], config["dst"])}

        def area(inputs, config, profile):
            boxes = inputs["boxes"]
            if config["fmt"] != "xyxy":
                boxes = ops.box_convert(boxes, config["fmt"], "xyxy")
            return {"area": ops.box_area(boxes)}

        pairwise = {"iou": ops.box_iou, "giou": ops.generalized_box_iou, "diou": ops.distance_box_iou,
                    "ciou": ops.complete_box_iou}
        aligned_losses = {"giou": ops.generalized_box_iou_loss, "diou": ops.distance_box_iou_loss,
                          "ciou": ops.complete_box_iou_loss}

        def overlap(inputs, config, profile):
            b1, b2 = inputs["boxes1"], inputs["boxes2"]
            if config["fmt"] != "xyxy":
                b1, b2 = ops.box_convert(b1, config["fmt"], "xyxy"), ops.box_convert(b2, config["fmt"], "xyxy")
            if config["aligned"]:
                return {"value": 1 - aligned_losses[config["op"]](b1, b2, reduction="none")}
            return {"value": pairwise[config["op"]](b1, b2)}

        def iou_loss(name):
            fn = {"giou_loss": ops.generalized_box_iou_loss, "diou_loss": ops.distance_box_iou_loss,
                  "ciou_loss": ops.complete_box_iou_loss}[name]
            def call(inputs, config, profile):
                if "weight" in inputs:
                    raise NotProvided("torchvision's IoU losses take no weight")
                return {"loss": fn(inputs["pred"], inputs["target"], reduction=config.get("reduction", "mean"))}
            return call

        def focal(inputs, config, profile):
            alpha = config.get("alpha", 0.25)
            return {"loss": ops.sigmoid_focal_loss(inputs["logits"], inputs["targets"],
                                                   alpha=-1 if alpha is None else alpha, gamma=config.get("gamma", 2.0),
                                                   reduction=config.get("reduction", "none"))}
        return {"boxes.convert": convert, "boxes.area": area, "boxes.overlap": overlap,
                "losses.giou_loss": iou_loss("giou_loss"), "losses.diou_loss": iou_loss("diou_loss"),
                "losses.ciou_loss": iou_loss("ciou_loss"), "losses.sigmoid_focal_loss": focal,
                "coders.delta_xywh_encode": encode, "coders.delta_xywh_decode": decode, "assign.max_iou": max_iou}


def make_adapter() -> Adapter:
    try:
        import torchvision
        from torchvision import ops
    except Exception as err:  # noqa: BLE001 - a CPU torch makes torchvision raise RuntimeError, not ImportError
        return MissingAdapter("torchvision", INSTALL, f"{type(err).__name__}: {err}")
    return TorchvisionAdapter(ops, torchvision.__version__)
