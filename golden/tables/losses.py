"""Golden cases of the losses (``losses.*``; conformance/test_losses.py)."""

from __future__ import annotations

import numpy as np

from oracle import conventions as conv

from ..case import Case, f64, i64, rand_logits, rand_xyxy


def _detr_family_cases() -> list[Case]:
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
        Case("losses.softmax_cross_entropy/random-ignore-index-avg-factor-mmdet", "losses.softmax_cross_entropy",
             "mmdet", {"reduction": "mean", "ignore_index": -100, "avg_factor": 3.0, "avg_factor_eps": eps}, 301,
             ("random",),
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
    focal_specs = [(0.25, 2.0, "sum", "dino"), (None, 2.0, "mean", "torchvision"), (0.5, 1.5, "none", "ultralytics"),
                   (0.25, 0.0, "sum", "detr")]
    for i, (alpha, gamma, reduction, profile) in enumerate(focal_specs):
        cases.append(Case(f"losses.sigmoid_focal_loss/random-alpha{alpha}-gamma{gamma}-{reduction}",
                          "losses.sigmoid_focal_loss", profile,
                          {"alpha": alpha, "gamma": gamma, "reduction": reduction}, 320 + i, ("random",),
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
                          lambda rng: {"pred": rand_xyxy(rng, 6, scale=100.0),
                                       "target": rand_xyxy(rng, 6, scale=100.0)}))
    cases.append(Case("losses.l1_loss/edge-empty", "losses.l1_loss", "detr", {"reduction": "mean", "avg_factor": 1.0},
                      0, ("edge:empty-targets",),
                      lambda rng: {"pred": f64(np.zeros((0, 4))), "target": f64(np.zeros((0, 4)))}))
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
             ("random",),
             lambda rng: {"logits": rand_logits(rng, (3, 8, 6)), "targets": f64(rng.random((3, 8, 6)) > 0.5)}),
        Case("losses.dice_loss/edge-empty-masks", "losses.dice_loss", "detr", {"reduction": "none"}, 0,
             ("edge:empty-masks",),
             lambda rng: {"logits": f64([[-30.0] * 4, [0.0] * 4]), "targets": f64([[0.0] * 4] * 2)}),
    ]
    return cases


def _dfl_cases() -> list[Case]:
    return [
        Case("losses.distribution_focal_loss/random", "losses.distribution_focal_loss", "ultralytics",
             {"reduction": "mean"}, 1500, ("random",),
             lambda rng: {"logits": f64(rng.standard_normal((6, 4, 16)) * 2),
                          "targets": f64(rng.uniform(0, 15, (6, 4)))}),
        # Integer targets (all weight on one bin) and targets outside [0, 14.99], which are clamped.
        Case("losses.distribution_focal_loss/edge-integer-and-clamped-targets", "losses.distribution_focal_loss",
             "ultralytics", {"reduction": "sum"}, 1501, ("edge:beyond-regressable-range",),
             lambda rng: {"logits": f64(rng.standard_normal((2, 4, 16))),
                          "targets": f64([[0.0, 3.0, 14.0, 20.0], [-1.0, 7.5, 15.0, 0.25]])}),
    ]


def cases() -> list[Case]:
    return _detr_family_cases() + _dfl_cases()
