"""The case catalogue: which golden cases exist and how the reference runs them.

A :class:`~golden.case.Case` records its component, profile (the conventions), config and seed; its inputs
come from ``numpy.random.Generator(PCG64(seed))`` or are written out (edge cases, tagged
``edge:<what>``); golden/case.py has the record and the input builders. Outputs are the reference's canonical outputs (components/contract.py), with the
gradients of losses with respect to their float inputs (``grad.<input path>``), since gradients
are part of conformance (DESIGN §6).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from oracle import boxes as B
from oracle import conventions as conv
from oracle.criteria import cdn_group_count

from components.canonical import canonical_keys
from components.contract import COMPONENTS, reference_outputs

from .case import Case, Inputs, f64, i64, rand_cxcywh, rand_logits, rand_targets, rand_xyxy
from .dense_cases import dense_cases

__all__ = ["Case", "Inputs", "catalogue", "components_without_cases", "f64", "i64", "rand_cxcywh", "rand_logits",
           "rand_targets", "rand_xyxy", "run_case"]


def run_case(case: Case) -> tuple[Inputs, dict]:
    """The case's inputs and the reference's outputs (with gradients) for them."""
    inputs = case.inputs()
    return inputs, reference_outputs(case.component, inputs, case.config, case.profile)


# --------------------------------------------------------------------------- the cases

def _boxes_cases() -> list[Case]:
    cases = []
    fmts = ("xyxy", "cxcywh", "xywh")
    for i, (src, dst) in enumerate((s, d) for s in fmts for d in fmts if s != d):
        cases.append(Case(f"boxes.convert/{src}-to-{dst}", "boxes.convert", "detr", {"src": src, "dst": dst}, 100 + i,
                          ("random",), lambda rng, s=src: {"boxes": B.convert(rand_xyxy(rng, 6), "xyxy", s)}))
    cases.append(Case("boxes.convert/edge-zero-area-and-empty-batch", "boxes.convert", "detr",
                      {"src": "cxcywh", "dst": "xyxy"}, 0, ("edge:zero-area-boxes",),
                      lambda rng: {"boxes": f64([[0.5, 0.5, 0.0, 0.0], [0.2, 0.3, 0.0, 0.4]])}))
    cases.append(Case("boxes.area/random-xyxy", "boxes.area", "detr", {"fmt": "xyxy"}, 110, ("random",),
                      lambda rng: {"boxes": rand_xyxy(rng, 8, scale=640.0)}))
    cases.append(Case("boxes.area/edge-zero-area", "boxes.area", "detr", {"fmt": "xyxy"}, 0, ("edge:zero-area-boxes",),
                      lambda rng: {"boxes": f64([[1.0, 1.0, 1.0, 3.0], [2.0, 2.0, 5.0, 2.0], [0.0, 0.0, 0.0, 0.0]])}))

    profiles = {"detr": "box_iou", "dino": "box_iou", "mmdet": "box_iou", "torchvision": "box_iou",
                "ultralytics": "box_iou"}
    ops_by_profile = {"detr": ("iou", "giou"), "dino": ("iou", "giou"), "mmdet": ("iou", "iof", "giou"),
                      "torchvision": ("iou", "giou", "diou", "ciou"), "ultralytics": ("iou", "giou", "diou", "ciou")}
    seed = 200
    for profile, which in profiles.items():
        for op in ops_by_profile[profile]:
            seed += 1
            cases.append(Case(f"boxes.overlap/{op}-{profile}-pairwise", "boxes.overlap", profile,
                              {"op": op, "aligned": False, "fmt": "xyxy", "convention": which}, seed, ("random",),
                              lambda rng: {"boxes1": rand_xyxy(rng, 5), "boxes2": rand_xyxy(rng, 4)}))
    for op in ("giou", "diou", "ciou"):
        seed += 1
        cases.append(Case(f"boxes.overlap/{op}-torchvision-loss-aligned-pixels", "boxes.overlap", "torchvision",
                          {"op": op, "aligned": True, "fmt": "xyxy", "convention": "iou_loss"}, seed, ("random",),
                          lambda rng: {"boxes1": rand_xyxy(rng, 7, scale=800.0), "boxes2": rand_xyxy(rng, 7, scale=800.0)}))
    cases.append(Case("boxes.overlap/ciou-mmdet-loss-aligned", "boxes.overlap", "mmdet",
                      {"op": "ciou", "aligned": True, "fmt": "xyxy", "convention": "IOU_MMDET_CIOU_LOSS"}, 230,
                      ("random",), lambda rng: {"boxes1": rand_xyxy(rng, 6), "boxes2": rand_xyxy(rng, 6)}))
    cases.append(Case("boxes.overlap/giou-detr-cxcywh-realistic", "boxes.overlap", "detr",
                      {"op": "giou", "aligned": False, "fmt": "cxcywh", "convention": "box_iou"}, 231, ("random", "size:realistic"),
                      lambda rng: {"boxes1": rand_cxcywh(rng, 300), "boxes2": rand_cxcywh(rng, 50)}))

    identical = lambda rng: {"boxes1": f64([[0.1, 0.2, 0.5, 0.6], [0.3, 0.3, 0.4, 0.9]]),  # noqa: E731
                             "boxes2": f64([[0.1, 0.2, 0.5, 0.6], [0.3, 0.3, 0.4, 0.9]])}
    for op in ("iou", "giou", "diou", "ciou"):
        cases.append(Case(f"boxes.overlap/edge-identical-{op}", "boxes.overlap", "torchvision",
                          {"op": op, "aligned": False, "fmt": "xyxy", "convention": "box_iou"}, 0,
                          ("edge:identical-boxes",), identical))
    zero_area = lambda rng: {"boxes1": f64([[0.3, 0.3, 0.3, 0.3], [0.1, 0.1, 0.4, 0.1]]),  # noqa: E731
                             "boxes2": f64([[0.3, 0.3, 0.3, 0.3], [0.2, 0.0, 0.5, 0.5]])}
    for profile in ("dino", "mmdet", "ultralytics"):
        cases.append(Case(f"boxes.overlap/edge-zero-area-giou-{profile}", "boxes.overlap", profile,
                          {"op": "giou", "aligned": False, "fmt": "xyxy", "convention": "box_iou"}, 0,
                          ("edge:zero-area-boxes",), zero_area))
    cases.append(Case("boxes.overlap/edge-ciou-at-iou-threshold-mmdet", "boxes.overlap", "mmdet",
                      {"op": "ciou", "aligned": True, "fmt": "xyxy", "convention": "IOU_MMDET_CIOU_LOSS"}, 0,
                      ("edge:iou-at-threshold",),
                      lambda rng: {"boxes1": f64([[0.0, 0.0, 4.0, 2.0], [0.0, 0.0, 4.0, 2.0]]),
                                   "boxes2": f64([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.25, 2.0]])}))
    cases.append(Case("boxes.overlap/edge-disjoint-and-nested", "boxes.overlap", "detr",
                      {"op": "giou", "aligned": False, "fmt": "xyxy", "convention": "box_iou"}, 0,
                      ("edge:disjoint-boxes", "edge:nested-boxes"),
                      lambda rng: {"boxes1": f64([[0.0, 0.0, 0.1, 0.1], [0.2, 0.2, 0.8, 0.8]]),
                                   "boxes2": f64([[0.9, 0.9, 1.0, 1.0], [0.3, 0.3, 0.4, 0.5]])}))
    return cases


def _loss_cases() -> list[Case]:
    cases = []
    eps = conv.FLT_EPS

    def ce(rng, n=6, c=5, ignore=False):
        labels = rng.integers(0, c, n)
        if ignore:
            labels[::3] = -100
        return {"logits": rand_logits(rng, (n, c)), "labels": i64(labels), "class_weight": f64(rng.random(c) + 0.1)}
    cases += [
        Case("losses.softmax_cross_entropy/random-class-weight-mean", "losses.softmax_cross_entropy", "detr",
             {"reduction": "mean"}, 300, ("random",), ce),
        Case("losses.softmax_cross_entropy/random-ignore-index-avg-factor-mmdet", "losses.softmax_cross_entropy", "mmdet",
             {"reduction": "mean", "ignore_index": -100, "avg_factor": 3.0, "avg_factor_eps": eps}, 301, ("random",),
             lambda rng: ce(rng, ignore=True)),
        Case("losses.softmax_cross_entropy/edge-saturated-logits", "losses.softmax_cross_entropy", "detr",
             {"reduction": "none"}, 0, ("edge:saturated-logits",),
             lambda rng: {"logits": f64([[30.0, -30.0, 0.0], [-30.0, -30.0, 30.0], [800.0, -800.0, 0.0]]),
                          "labels": i64([1, 2, 0])}),
        Case("losses.sigmoid_binary_cross_entropy/random-pos-weight", "losses.sigmoid_binary_cross_entropy", "mmdet",
             {"reduction": "sum"}, 310, ("random",),
             lambda rng: {"logits": rand_logits(rng, (4, 3)), "targets": f64(rng.random((4, 3))),
                          "pos_weight": f64(rng.random(3) * 2)}),
        Case("losses.sigmoid_binary_cross_entropy/edge-saturated-logits", "losses.sigmoid_binary_cross_entropy",
             "mmdet", {"reduction": "none"}, 0, ("edge:saturated-logits",),
             lambda rng: {"logits": f64([30.0, -30.0, 800.0, -800.0]), "targets": f64([0.0, 1.0, 0.0, 1.0])}),
    ]
    for i, (alpha, gamma, reduction, profile) in enumerate([(0.25, 2.0, "sum", "dino"), (None, 2.0, "mean", "torchvision"),
                                                            (0.5, 1.5, "none", "ultralytics"), (0.25, 0.0, "sum", "detr")]):
        cases.append(Case(f"losses.sigmoid_focal_loss/random-alpha{alpha}-gamma{gamma}-{reduction}",
                          "losses.sigmoid_focal_loss", profile, {"alpha": alpha, "gamma": gamma, "reduction": reduction},
                          320 + i, ("random",),
                          lambda rng: {"logits": rand_logits(rng, (5, 4)), "targets": f64(rng.random((5, 4)) > 0.7)}))
    cases += [
        Case("losses.sigmoid_focal_loss/soft-targets-weight-avg-factor-mmdet", "losses.sigmoid_focal_loss", "mmdet",
             {"alpha": 0.25, "gamma": 2.0, "reduction": "mean", "avg_factor": 4.0, "avg_factor_eps": eps}, 330,
             ("random",), lambda rng: {"logits": rand_logits(rng, (6, 3)), "targets": f64(rng.random((6, 3))),
                                       "weight": f64(rng.random((6, 1)))}),
        Case("losses.sigmoid_focal_loss/edge-saturated-logits", "losses.sigmoid_focal_loss", "dino",
             {"alpha": 0.25, "gamma": 2.0, "reduction": "none"}, 0, ("edge:saturated-logits",),
             lambda rng: {"logits": f64([30.0, -30.0, 16.7, 20.0, -90.0]), "targets": f64([0.0, 1.0, 0.0, 0.0, 1.0])}),
        Case("losses.sigmoid_focal_loss/random-realistic-detr-size", "losses.sigmoid_focal_loss", "dino",
             {"alpha": 0.25, "gamma": 2.0, "reduction": "mean", "avg_factor": 20.0}, 331, ("random", "size:realistic"),
             lambda rng: {"logits": rand_logits(rng, (2, 300, 91)), "targets": f64(rng.random((2, 300, 91)) > 0.999)}),
        Case("losses.l1_loss/random-weight-avg-factor", "losses.l1_loss", "mmdet",
             {"reduction": "mean", "avg_factor": 2.0, "avg_factor_eps": eps}, 340, ("random",),
             lambda rng: {"pred": f64(rng.random((3, 4))), "target": f64(rng.random((3, 4))),
                          "weight": f64(rng.random((3, 4)) > 0.3)}),
        Case("losses.smooth_l1_loss/random-beta", "losses.smooth_l1_loss", "mmdet", {"beta": 0.11, "reduction": "sum"},
             341, ("random",), lambda rng: {"pred": f64(rng.random((5, 4))), "target": f64(rng.random((5, 4)))}),
        Case("losses.smooth_l1_loss/edge-beta-zero-and-boundary", "losses.smooth_l1_loss", "torchvision",
             {"beta": 0.0, "reduction": "none"}, 0, ("edge:beta-zero",),
             lambda rng: {"pred": f64([0.0, 1.0, 0.5]), "target": f64([0.0, 0.5, 1.5])}),
        Case("losses.smooth_l1_loss/edge-at-beta", "losses.smooth_l1_loss", "mmdet", {"beta": 1.0, "reduction": "none"},
             0, ("edge:at-threshold",), lambda rng: {"pred": f64([0.0, 1.0, 2.0]), "target": f64([1.0, 1.0, 0.0])}),
    ]
    for i, (name, profile, which) in enumerate([("giou_loss", "detr", "iou_loss"), ("giou_loss", "mmdet", "iou_loss"),
                                                ("giou_loss", "torchvision", "iou_loss"),
                                                ("diou_loss", "torchvision", "iou_loss"),
                                                ("ciou_loss", "ultralytics", "iou_loss"),
                                                ("ciou_loss", "mmdet", "IOU_MMDET_CIOU_LOSS"),
                                                ("ciou_loss", "torchvision", "iou_loss")]):
        cases.append(Case(f"losses.{name}/random-{profile}", f"losses.{name}", profile,
                          {"convention": which, "reduction": "mean"}, 350 + i, ("random",),
                          lambda rng: {"pred": rand_xyxy(rng, 6, scale=100.0), "target": rand_xyxy(rng, 6, scale=100.0)}))
    cases.append(Case("losses.l1_loss/edge-empty", "losses.l1_loss", "detr", {"reduction": "mean", "avg_factor": 1.0},
                      0, ("edge:empty-targets",), lambda rng: {"pred": f64(np.zeros((0, 4))), "target": f64(np.zeros((0, 4)))}))
    cases.append(Case("losses.diou_loss/edge-identical-and-concentric", "losses.diou_loss", "torchvision",
                      {"convention": "iou_loss", "reduction": "none"}, 0, ("edge:identical-boxes",),
                      lambda rng: {"pred": f64([[0.1, 0.1, 0.5, 0.5], [0.0, 0.0, 1.0, 1.0]]),
                                   "target": f64([[0.1, 0.1, 0.5, 0.5], [0.25, 0.25, 0.75, 0.75]])}))
    cases.append(Case("losses.ciou_loss/edge-zero-height-ultralytics", "losses.ciou_loss", "ultralytics",
                      {"convention": "iou_loss", "reduction": "none"}, 0, ("edge:zero-area-boxes",),
                      lambda rng: {"pred": f64([[0.0, 0.0, 1.0, 0.0], [0.2, 0.2, 0.2, 0.2]]),
                                   "target": f64([[0.0, 0.0, 1.0, 1.0], [0.1, 0.1, 0.3, 0.3]])}))
    cases.append(Case("losses.giou_loss/edge-zero-area-torchvision", "losses.giou_loss", "torchvision",
                      {"convention": "iou_loss", "reduction": "none"}, 0, ("edge:zero-area-boxes",),
                      lambda rng: {"pred": f64([[0.2, 0.2, 0.2, 0.2], [0.0, 0.0, 0.5, 0.0]]),
                                   "target": f64([[0.2, 0.2, 0.2, 0.2], [0.1, 0.0, 0.3, 0.4]])}))
    cases += [
        Case("losses.dice_loss/random-detr", "losses.dice_loss", "detr", {"reduction": "mean", "avg_factor": 3.0}, 360,
             ("random",), lambda rng: {"logits": rand_logits(rng, (3, 8, 6)), "targets": f64(rng.random((3, 8, 6)) > 0.5)}),
        Case("losses.dice_loss/edge-empty-masks", "losses.dice_loss", "detr", {"reduction": "none"}, 0,
             ("edge:empty-masks",), lambda rng: {"logits": f64([[-30.0] * 4, [0.0] * 4]), "targets": f64([[0.0] * 4] * 2)}),
    ]
    return cases


def _hungarian_cases() -> list[Case]:
    cases = []

    def problem(rng, b, q, counts, c, softmax, pixel=False):
        k = c + 1 if softmax else c
        return {"pred_logits": rand_logits(rng, (b, q, k)), "pred_boxes": torch.stack([rand_cxcywh(rng, q) for _ in range(b)]),
                "targets": rand_targets(rng, counts, c, image_size=(480.0, 640.0) if pixel else None)}
    for i, profile in enumerate(("detr", "deformable_detr", "hf_deformable_detr", "dino", "mmdet", "ultralytics")):
        softmax = conv.get_profile(profile).matcher.class_cost == "softmax"
        pixel = conv.get_profile(profile).matcher.giou.units == "pixel"
        cases.append(Case(f"assign.hungarian/random-small-{profile}", "assign.hungarian", profile, {}, 400 + i,
                          ("random",), lambda rng, s=softmax, p=pixel: problem(rng, 2, 6, [3, 4], 5, s, p)))
    cases.append(Case("assign.hungarian/random-realistic-detr", "assign.hungarian", "detr", {}, 410,
                      ("random", "size:realistic"), lambda rng: problem(rng, 2, 100, [20, 7], 91, True)))
    cases.append(Case("assign.hungarian/random-realistic-dino", "assign.hungarian", "dino", {}, 411,
                      ("random", "size:realistic"), lambda rng: problem(rng, 2, 300, [50, 3], 91, False)))
    cases.append(Case("assign.hungarian/edge-empty-targets", "assign.hungarian", "detr", {}, 420,
                      ("edge:empty-targets",), lambda rng: problem(rng, 2, 4, [0, 2], 3, True)))
    cases.append(Case("assign.hungarian/edge-more-targets-than-queries", "assign.hungarian", "dino", {}, 421,
                      ("edge:more-targets-than-queries",), lambda rng: problem(rng, 1, 3, [6], 4, False)))
    cases.append(Case("assign.hungarian/edge-empty-targets-ultralytics", "assign.hungarian", "ultralytics", {}, 423,
                      ("edge:empty-targets",), lambda rng: problem(rng, 3, 4, [0, 3, 0], 3, False)))
    cases.append(Case("assign.hungarian/edge-more-targets-than-queries-ultralytics", "assign.hungarian", "ultralytics",
                      {}, 424, ("edge:more-targets-than-queries",), lambda rng: problem(rng, 2, 3, [5, 2], 4, False)))
    cases.append(Case("assign.hungarian/edge-saturated-logits", "assign.hungarian", "mmdet", {}, 422,
                      ("edge:saturated-logits",),
                      lambda rng: {**problem(rng, 1, 4, [2], 3, True, True),
                                   "pred_logits": f64([[[30.0, -30, -30, -30], [-30, 30, -30, -30], [-30, -30, -30, 30],
                                                        [30, 30, -30, -30]]])}))

    def tie(rng):
        # Two identical queries and one target: both matchings cost the same; the declared tie-break is
        # what scipy's linear_sum_assignment returns on the float64 matrix.
        return {"pred_logits": f64([[[1.0, 0.0, -1.0], [1.0, 0.0, -1.0]]]),
                "pred_boxes": f64([[[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2]]]),
                "targets": [{"labels": i64([0]), "boxes": f64([[0.45, 0.5, 0.2, 0.3]])}]}
    cases.append(Case("assign.hungarian/edge-tie-declared-tie-break", "assign.hungarian", "detr", {}, 0,
                      ("edge:tie",), tie))
    return cases


def _layer(rng, b, q, k):
    return {"pred_logits": rand_logits(rng, (b, q, k)), "pred_boxes": torch.stack([rand_cxcywh(rng, q) for _ in range(b)])}


def _criterion_cases() -> list[Case]:
    cases = []

    def detr_like(rng, profile, b=2, q=6, c=4, layers=3, counts=(3, 1), **extra):
        k = c + 1 if conv.get_profile(profile).criterion.classification == "softmax" else c
        outputs = {**_layer(rng, b, q, k), "aux_outputs": [_layer(rng, b, q, k) for _ in range(layers - 1)]}
        if extra.get("enc"):
            outputs["enc_outputs"] = _layer(rng, b, 2 * q, k)
        if extra.get("interm"):
            outputs["interm_outputs"] = _layer(rng, b, q, k)
        inputs = {"outputs": outputs, "targets": rand_targets(rng, list(counts), c,
                                                              masks=(5, 7) if extra.get("masks") else None)}
        if extra.get("masks"):
            outputs["pred_masks"] = rand_logits(rng, (b, q, 3, 4))
        if extra.get("dn"):
            max_n = max(counts)
            groups = 2
            pad = 2 * groups * max_n
            outputs["dn_meta"] = {"pad_size": torch.tensor(pad), "num_dn_group": torch.tensor(groups)}
            outputs["dn_outputs"] = {**_layer(rng, b, pad, k), "aux_outputs": [_layer(rng, b, pad, k)
                                                                                for _ in range(layers - 1)]}
        if extra.get("world"):
            inputs["world_num_boxes"] = f64(extra["world"])
        return inputs
    specs = [
        ("detr", {}, ("random",)), ("hf_detr", {}, ("random",)), ("deformable_detr", {"enc": True}, ("random",)),
        ("hf_deformable_detr", {}, ("random",)), ("dino", {"interm": True, "dn": True}, ("random",)),
        ("detr", {"masks": True}, ("random", "with:masks")), ("detr", {"world": [4.0, 2.0, 0.0]}, ("random", "with:world")),
    ]
    for i, (profile, extra, tags) in enumerate(specs):
        name = profile + "".join(f"-{k}" for k in extra)
        cases.append(Case(f"criteria.set_criterion/random-{name}", "criteria.set_criterion", profile, {"num_classes": 4},
                          500 + i, tags, lambda rng, p=profile, e=extra: detr_like(rng, p, **e)))
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
                          lambda rng, p=profile: detr_like(rng, p, counts=(0, 2), **({"dn": True} if p == "dino" else {}))))
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
        return {"targets": targets, "draws": {"label_p": f64(label_p), "relabel": i64(rng.integers(0, num_classes, chosen)),
                                               "box_sign": i64(rng.integers(0, 2, k * 4)).reshape(k, 4),
                                               "box_part": f64(rng.random((k, 4)))}}
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
    ]
    return cases


def _saturate(inputs: Inputs) -> Inputs:
    outputs = inputs["outputs"]
    outputs["pred_logits"] = torch.where(outputs["pred_logits"] > 0, 30.0, -30.0).to(torch.float64)
    return inputs




def _encoder_cases() -> list[Case]:
    from oracle import masks as M
    from oracle import params as P
    cases = [
        Case("masks.padding/random", "masks.padding", "detr", {"padded_shape": [12, 17]}, 800, ("random",),
             lambda rng: {"image_sizes": torch.as_tensor(np.stack([rng.integers(1, 13, 3), rng.integers(1, 18, 3)], 1))}),
        Case("masks.padding/edge-1x1-valid-region", "masks.padding", "detr", {"padded_shape": [4, 5]}, 0,
             ("edge:fully-padded-rows",), lambda rng: {"image_sizes": torch.tensor([[1, 1], [4, 5]])}),
    ]
    resize_specs = [("non-square", [(20, 37), (33, 15)], (33, 37), (5, 7), ("random", "edge:non-square-maps")),
                    ("image-smaller-than-stride", [(5, 3)], (32, 32), (1, 1), ("edge:image-smaller-than-stride",)),
                    ("float32-scale-boundary", [(1, 2)], (2, 2), (82, 82), ("edge:float32-rounding",)),
                    ("unrepresentable-scale", [(100, 7)], (100, 7), (3, 3), ("edge:unrepresentable-scale",)),
                    ("detr-sizes", [(800, 1066), (608, 1199)], (800, 1199), (25, 38), ("random", "size:realistic"))]
    for name, sizes, padded, feature, tags in resize_specs:
        cases.append(Case(f"masks.resize/{name}", "masks.resize", "detr", {"size": list(feature)}, 0, tags,
                          lambda rng, s=sizes, p=padded: {"mask": M.padding_mask(s, p)}))
    cases += [
        Case("masks.crop/random", "masks.crop", "ultralytics", {}, 810, ("random",),
             lambda rng: {"masks": f64(rng.random((3, 8, 10)) > 0.4), "boxes": f64(np.sort(rng.random((3, 2, 2)) * [10, 8],
                                                                                      axis=1).reshape(3, 4)[:, [0, 1, 2, 3]])}),
        Case("masks.crop/edge-fractional-and-empty-boxes", "masks.crop", "ultralytics", {}, 0, ("edge:zero-area-boxes",),
             lambda rng: {"masks": f64(np.ones((2, 4, 6))), "boxes": f64([[1.0, 0.5, 3.0, 2.0], [2.0, 2.0, 2.0, 3.0]])}),
        Case("masks.downsample/random", "masks.downsample", "ultralytics", {"size": [7, 9]}, 811, ("random",),
             lambda rng: {"masks": f64(rng.random((2, 28, 36)) > 0.5)}),
        Case("masks.downsample/edge-odd-factor", "masks.downsample", "ultralytics", {"size": [3, 3]}, 812,
             ("edge:unrepresentable-scale",), lambda rng: {"masks": f64(rng.random((1, 10, 7)) > 0.5)}),
    ]
    for profile in ("detr", "deformable_detr", "dino", "mmdet"):
        cases.append(Case(f"position.sine/random-{profile}", "position.sine", profile, {"num_feats": 16}, 820,
                          ("random",), lambda rng: {"mask": M.padding_mask([(5, 7), (3, 9), (6, 2)], (6, 9))}))
        cases.append(Case(f"position.sine/edge-fully-padded-rows-{profile}", "position.sine", profile, {"num_feats": 8},
                          0, ("edge:fully-padded-rows", "edge:non-square-maps"),
                          lambda rng: {"mask": M.padding_mask([(1, 1), (2, 5)], (4, 7))}))
    cases.append(Case("position.sine/no-mask-detr-sizes", "position.sine", "detr", {"shape": [2, 25, 38], "num_feats": 32}, 0,
                      ("random", "size:realistic"), lambda rng: {}))

    def encoder_inputs(rng, sizes, padded, e=16, heads=2, layers=2, seed=830):
        mask = M.padding_mask(sizes, padded)
        b = len(sizes)
        pos = __import__("oracle.position", fromlist=["x"]).sine_position_encoding(
            mask, convention=conv.SinePEConvention(num_feats=e // 2))
        return {"src": f64(rng.standard_normal((b, padded[0] * padded[1], e))),
                "pos": pos.flatten(2).transpose(1, 2).contiguous(), "key_padding_mask": mask.flatten(1),
                "weights": canonical_keys(P.encoder_weights(e, 2 * e, layers, seed))}
    cases += [
        Case("transformer.encoder/random-padded", "transformer.encoder", "detr", {"num_layers": 2, "num_heads": 2}, 830,
             ("random",), lambda rng: encoder_inputs(rng, [(3, 4), (2, 5)], (3, 5))),
        Case("transformer.encoder/edge-fully-padded-image", "transformer.encoder", "detr",
             {"num_layers": 1, "num_heads": 2}, 831, ("edge:fully-padded-rows",),
             lambda rng: {**encoder_inputs(rng, [(2, 3)], (2, 3), layers=1),
                          "key_padding_mask": torch.ones(1, 6, dtype=torch.bool)}),
    ]

    def decoder_inputs(rng, b=2, q=4, mem=6, e=16, layers=3, pad=None):
        out = {"tgt": f64(np.zeros((b, q, e))), "memory": f64(rng.standard_normal((b, mem, e))),
               "pos": f64(rng.standard_normal((b, mem, e))), "query_pos": f64(rng.standard_normal((b, q, e))),
               "weights": canonical_keys(P.decoder_weights(e, 2 * e, layers, 840))}
        if pad is not None:
            out["memory_key_padding_mask"] = pad
        return out
    cases += [
        Case("transformer.decoder/random-intermediate", "transformer.decoder", "detr", {"num_layers": 3, "num_heads": 4},
             840, ("random",), lambda rng: decoder_inputs(rng, pad=torch.tensor([[False] * 6, [False] * 4 + [True] * 2]))),
        Case("transformer.decoder/edge-all-memory-padded", "transformer.decoder", "detr",
             {"num_layers": 2, "num_heads": 2, "return_intermediate": False}, 841, ("edge:fully-padded-rows",),
             lambda rng: decoder_inputs(rng, b=1, layers=2, pad=torch.ones(1, 6, dtype=torch.bool))),
        Case("heads.detr/random", "heads.detr", "detr", {"num_reg_fcs": 2}, 850, ("random",),
             lambda rng: {"hidden": f64(rng.standard_normal((3, 2, 5, 16))),
                          "weights": canonical_keys(P.detr_head_weights(16, 6, 850))}),
        Case("heads.detr/edge-saturated", "heads.detr", "detr", {"num_reg_fcs": 2}, 851, ("edge:saturated-logits",),
             lambda rng: {"hidden": f64(rng.standard_normal((1, 1, 3, 16)) * 40.0),
                          "weights": canonical_keys(P.detr_head_weights(16, 6, 851))}),
    ]
    return cases


@functools.lru_cache(maxsize=1)
def catalogue() -> tuple[Case, ...]:
    """Every case, in a fixed order; names are unique."""
    cases = tuple(_boxes_cases() + _loss_cases() + _hungarian_cases() + _criterion_cases() + _encoder_cases()
                  + dense_cases())
    names = [c.name for c in cases]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RuntimeError(f"duplicate golden case names: {duplicates}")
    unknown = sorted({c.component for c in cases} - set(COMPONENTS))
    if unknown:
        raise RuntimeError(f"cases of unknown components: {unknown}")
    return cases


def components_without_cases() -> list[str]:
    """Components with no random or no edge case (tests assert this is empty)."""
    missing = []
    for component in COMPONENTS:
        tags = [t for c in catalogue() if c.component == component for t in c.tags]
        if "random" not in tags or not any(t.startswith("edge:") for t in tags):
            missing.append(component)
    return missing

