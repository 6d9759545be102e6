"""Golden cases of the max-IoU assigner and the anchor-head loss (``assign.max_iou``,
``criteria.anchor_head``; conformance/test_anchor_head.py)."""

from __future__ import annotations

import numpy as np
import torch

from components.dense_calls import anchor_head_config

from ..case import Case, f64, i64, pixel_boxes


def _max_iou_cases() -> list[Case]:
    def random_problem(rng, n_priors=40, n_gt=5, ignore=False):
        out = {"priors": pixel_boxes(rng, n_priors, 128.0), "gt_boxes": pixel_boxes(rng, n_gt, 128.0),
               "gt_labels": i64(rng.integers(0, 4, n_gt))}
        if ignore:
            out["gt_boxes_ignore"] = pixel_boxes(rng, 2, 128.0)
        return out

    # Dyadic boxes, exact in every dtype: prior 0 has IoU 16/32 = 0.5 with GT 0, prior 1 16/40 = 0.4, prior 2
    # 16/64 = 0.25. GT 1 overlaps nothing: its best overlap is exactly min_pos_iou = 0, so the low-quality step
    # (>=) makes every prior of IoU 0 with it (all four) positive, for GT 1 (mmdet overwrites in GT order) or
    # for the prior's own best GT (torchvision), whatever the other thresholds decide: a case of the
    # min_pos_iou threshold and the zero-overlap GT. The pos/neg thresholds have cases of their own (below).
    exact = {"priors": f64([[0, 0, 4, 8], [0, 0, 4, 10], [0, 0, 8, 8], [50, 50, 54, 54]]),
             "gt_boxes": f64([[0, 0, 4, 4], [100, 100, 101, 101]]), "gt_labels": i64([1, 3])}
    # Each threshold decided by its comparison alone. GT 0 has a copy of itself among the priors (IoU 1, its best
    # prior), so the low-quality step makes no prior at a threshold positive: prior 1 at IoU 16/32 = 0.5 is
    # positive (>= pos_iou_thr), prior 2 at 16/40 = 0.4 ignored (not < neg_iou_thr), prior 3 at 16/64 negative,
    # prior 4 (IoU 0) negative (>= the range's floor 0).
    at_thresholds = {"priors": f64([[0, 0, 4, 4], [0, 0, 4, 8], [0, 0, 4, 10], [0, 0, 8, 8], [50, 50, 54, 54]]),
                     "gt_boxes": f64([[0, 0, 4, 4]]), "gt_labels": i64([2])}
    # RPN thresholds (0.7, negative range [0.1, 0.3), min_pos_iou 0.3) on GT 0 of area 40, with its copy as its
    # best prior: IoU 28/40 = 0.7 positive, 12/40 = 0.3 ignored, 4/40 = 0.1 negative, 2/40 below the range
    # ignored. GT 1's only prior has IoU 12/40 = 0.3 = min_pos_iou: the low-quality step makes it positive.
    rpn_at_thresholds = {"priors": f64([[0, 0, 4, 10], [0, 0, 4, 7], [0, 0, 4, 3], [0, 0, 4, 1], [0, 0, 4, 0.5],
                                        [20, 0, 24, 3]]),
                         "gt_boxes": f64([[0, 0, 4, 10], [20, 0, 24, 10]]), "gt_labels": i64([1, 3])}
    return [
        Case("assign.max_iou/random-retinanet-mmdet", "assign.max_iou", "mmdet",
             {"convention": "MAX_IOU_RETINANET_MMDET"}, 1200, ("random",), random_problem),
        Case("assign.max_iou/random-rpn-range-and-ignore-mmdet", "assign.max_iou", "mmdet",
             {"convention": "MAX_IOU_RPN_MMDET", "convention_overrides": {"neg_iou_thr": [0.1, 0.3],
                                                                          "ignore_iof_thr": 0.5}}, 1201,
             ("random",), lambda rng: random_problem(rng, ignore=True)),
        Case("assign.max_iou/random-retinanet-torchvision", "assign.max_iou", "torchvision",
             {"convention": "MAX_IOU_RETINANET_TORCHVISION"}, 1202, ("random",), random_problem),
        Case("assign.max_iou/edge-exact-thresholds-zero-overlap-gt-mmdet", "assign.max_iou", "mmdet",
             {"convention": "MAX_IOU_RETINANET_MMDET"}, 0, ("edge:iou-at-threshold", "edge:zero-overlap-gt"),
             lambda rng: exact),
        Case("assign.max_iou/edge-exact-thresholds-zero-overlap-gt-torchvision", "assign.max_iou", "torchvision",
             {"convention": "MAX_IOU_RETINANET_TORCHVISION"}, 0, ("edge:iou-at-threshold", "edge:zero-overlap-gt"),
             lambda rng: exact),
        Case("assign.max_iou/edge-at-pos-and-neg-thresholds-mmdet", "assign.max_iou", "mmdet",
             {"convention": "MAX_IOU_RETINANET_MMDET"}, 0, ("edge:iou-at-threshold",), lambda rng: at_thresholds),
        Case("assign.max_iou/edge-at-pos-and-neg-thresholds-torchvision", "assign.max_iou", "torchvision",
             {"convention": "MAX_IOU_RETINANET_TORCHVISION"}, 0, ("edge:iou-at-threshold",),
             lambda rng: at_thresholds),
        Case("assign.max_iou/edge-at-thresholds-rpn-range-mmdet", "assign.max_iou", "mmdet",
             {"convention": "MAX_IOU_RPN_MMDET", "convention_overrides": {"neg_iou_thr": [0.1, 0.3]}}, 0,
             ("edge:iou-at-threshold",), lambda rng: rpn_at_thresholds),
        *[Case(f"assign.max_iou/edge-no-targets{suffix}", "assign.max_iou", profile, {"convention": convention},
               1203, ("edge:empty-targets",),
               lambda rng: {"priors": pixel_boxes(rng, 6, 64.0), "gt_boxes": f64(np.zeros((0, 4))),
                            "gt_labels": i64([])})
          for suffix, profile, convention in (("", "mmdet", "MAX_IOU_RETINANET_MMDET"),
                                              ("-torchvision", "torchvision", "MAX_IOU_RETINANET_TORCHVISION"))],
    ]


