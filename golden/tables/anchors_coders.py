"""Golden cases of the anchors and the box coders (``anchors.*``, ``coders.*``;
conformance/test_anchors_coders.py)."""

from __future__ import annotations

import numpy as np


from ..case import Case, f64, pixel_boxes, rand_xyxy


RETINANET = {"strides": [8, 16, 32, 64, 128], "ratios": [0.5, 1.0, 2.0], "octave_base_scale": 4,
             "scales_per_octave": 3}


def _anchor_cases() -> list[Case]:
    # A 100 x 130 image padded to 104 x 136 (size divisor 8): the feature maps are ceil(pad / stride).
    retina_sizes = [[13, 17], [7, 9], [4, 5], [2, 3], [1, 2]]
    return [
        Case("anchors.grid/retinanet-5-levels", "anchors.grid", "mmdet",
             {**RETINANET, "featmap_sizes": retina_sizes, "pad_shape": [100, 130]}, 0, ("random",), lambda rng: {}),
        Case("anchors.grid/edge-offset-ratio-major-rectangular-stride", "anchors.grid", "mmdet",
             {"strides": [[8, 4]], "ratios": [0.5, 2.0], "scales": [1, 3], "scale_major": False, "center_offset": 0.5,
              "featmap_sizes": [[3, 2]], "pad_shape": [5, 9]}, 0, ("edge:partial-valid-flags",), lambda rng: {}),
        Case("anchors.points/yolov8-640", "anchors.points", "ultralytics",
             {"featmap_sizes": [[80, 80], [40, 40], [20, 20]], "strides": [8, 16, 32], "offset": 0.5}, 0,
             ("random", "size:realistic"), lambda rng: {}),
        Case("anchors.points/edge-empty-level", "anchors.points", "ultralytics",
             {"featmap_sizes": [[2, 3], [0, 2], [1, 1]], "strides": [8, 16, 32], "offset": 0.5}, 0,
             ("edge:empty-level",), lambda rng: {}),
    ]


def _coder_cases() -> list[Case]:
    mmdet_stds = {"means": [0.0, 0.0, 0.0, 0.0], "stds": [0.1, 0.1, 0.2, 0.2]}
    return [
        Case("coders.delta_xywh_encode/random-mmdet-stds", "coders.delta_xywh_encode", "mmdet", mmdet_stds, 1100,
             ("random",), lambda rng: {"anchors": pixel_boxes(rng, 12), "gt": pixel_boxes(rng, 12)}),
        Case("coders.delta_xywh_encode/edge-extreme-size-ratio", "coders.delta_xywh_encode", "mmdet", {}, 0,
             ("edge:extreme-size-ratio",),
             lambda rng: {"anchors": f64([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 512.0, 2.0]]),
                          "gt": f64([[0.0, 0.0, 1000.0, 0.001], [100.0, 100.0, 100.5, 900.0]])}),
        Case("coders.delta_xywh_decode/random-mmdet-clipped", "coders.delta_xywh_decode", "mmdet",
             {**mmdet_stds, "max_shape": [480, 640]}, 1101, ("random",),
             lambda rng: {"anchors": pixel_boxes(rng, 12), "deltas": f64(rng.standard_normal((12, 4)))}),
        Case("coders.delta_xywh_decode/random-torchvision-rcnn", "coders.delta_xywh_decode", "torchvision",
             {"stds": [0.1, 0.1, 0.2, 0.2], "wh_clamp": "upper", "clip_border": False}, 1102, ("random",),
             lambda rng: {"anchors": pixel_boxes(rng, 12), "deltas": f64(rng.standard_normal((12, 4)))}),
        Case("coders.delta_xywh_decode/edge-clamped-size-deltas", "coders.delta_xywh_decode", "mmdet", {}, 0,
             ("edge:clamped-deltas",),
             lambda rng: {"anchors": f64([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 9.0, 7.0], [0.0, 0.0, 0.0, 4.0]]),
                          "deltas": f64([[0.0, 0.0, 10.0, -10.0], [0.5, -0.5, -4.2, 4.2], [1.0, 1.0, 1.0, 1.0]])}),
        Case("coders.delta_xywh_decode/edge-centre-clamp", "coders.delta_xywh_decode", "mmdet",
             {"add_ctr_clamp": True, "ctr_clamp": 32}, 0, ("edge:clamped-deltas",),
             lambda rng: {"anchors": f64([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 100.0, 100.0]]),
                          "deltas": f64([[5.0, -5.0, 0.0, -10.0], [0.2, 0.5, 10.0, 0.0]])}),
        Case("coders.dist2bbox/random-xyxy", "coders.dist2bbox", "ultralytics", {"fmt": "xyxy"}, 1110, ("random",),
             lambda rng: {"distances": f64(rng.random((2, 10, 4)) * 15), "points": f64(rng.random((10, 2)) * 40)}),
        Case("coders.dist2bbox/random-cxcywh", "coders.dist2bbox", "ultralytics", {"fmt": "cxcywh"}, 1111, ("random",),
             lambda rng: {"distances": f64(rng.random((10, 4)) * 15), "points": f64(rng.random((10, 2)) * 40)}),
        Case("coders.dist2bbox/edge-zero-distances", "coders.dist2bbox", "ultralytics", {"fmt": "cxcywh"}, 0,
             ("edge:zero-area-boxes",), lambda rng: {"distances": f64([[0.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0]]),
                                                     "points": f64([[3.5, 4.5], [0.5, 0.5]])}),
        Case("coders.bbox2dist/random-reg-max-16", "coders.bbox2dist", "ultralytics", {"reg_max": 16}, 1112,
             ("random",), lambda rng: {"points": f64(rng.random((10, 2)) * 40 + 10),
                                       "boxes": rand_xyxy(rng, 10, scale=60.0)}),
        Case("coders.bbox2dist/edge-beyond-regressable-range", "coders.bbox2dist", "ultralytics", {"reg_max": 16}, 0,
             ("edge:beyond-regressable-range",),
             lambda rng: {"points": f64([[10.5, 10.5], [2.5, 2.5], [20.5, 0.5]]),
                          "boxes": f64([[0.0, 0.0, 40.0, 12.0], [5.0, 5.0, 9.0, 9.0], [0.0, 0.0, 30.0, 1.0]])}),
        Case("coders.dfl_expectation/random", "coders.dfl_expectation", "ultralytics", {}, 1113, ("random",),
             lambda rng: {"logits": f64(rng.standard_normal((2, 6, 4, 16)) * 3)}),
        Case("coders.dfl_expectation/edge-saturated-logits", "coders.dfl_expectation", "ultralytics", {}, 0,
             ("edge:saturated-logits",),
             lambda rng: {"logits": f64(np.where(np.arange(16)[None, None, :] == np.array([0, 15, 7, 8])[None, :, None],
                                                 60.0, -60.0).astype(np.float64))}),
    ]


def cases() -> list[Case]:
    return _anchor_cases() + _coder_cases()
