"""Golden cases of the padding masks, their resizing, the YOLOv8 mask helpers and the sine positional
encoding (``masks.*``, ``position.sine``; conformance/test_masks_position.py)."""

from __future__ import annotations

import numpy as np
import torch

from oracle import masks as M

from ..case import Case, f64


def cases() -> list[Case]:
    """Padding masks, their resizing, the YOLOv8 mask helpers and the sine positional encoding."""
    cases = [
        Case("masks.padding/random", "masks.padding", "detr", {"padded_shape": [12, 17]}, 800, ("random",),
             lambda rng: {"image_sizes": torch.as_tensor(np.stack([rng.integers(1, 13, 3), rng.integers(1, 18, 3)],
                                                                  1))}),
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
             lambda rng: {"masks": f64(rng.random((3, 8, 10)) > 0.4),
                          "boxes": f64(np.sort(rng.random((3, 2, 2)) * [10, 8], axis=1)
                                       .reshape(3, 4)[:, [0, 1, 2, 3]])}),
        Case("masks.crop/edge-fractional-and-empty-boxes", "masks.crop", "ultralytics", {}, 0,
             ("edge:zero-area-boxes",),
             lambda rng: {"masks": f64(np.ones((2, 4, 6))),
                          "boxes": f64([[1.0, 0.5, 3.0, 2.0], [2.0, 2.0, 2.0, 3.0]])}),
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
    cases.append(Case("position.sine/no-mask-detr-sizes", "position.sine", "detr",
                      {"shape": [2, 25, 38], "num_feats": 32}, 0, ("random", "size:realistic"), lambda rng: {}))
    return cases