def _anchor_head_cases() -> list[Case]:
    metas = [{"img_shape": [60, 90], "pad_shape": [64, 96]}, {"img_shape": [64, 80], "pad_shape": [64, 96]}]
    num_classes = 3

    def inputs(rng, config, counts):
        """Head outputs for the config's levels, and targets near (jittered from) distinct anchors, so that
        each GT's best anchor is unique: an exact IoU tie would let float32 rounding pick the assignment."""
        head = anchor_head_config(config)
        gen = head.anchor_generator
        sizes = [(-(-64 // int(s)), -(-96 // int(s))) for s in gen.strides]
        anchors = torch.cat(gen.grid_anchors(sizes)).numpy()
        a = gen.num_base_anchors[0]
        out = {"cls_scores": [f64(rng.standard_normal((2, a * head.cls_out_channels(num_classes), h, w)) * 2)
                              for h, w in sizes],
               "bbox_preds": [f64(rng.standard_normal((2, a * 4, h, w)) * 0.3) for h, w in sizes], "targets": []}
        for image, n in enumerate(counts):
            h, w = metas[image]["img_shape"]
            inside = np.nonzero((anchors[:, 0] >= 0) & (anchors[:, 1] >= 0) & (anchors[:, 2] <= w)
                                & (anchors[:, 3] <= h))[0]
            chosen = anchors[rng.choice(inside, size=n, replace=False)] if n else np.zeros((0, 4))
            jitter = rng.uniform(-3.0, 3.0, size=chosen.shape)
            boxes = np.clip(chosen + jitter, 0, [w, h, w, h])
            out["targets"].append({"boxes": f64(boxes.reshape(-1, 4)), "labels": i64(rng.integers(0, num_classes, n))})
        return out

    def case(name, head, seed, tags, counts, extra=None):
        config = {"head": head, "num_classes": num_classes, "img_metas": metas, **(extra or {})}
        return Case(f"criteria.anchor_head/{name}", "criteria.anchor_head", "mmdet", config, seed, tags,
                    lambda rng: inputs(rng, config, counts))
    return [
        case("random-retinanet", "RETINANET_HEAD_MMDET", 1300, ("random",), [3, 2]),
        case("random-plain-anchor-head", "ANCHOR_HEAD_MMDET", 1301, ("random",), [2, 4]),
        case("edge-image-without-targets-retinanet", "RETINANET_HEAD_MMDET", 1302, ("edge:empty-targets",), [0, 3]),
        case("edge-batch-without-targets-retinanet", "RETINANET_HEAD_MMDET", 1303, ("edge:empty-targets",), [0, 0]),
    ]


def cases() -> list[Case]:
    return _max_iou_cases() + _anchor_head_cases()
