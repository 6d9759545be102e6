"""Canonical calls of the dense-detector components (anchors, coders, assigners, anchor-head and YOLOv8 losses).

Each is ``call(inputs, config, profile) -> outputs`` as in golden/components.py, which registers
them. Hyper-parameters travel in ``config`` (JSON: tuples become lists); tensors in ``inputs``.
"""

from __future__ import annotations

from oracle import anchors as A
from oracle import coders as C


def _generator(config) -> A.AnchorGenerator:
    keys = ("strides", "ratios", "scales", "base_sizes", "scale_major", "octave_base_scale", "scales_per_octave",
            "centers", "center_offset")
    return A.AnchorGenerator(**{k: config[k] for k in keys if k in config})


def call_anchor_grid(inputs, config, profile):
    """config: an AnchorGenerator's fields, ``featmap_sizes``, ``pad_shape`` -> anchors and valid_flags per level."""
    gen = _generator(config)
    sizes = [tuple(s) for s in config["featmap_sizes"]]
    return {"anchors": gen.grid_anchors(sizes), "valid_flags": gen.valid_flags(sizes, tuple(config["pad_shape"]))}


def call_anchor_points(inputs, config, profile):
    """config: ``featmap_sizes``, ``strides``, ``offset`` -> points [A, 2] (grid units), strides [A, 1]."""
    points, strides = A.anchor_points([tuple(s) for s in config["featmap_sizes"]], list(config["strides"]),
                                      config.get("offset", 0.5))
    return {"points": points, "strides": strides}


def _coder(config) -> C.DeltaXYWHCoder:
    keys = ("means", "stds", "wh_ratio_clip", "wh_clamp", "clip_border", "add_ctr_clamp", "ctr_clamp")
    return C.DeltaXYWHCoder(**{k: (tuple(config[k]) if isinstance(config[k], list) else config[k])
                               for k in keys if k in config})


def call_delta_encode(inputs, config, profile):
    return {"deltas": _coder(config).encode(inputs["anchors"], inputs["gt"])}


def call_delta_decode(inputs, config, profile):
    shape = config.get("max_shape")
    return {"boxes": _coder(config).decode(inputs["anchors"], inputs["deltas"],
                                           max_shape=tuple(shape) if shape is not None else None)}


def call_dist2bbox(inputs, config, profile):
    return {"boxes": C.dist2bbox(inputs["distances"], inputs["points"], fmt=config.get("fmt", "xyxy"))}


def call_bbox2dist(inputs, config, profile):
    return {"distances": C.bbox2dist(inputs["points"], inputs["boxes"], reg_max=config.get("reg_max"))}


def call_dfl_expectation(inputs, config, profile):
    return {"distances": C.dfl_expectation(inputs["logits"])}
