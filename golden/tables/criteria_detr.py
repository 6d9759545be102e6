"""Golden cases of the DETR-family criteria (``criteria.set_criterion``, ``criteria.cdn``,
``criteria.mmdet_detr_head``; conformance/test_criteria_detr.py)."""

from __future__ import annotations

import torch

from oracle import conventions as conv
from oracle.criteria import cdn_group_count

from ..case import Case, Inputs, f64, i64, rand_cxcywh, rand_layer, rand_logits, rand_targets


def cases() -> list[Case]:
    cases = []

    def detr_like(rng, profile, b=2, q=6, c=4, layers=3, counts=(3, 1), **extra):
        k = c + 1 if conv.get_profile(profile).criterion.classification == "softmax" else c
        outputs = {**rand_layer(rng, b, q, k), "aux_outputs": [rand_layer(rng, b, q, k) for _ in range(layers - 1)]}
        if extra.get("enc"):
            outputs["enc_outputs"] = rand_layer(rng, b, 2 * q, k)
        if extra.get("interm"):
            outputs["interm_outputs"] = rand_layer(rng, b, q, k)
        inputs = {"outputs": outputs, "targets": rand_targets(rng, list(counts), c,
                                                              masks=(5, 7) if extra.get("masks") else None)}
        if extra.get("masks"):
            outputs["pred_masks"] = rand_logits(rng, (b, q, 3, 4))
        if extra.get("dn"):
            max_n = max(counts)
            groups = 2
            pad = 2 * groups * max_n
            outputs["dn_meta"] = {"pad_size": torch.tensor(pad), "num_dn_group": torch.tensor(groups)}
            outputs["dn_outputs"] = {**rand_layer(rng, b, pad, k), "aux_outputs": [rand_layer(rng, b, pad, k)
                                                                                for _ in range(layers - 1)]}
        if extra.get("world"):
            inputs["world_num_boxes"] = f64(extra["world"])
        return inputs
    specs = [
        ("detr", {}, ("random",)), ("hf_detr", {}, ("random",)), ("deformable_detr", {"enc": True}, ("random",)),
        ("hf_deformable_detr", {}, ("random",)), ("dino", {"interm": True, "dn": True}, ("random",)),
        ("detr", {"masks": True}, ("random", "with:masks")),
        ("detr", {"world": [4.0, 2.0, 0.0]}, ("random", "with:world")),
    ]
    for i, (profile, extra, tags) in enumerate(specs):
        name = profile + "".join(f"-{k}" for k in extra)
        cases.append(Case(f"criteria.set_criterion/random-{name}", "criteria.set_criterion", profile,
                          {"num_classes": 4}, 500 + i, tags, lambda rng, p=profile, e=extra: detr_like(rng, p, **e)))
    cases.append(Case("criteria.set_criterion/random-realistic-detr", "criteria.set_criterion", "detr",
                      {"num_classes": 91}, 520, ("random", "size:realistic"),
                      lambda rng: detr_like(rng, "detr", q=100, c=91, layers=3, counts=(20, 7))))
    cases.append(Case("criteria.set_criterion/random-realistic-dino", "criteria.set_criterion", "dino",
                      {"num_classes": 91}, 521, ("random", "size:realistic"),
                      lambda rng: detr_like(rng, "dino", q=100, c=91, layers=2, counts=(12, 5), interm=True, dn=True)))
    for profile in ("detr", "dino"):
        cases.append(Case(f"criteria.set_criterion/edge-empty-targets-{profile}", "criteria.set_criterion", profile,
                          {"num_classes": 4}, 530, ("edge:empty-targets", "edge:all-background"),
                          lambda rng, p=profile: detr_like(rng, p, counts=(0, 0))))
        cases.append(Case(f"criteria.set_criterion/edge-mixed-empty-{profile}", "criteria.set_criterion", profile,
                          {"num_classes": 4}, 531, ("edge:empty-targets",),
                          lambda rng, p=profile: detr_like(rng, p, counts=(0, 2),
                                                           **({"dn": True} if p == "dino" else {}))))
        cases.append(Case(f"criteria.set_criterion/edge-more-targets-than-queries-{profile}", "criteria.set_criterion",
                          profile, {"num_classes": 4}, 532, ("edge:more-targets-than-queries",),
                          lambda rng, p=profile: detr_like(rng, p, q=2, counts=(5, 1))))
    cases.append(Case("criteria.set_criterion/edge-saturated-logits-deformable", "criteria.set_criterion",
                      "deformable_detr", {"num_classes": 4}, 533, ("edge:saturated-logits",),
                      lambda rng: _saturate(detr_like(rng, "deformable_detr"))))
    cases.append(Case("criteria.set_criterion/edge-single-query-detr", "criteria.set_criterion", "detr",
                      {"num_classes": 4}, 534, ("edge:single-query",), lambda rng: detr_like(rng, "detr", q=1)))
    # ultralytics' RT-DETR loss: DETRLoss with aux layers; RTDETRDetectionLoss with the encoder output (interm)
    # and denoising, as RTDETRDetectionModel.loss calls it.
    cases += [
        Case("criteria.set_criterion/random-ultralytics", "criteria.set_criterion", "ultralytics", {"num_classes": 4},
             540, ("random",), lambda rng: detr_like(rng, "ultralytics")),
        Case("criteria.set_criterion/random-ultralytics-dn", "criteria.set_criterion", "ultralytics",
             {"num_classes": 4}, 541, ("random",), lambda rng: detr_like(rng, "ultralytics", interm=True, dn=True)),
        Case("criteria.set_criterion/edge-empty-targets-ultralytics", "criteria.set_criterion", "ultralytics",
             {"num_classes": 4}, 542, ("edge:empty-targets", "edge:all-background"),
             lambda rng: detr_like(rng, "ultralytics", counts=(0, 0), interm=True, dn=True)),
        Case("criteria.set_criterion/edge-mixed-empty-ultralytics", "criteria.set_criterion", "ultralytics",
             {"num_classes": 4}, 543, ("edge:empty-targets",),
             lambda rng: detr_like(rng, "ultralytics", counts=(0, 2), interm=True, dn=True)),
        # Fewer matched pairs (2 + 1) than targets (6): ultralytics normalises by the matched count.
        Case("criteria.set_criterion/edge-more-targets-than-queries-ultralytics", "criteria.set_criterion",
             "ultralytics", {"num_classes": 4}, 544, ("edge:more-targets-than-queries",),
             lambda rng: detr_like(rng, "ultralytics", q=2, counts=(5, 1))),
    ]

    def cdn(rng, counts, dn_number, num_classes=5, ratio=0.5):
        targets = rand_targets(rng, counts, num_classes)
        g = cdn_group_count(max(counts, default=0), dn_number)
        k = 2 * g * sum(counts)
        label_p = rng.random(k)
        chosen = int((label_p < ratio * 0.5).sum())
        draws = {"label_p": f64(label_p), "relabel": i64(rng.integers(0, num_classes, chosen)),
                 "box_sign": i64(rng.integers(0, 2, k * 4)).reshape(k, 4), "box_part": f64(rng.random((k, 4)))}
        return {"targets": targets, "draws": draws}
    cfg = {"label_noise_ratio": 0.5, "box_noise_scale": 1.0, "num_classes": 5, "num_queries": 6}
    cases += [
        Case("criteria.cdn/random-small", "criteria.cdn", "dino", {**cfg, "dn_number": 3}, 600, ("random",),
             lambda rng: cdn(rng, [3, 1], 3)),
        Case("criteria.cdn/random-dn-number-100", "criteria.cdn", "dino", {**cfg, "dn_number": 100}, 601, ("random",),
             lambda rng: cdn(rng, [7, 4], 100)),
        Case("criteria.cdn/edge-empty-targets", "criteria.cdn", "dino", {**cfg, "dn_number": 100}, 602,
             ("edge:empty-targets",), lambda rng: cdn(rng, [0, 0], 100)),
        Case("criteria.cdn/edge-mixed-empty", "criteria.cdn", "dino", {**cfg, "dn_number": 2}, 603,
             ("edge:empty-targets",), lambda rng: cdn(rng, [0, 2], 2)),
    ]

    def mmdet(rng, head, b=2, q=5, c=4, layers=2, counts=(2, 3), enc=False, dn=False):
        k = c + 1 if head == "detr" else c
        inputs = {"all_cls_scores": rand_logits(rng, (layers, b, q, k)),
                  "all_bbox_preds": torch.stack([torch.stack([rand_cxcywh(rng, q) for _ in range(b)])
                                                 for _ in range(layers)]),
                  "targets": rand_targets(rng, list(counts), c, image_size=(480.0, 640.0))}
        if enc:
            inputs["enc_cls_scores"] = rand_logits(rng, (b, 2 * q, k))
            inputs["enc_bbox_preds"] = torch.stack([rand_cxcywh(rng, 2 * q) for _ in range(b)])
        if dn:
            pad = 2 * 2 * max(counts)
            inputs["dn_meta"] = {"pad_size": torch.tensor(pad), "num_dn_group": torch.tensor(2)}
            inputs["dn_cls_scores"] = rand_logits(rng, (layers, b, pad, k))
            inputs["dn_bbox_preds"] = torch.stack([torch.stack([rand_cxcywh(rng, pad) for _ in range(b)])
                                                   for _ in range(layers)])
        return inputs
    cases += [
        Case("criteria.mmdet_detr_head/random-detr-head", "criteria.mmdet_detr_head", "mmdet",
             {"head": "detr", "num_classes": 4}, 700, ("random",), lambda rng: mmdet(rng, "detr")),
        Case("criteria.mmdet_detr_head/random-deformable-head-enc", "criteria.mmdet_detr_head", "mmdet",
             {"head": "deformable_detr", "num_classes": 4}, 701, ("random",),
             lambda rng: mmdet(rng, "deformable_detr", enc=True)),
        Case("criteria.mmdet_detr_head/random-dino-head-enc-dn", "criteria.mmdet_detr_head", "mmdet",
             {"head": "dino", "num_classes": 4}, 702, ("random",), lambda rng: mmdet(rng, "dino", enc=True, dn=True)),
        Case("criteria.mmdet_detr_head/edge-empty-targets-detr-head", "criteria.mmdet_detr_head", "mmdet",
             {"head": "detr", "num_classes": 4}, 703, ("edge:empty-targets", "edge:all-background"),
             lambda rng: mmdet(rng, "detr", counts=(0, 0))),
        Case("criteria.mmdet_detr_head/edge-more-targets-than-queries-dino", "criteria.mmdet_detr_head", "mmdet",
             {"head": "dino", "num_classes": 4}, 704, ("edge:more-targets-than-queries",),
             lambda rng: mmdet(rng, "dino", q=2, counts=(4, 1), dn=True)),
        # Every box on the first image: split over two ranks (--world-size=2), one rank has them all and the other
        # none, so the reduced normalisers differ most from each rank's own.
        Case("criteria.mmdet_detr_head/edge-one-image-without-targets-detr-head", "criteria.mmdet_detr_head", "mmdet",
             {"head": "detr", "num_classes": 4}, 705, ("edge:empty-targets",),
             lambda rng: mmdet(rng, "detr", counts=(3, 0))),
        Case("criteria.mmdet_detr_head/edge-one-image-without-targets-deformable-head",
             "criteria.mmdet_detr_head", "mmdet", {"head": "deformable_detr", "num_classes": 4}, 706,
             ("edge:empty-targets",), lambda rng: mmdet(rng, "deformable_detr", counts=(3, 0), enc=True)),
    ]
    return cases


def _saturate(inputs: Inputs) -> Inputs:
    outputs = inputs["outputs"]
    outputs["pred_logits"] = torch.where(outputs["pred_logits"] > 0, 30.0, -30.0).to(torch.float64)
    return inputs
