"""transformers 5.23 through its own code (profiles ``hf_detr``, ``hf_deformable_detr``; box ops as ``detr``).

Component mapping (the library computes; the adapter builds its inputs as a user would):

- ``boxes.convert``: ``image_transforms.center_to_corners_format`` (cxcywh -> xyxy) and
  ``corners_to_center_format`` (xyxy -> cxcywh); other pairs are not provided.
- ``boxes.overlap`` (pairwise, xyxy, the ``box_iou`` convention of profiles ``detr`` / ``hf_detr``:
  no eps): ``loss_for_object_detection.box_iou(...)[0]`` and ``generalized_box_iou``.
- ``losses.sigmoid_focal_loss``: ``loss_for_object_detection.sigmoid_focal_loss(x, t, num_boxes, alpha,
  gamma)`` = ``loss.mean(1).sum() / num_boxes`` on ``[N, P]`` inputs, so the canonical reductions map to
  ``num_boxes = avg_factor / P`` ("mean" with avg_factor), ``N`` ("mean"), ``1 / P`` ("sum").
- ``losses.dice_loss``: ``dice_loss(x, t.flatten(1), num_boxes)`` = sum over masks / num_boxes: "sum" is
  ``num_boxes = 1``, "mean" with avg_factor is ``num_boxes = avg_factor``.
- ``assign.hungarian``: ``HungarianMatcher`` (softmax cost: profiles ``detr``, ``hf_detr``) and
  ``DeformableDetrHungarianMatcher`` (focal cost, alpha 0.25 and gamma 2 hard-coded, eps 1e-8: profiles
  ``deformable_detr``, ``hf_deformable_detr``), constructed with the profile's cost weights.
- ``criteria.set_criterion``: ``ForObjectDetectionLoss`` with a ``DetrConfig`` (aux layers) or, without
  aux layers, a ``YolosConfig`` (the YOLOS path; YOLOS' aux loss is broken upstream), and
  ``DeformableDetrForObjectDetectionLoss`` with a ``DeformableDetrConfig``; the matching reported is the
  library's matcher run on each layer, as its loss runs it. Two-stage, interm, denoising, masks and
  multi-rank normalisation are not part of these entry points: not provided.
- ``position.sine``: ``DetrSinePositionEmbedding`` (profiles ``detr``, ``hf_detr``, ``mmdet``: offset 0)
  and ``DeformableDetrSinePositionEmbedding`` (offset -0.5), with the pixel mask ``~mask``.

The criterion modules build float buffers in torch's default dtype, so the adapter sets it to the run's
dtype during the call, as a user of float64 must (api_survey_installed.md §2.2).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import torch

from oracle.conventions import get_profile

from .base import Adapter, Support

INSTALL = 'pip install -c constraints.txt "transformers==5.23.0" "torchvision==0.28.0" (see docs/install.md)'
SOFTMAX_PROFILES = frozenset({"detr", "hf_detr"})
FOCAL_PROFILES = frozenset({"deformable_detr", "hf_deformable_detr"})


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype if dtype in (torch.float32, torch.float64) else torch.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _hf_targets(targets):
    return [{"class_labels": t["labels"], "boxes": t["boxes"]} for t in targets]


class TransformersAdapter(Adapter):
    def __init__(self, version: str):
        from transformers.image_transforms import center_to_corners_format, corners_to_center_format
        from transformers.loss import loss_deformable_detr as ldd
        from transformers.loss import loss_for_object_detection as lod
        from transformers.models.deformable_detr import modeling_deformable_detr as mdd
        from transformers.models.detr import modeling_detr as md
        self.lod, self.ldd, self.md, self.mdd = lod, ldd, md, mdd
        self.c2c, self.c2center = center_to_corners_format, corners_to_center_format
        super().__init__(name="transformers", version=version, components=self._components(),
                         profiles=frozenset(SOFTMAX_PROFILES | FOCAL_PROFILES | {"mmdet"}), install=INSTALL,
                         known_differences=_known_differences_path())

    def supports(self, component: str, device, dtype, profile: str, config: Mapping[str, Any] | None = None) -> Support:
        from golden.components import COMPONENTS
        if component not in self.components:
            return Support(False, f"transformers provides no {component}")
        allowed = {"boxes.overlap": SOFTMAX_PROFILES, "assign.hungarian": SOFTMAX_PROFILES | FOCAL_PROFILES,
                   "criteria.set_criterion": frozenset({"hf_detr", "hf_deformable_detr"}),
                   "position.sine": SOFTMAX_PROFILES | FOCAL_PROFILES | {"mmdet"}}.get(component)
        if COMPONENTS[component].profile_dependent and allowed is not None and profile not in allowed:
            return Support(False, f"transformers' {component} follows profile(s) {', '.join(sorted(allowed))}, "
                                  f"not {profile!r}")
        if config is None:
            return Support(True)
        c = dict(config)
        if component == "boxes.convert" and (c["src"], c["dst"]) not in (("cxcywh", "xyxy"), ("xyxy", "cxcywh")):
            return Support(False, "transformers converts cxcywh <-> xyxy only")
        if component == "boxes.overlap" and (c["op"] not in ("iou", "giou") or c["aligned"] or c["fmt"] != "xyxy"):
            return Support(False, "transformers has pairwise IoU and GIoU on xyxy boxes only")
        if component == "losses.sigmoid_focal_loss" and (set(c) - {"alpha", "gamma", "reduction", "avg_factor"}
                                                         or c.get("reduction") == "none" or c.get("alpha") is None
                                                         or (c.get("reduction") == "sum" and "avg_factor" in c)):
            return Support(False, "transformers' sigmoid_focal_loss returns sum/num_boxes with an alpha: "
                                  "reduction 'none', alpha None and weights are not expressible")
        if component == "losses.dice_loss" and (set(c) - {"reduction", "avg_factor"} or c.get("reduction") == "none"
                                                or (c.get("reduction") == "mean" and "avg_factor" not in c)):
            return Support(False, "transformers' dice_loss returns sum/num_boxes (reduction 'sum' or 'mean' with "
                                  "avg_factor only)")
        if component == "position.sine" and "num_feats" not in c:
            return Support(True)
        return Support(True)

    # ----------------------------------------------------------------- components

    def _components(self) -> dict:
        lod, ldd = self.lod, self.ldd

        def convert(inputs, config, profile):
            fn = self.c2c if config["src"] == "cxcywh" else self.c2center
            return {"boxes": fn(inputs["boxes"])}

        def overlap(inputs, config, profile):
            if config["op"] == "iou":
                return {"value": lod.box_iou(inputs["boxes1"], inputs["boxes2"])[0]}
            return {"value": lod.generalized_box_iou(inputs["boxes1"], inputs["boxes2"])}

        def focal(inputs, config, profile):
            x, t = inputs["logits"], inputs["targets"]
            if x.dim() != 2 or "weight" in inputs:
                raise NotImplementedError("transformers' sigmoid_focal_loss takes [N, P] inputs without weights")
            n, p = x.shape
            reduction = config.get("reduction", "mean")
            num_boxes = config["avg_factor"] / p if "avg_factor" in config else (n if reduction == "mean" else 1 / p)
            return {"loss": lod.sigmoid_focal_loss(x, t, num_boxes, alpha=config.get("alpha", 0.25),
                                                   gamma=config.get("gamma", 2.0))}

        def dice(inputs, config, profile):
            num_boxes = config["avg_factor"] if "avg_factor" in config else 1
            return {"loss": lod.dice_loss(inputs["logits"], inputs["targets"].flatten(1), num_boxes)}

        def matcher(profile):
            m = get_profile(profile).matcher
            cls = lod.HungarianMatcher if profile in SOFTMAX_PROFILES else ldd.DeformableDetrHungarianMatcher
            return cls(class_cost=m.weight_class, bbox_cost=m.weight_bbox, giou_cost=m.weight_giou)

        def hungarian(inputs, config, profile):
            with default_dtype(inputs["pred_logits"].dtype):
                pairs = matcher(profile)({"logits": inputs["pred_logits"], "pred_boxes": inputs["pred_boxes"]},
                                         _hf_targets(inputs["targets"]))
            return {"indices": [{"pred": i, "gt": j} for i, j in pairs]}

        def criterion(inputs, config, profile):
            import transformers
            outputs, targets = inputs["outputs"], inputs["targets"]
            unsupported = [k for k in ("enc_outputs", "interm_outputs", "dn_outputs", "dn_meta", "pred_masks")
                           if outputs.get(k) is not None] + [k for k in ("world_num_boxes", "indices") if k in inputs]
            if unsupported:
                raise NotImplementedError(f"transformers' detection losses take no {', '.join(unsupported)}")
            layers = list(outputs.get("aux_outputs") or []) + [outputs]
            logits = torch.stack([layer["pred_logits"] for layer in layers])
            boxes = torch.stack([layer["pred_boxes"] for layer in layers])
            c, aux = config["num_classes"], len(layers) > 1
            with default_dtype(logits.dtype):
                if profile == "hf_detr":
                    hf_config = transformers.DetrConfig(num_labels=c, auxiliary_loss=True, decoder_layers=len(layers)) \
                        if aux else transformers.YolosConfig(num_labels=c)
                    loss_fn = lod.ForObjectDetectionLoss
                else:
                    hf_config = transformers.DeformableDetrConfig(num_labels=c, auxiliary_loss=aux,
                                                                  decoder_layers=len(layers))
                    loss_fn = ldd.DeformableDetrForObjectDetectionLoss
                total, loss_dict, _ = loss_fn(logits[-1], _hf_targets(targets), str(logits.device), boxes[-1], hf_config,
                                              outputs_class=logits, outputs_coord=boxes)
                match = matcher(profile)
                indices = {}
                for i, layer in enumerate(layers):
                    key = "last" if i == len(layers) - 1 else str(i)
                    pairs = match({"logits": layer["pred_logits"], "pred_boxes": layer["pred_boxes"]},
                                  _hf_targets(targets))
                    indices[key] = [{"pred": p, "gt": g} for p, g in pairs]
            return {"losses": dict(loss_dict), "total": total, "indices": indices}

        def position(inputs, config, profile):
            mask = inputs.get("mask")
            offset = get_profile(profile).position.offset
            cls = self.mdd.DeformableDetrSinePositionEmbedding if offset == -0.5 else self.md.DetrSinePositionEmbedding
            feats = config.get("num_feats", 128)
            module = cls(num_position_features=feats, normalize=True)
            if mask is None:
                b, h, w = config["shape"]
                return {"pos": module((b, 2 * feats, h, w), "cpu", torch.float64)}
            b, h, w = mask.shape
            return {"pos": module((b, 2 * feats, h, w), mask.device, torch.float64, mask=(~mask).to(torch.int64))}

        return {"boxes.convert": convert, "boxes.overlap": overlap, "losses.sigmoid_focal_loss": focal,
                "losses.dice_loss": dice, "assign.hungarian": hungarian, "criteria.set_criterion": criterion,
                "position.sine": position}


def _known_differences_path() -> str:
    from pathlib import Path
    return str(Path(__file__).with_name("known_differences") / "transformers.toml")


class _Missing(Adapter):
    def __init__(self, reason: str):
        super().__init__(name="transformers", version="not installed", components={}, install=INSTALL)
        self.reason = reason

    def available(self) -> Support:
        return Support(False, self.reason)


def make_adapter() -> Adapter:
    try:
        import transformers
        return TransformersAdapter(transformers.__version__)
    except Exception as err:  # noqa: BLE001 - transformers' loss import fails with RuntimeError on a CPU torch
        return _Missing(f"{type(err).__name__}: {err}")
