"""Anchor boxes and anchor points in float64: mmdet's grid anchors and ultralytics' anchor points.

Two kinds of prior:

- **Anchor boxes** (mmdet ``AnchorGenerator``): per level, ``A = len(ratios) * len(scales)`` base
  boxes centred on ``center_offset * base_size`` (0 by default: the grid point ``x * stride``, not the
  cell centre), shifted to every grid point. Level ``l`` gives ``[H_l * W_l * A, 4]`` xyxy boxes in
  pixels, index ``(y * W_l + x) * A + k``; with ``scale_major`` (the default) ``k = r * S + s`` for
  ratio ``r`` and scale ``s``, otherwise ``k = s * R + r``. A ratio is ``h / w``.
- **Anchor points** (ultralytics ``make_anchors``): one point per cell at ``(x + 0.5, y + 0.5)`` in
  **grid units** of its level, levels concatenated, row-major within a level, with a per-point
  stride so that ``points * stride`` is in pixels.

mmdet computes base anchors in float32 (its scales are a float32 tensor); the reference computes
the same formula in float64.

Upstream: mmdet/models/task_modules/prior_generators/anchor_generator.py (``AnchorGenerator``:
``gen_single_level_base_anchors``, ``single_level_grid_priors``, ``single_level_valid_flags``),
mmdet/models/task_modules/prior_generators/utils.py (``anchor_inside_flags``),
mmdet/models/utils/misc.py (``images_to_levels``), ultralytics/utils/tal.py (``make_anchors``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ._checks import TensorLike, as_float64, check_finite, check_int, check_last_dim, check_rank, check_scalar, fail


def _positive_pair(name: str, value: object) -> tuple[float, float]:
    """A number or a ``(w, h)`` pair of positive numbers, as ``(w, h)``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise fail(name, "a number or a (w, h) pair", f"a sequence of length {len(value)}")
        w, h = value
    else:
        w = h = value
    return (check_scalar(f"{name}[0]", w, low=0.0, low_open=True),
            check_scalar(f"{name}[1]", h, low=0.0, low_open=True))


def _positive_list(name: str, values: object) -> tuple[float, ...]:
    if not isinstance(values, (tuple, list)) or len(values) == 0:
        raise fail(name, "a non-empty sequence of positive numbers", repr(values))
    return tuple(check_scalar(f"{name}[{i}]", v, low=0.0, low_open=True) for i, v in enumerate(values))


def _feature_size(name: str, size: object) -> tuple[int, int]:
    """A feature-map size ``(H, W)`` of non-negative integers."""
    if not isinstance(size, (tuple, list, torch.Size)) or len(size) != 2:
        raise fail(name, "a feature-map size (H, W)", repr(size))
    out = []
    for v in size:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise fail(name, "non-negative integers (H, W)", repr(tuple(size)))
        out.append(int(v))
    return out[0], out[1]


def _feature_sizes(featmap_sizes: object, num_levels: int | None) -> list[tuple[int, int]]:
    if not isinstance(featmap_sizes, (tuple, list)):
        raise fail("featmap_sizes", "a sequence of (H, W) per level", type(featmap_sizes).__name__)
    if num_levels is not None and len(featmap_sizes) != num_levels:
        raise fail("featmap_sizes", f"{num_levels} levels (one per stride)", f"{len(featmap_sizes)}")
    return [_feature_size(f"featmap_sizes[{i}]", s) for i, s in enumerate(featmap_sizes)]


@dataclass(frozen=True)
class AnchorGenerator:
    """mmdet's ``AnchorGenerator`` configuration and its anchors.

    - ``strides``: per level, a number or ``(stride_w, stride_h)`` in pixels.
    - ``ratios``: ``h / w`` of the base anchors.
    - ``scales``, or ``octave_base_scale`` with ``scales_per_octave`` (scales
      ``octave_base_scale * 2 ** (i / scales_per_octave)``, ``i = 0..n-1``): exactly one of the two.
    - ``base_sizes``: per level; default ``min(stride_w, stride_h)``.
    - ``scale_major``: order of the base anchors (see the module docstring).
    - ``centers``: per level, the base-anchor centre ``(x, y)``; otherwise
      ``center_offset * base_size`` for both coordinates, ``0 <= center_offset <= 1``.
    """

    strides: tuple
    ratios: tuple
    scales: tuple | None = None
    base_sizes: tuple | None = None
    scale_major: bool = True
    octave_base_scale: float | None = None
    scales_per_octave: int | None = None
    centers: tuple | None = None
    center_offset: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.strides, (tuple, list)) or len(self.strides) == 0:
            raise fail("strides", "a non-empty sequence (one stride per level)", repr(self.strides))
        for i, s in enumerate(self.strides):
            _positive_pair(f"strides[{i}]", s)
        _positive_list("ratios", self.ratios)
        has_scales = self.scales is not None
        has_octave = self.octave_base_scale is not None or self.scales_per_octave is not None
        if has_scales == has_octave:
            raise fail("scales", "either scales or octave_base_scale with scales_per_octave (exactly one)",
                       f"scales={self.scales!r}, octave_base_scale={self.octave_base_scale!r}, "
                       f"scales_per_octave={self.scales_per_octave!r}")
        if has_scales:
            _positive_list("scales", self.scales)
        else:
            check_scalar("octave_base_scale", self.octave_base_scale, low=0.0, low_open=True)
            n = self.scales_per_octave
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise fail("scales_per_octave", "a positive integer", repr(n))
        if self.base_sizes is not None:
            sizes = _positive_list("base_sizes", self.base_sizes)
            if len(sizes) != len(self.strides):
                raise fail("base_sizes", f"{len(self.strides)} sizes (one per stride)", f"{len(sizes)}")
        check_scalar("center_offset", self.center_offset, low=0.0, high=1.0)
        if self.centers is not None:
            if self.center_offset != 0:  # mmdet asserts the same: the two ways of placing centres exclude each other
                raise fail("centers", "None when center_offset != 0", repr(self.centers))
            if not isinstance(self.centers, (tuple, list)) or len(self.centers) != len(self.strides):
                raise fail("centers", f"{len(self.strides)} (x, y) centres (one per stride)", repr(self.centers))
            for i, c in enumerate(self.centers):
                if not isinstance(c, (tuple, list)) or len(c) != 2:
                    raise fail(f"centers[{i}]", "an (x, y) pair", repr(c))
                check_scalar(f"centers[{i}][0]", c[0])
                check_scalar(f"centers[{i}][1]", c[1])

    @property
    def num_levels(self) -> int:
        return len(self.strides)

    @property
    def level_strides(self) -> list[tuple[float, float]]:
        """``(stride_w, stride_h)`` per level."""
        return [_positive_pair(f"strides[{i}]", s) for i, s in enumerate(self.strides)]

    def scale_values(self) -> torch.Tensor:
        """The scales ``[S]`` (float64), given or from the octave parameters."""
        if self.scales is not None:
            return torch.tensor([float(s) for s in self.scales], dtype=torch.float64)
        n = self.scales_per_octave
        return torch.tensor([2.0 ** (i / n) for i in range(n)], dtype=torch.float64) * float(self.octave_base_scale)

    @property
    def num_base_anchors(self) -> list[int]:
        return [len(self.ratios) * len(self.scale_values())] * self.num_levels

    def base_anchors(self) -> list[torch.Tensor]:
        """Per level, the base anchors ``[A, 4]`` xyxy around the level's centre."""
        scales = self.scale_values()
        h_ratios = torch.tensor([float(r) for r in self.ratios], dtype=torch.float64).sqrt()
        w_ratios = 1.0 / h_ratios
        out = []
        for level, (sw, sh) in enumerate(self.level_strides):
            size = float(self.base_sizes[level]) if self.base_sizes is not None else min(sw, sh)
            if self.centers is not None:
                cx, cy = float(self.centers[level][0]), float(self.centers[level][1])
            else:
                cx = cy = self.center_offset * size
            if self.scale_major:
                ws = (size * w_ratios[:, None] * scales[None, :]).reshape(-1)
                hs = (size * h_ratios[:, None] * scales[None, :]).reshape(-1)
            else:
                ws = (size * scales[:, None] * w_ratios[None, :]).reshape(-1)
                hs = (size * scales[:, None] * h_ratios[None, :]).reshape(-1)
            out.append(torch.stack((cx - 0.5 * ws, cy - 0.5 * hs, cx + 0.5 * ws, cy + 0.5 * hs), dim=-1))
        return out

    def grid_anchors(self, featmap_sizes: Sequence[Sequence[int]]) -> list[torch.Tensor]:
        """Per level, anchors ``[H * W * A, 4]`` xyxy in pixels: base anchors shifted to
        ``(x * stride_w, y * stride_h)``."""
        sizes = _feature_sizes(featmap_sizes, self.num_levels)
        out = []
        for base, (sw, sh), (h, w) in zip(self.base_anchors(), self.level_strides, sizes):
            shift_y, shift_x = torch.meshgrid(torch.arange(h, dtype=torch.float64) * sh,
                                              torch.arange(w, dtype=torch.float64) * sw, indexing="ij")
            shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=-1).reshape(-1, 4)
            out.append((shifts[:, None, :] + base[None, :, :]).reshape(-1, 4))
        return out

    def valid_flags(self, featmap_sizes: Sequence[Sequence[int]], pad_shape: Sequence[int]) -> list[torch.Tensor]:
        """Per level, bool ``[H * W * A]``: the anchor's grid point lies in the image's padded area.

        ``pad_shape`` is ``(H, W)`` of this image after padding to the size divisor (mmdet's
        ``img_meta['pad_shape']``); a grid column ``x`` is valid when ``x < min(ceil(pad_w / stride_w), W)``,
        a row likewise, and an anchor when both are.
        """
        sizes = _feature_sizes(featmap_sizes, self.num_levels)
        pad_h, pad_w = _feature_size("pad_shape", pad_shape)
        out = []
        for (sw, sh), (h, w), a in zip(self.level_strides, sizes, self.num_base_anchors):
            valid_w = min(math.ceil(pad_w / sw), w)
            valid_h = min(math.ceil(pad_h / sh), h)
            valid = (torch.arange(h)[:, None] < valid_h) & (torch.arange(w)[None, :] < valid_w)
            out.append(valid.reshape(-1, 1).expand(h * w, a).reshape(-1))
        return out


#: RetinaNet (mmdet configs/_base_/models/retinanet_r50_fpn.py): 9 anchors per location.
RETINANET_ANCHOR_GENERATOR = AnchorGenerator(strides=(8, 16, 32, 64, 128), ratios=(0.5, 1.0, 2.0),
                                             octave_base_scale=4, scales_per_octave=3)
#: mmdet ``AnchorHead``'s default ``anchor_generator`` (mmdet/models/dense_heads/anchor_head.py).
ANCHOR_HEAD_ANCHOR_GENERATOR = AnchorGenerator(strides=(4, 8, 16, 32, 64), ratios=(0.5, 1.0, 2.0),
                                               scales=(8, 16, 32))


def anchor_inside_flags(anchors: TensorLike, valid_flags: TensorLike, img_shape: Sequence[int],
                        allowed_border: float = 0) -> torch.Tensor:
    """Bool ``[N]``: valid anchors lying within the image, up to ``allowed_border`` pixels outside.

    ``anchors`` ``[N, 4]`` xyxy pixels, ``valid_flags`` bool ``[N]``, ``img_shape`` ``(H, W)`` unpadded.
    With ``allowed_border >= 0``: ``x1 >= -b``, ``y1 >= -b``, ``x2 < W + b``, ``y2 < H + b`` (strict
    on the far side, as mmdet); with ``allowed_border < 0`` the valid flags are returned unchanged.
    """
    a = as_float64("anchors", anchors)
    check_rank("anchors", a, 2, "([N, 4] xyxy anchors)")
    check_last_dim("anchors", a, 4, "([N, 4] xyxy anchors)")
    check_finite("anchors", a)
    if not isinstance(valid_flags, torch.Tensor) or valid_flags.dtype != torch.bool:
        raise fail("valid_flags", "a bool tensor [N]", repr(type(valid_flags).__name__))
    if valid_flags.shape != a.shape[:1]:
        raise fail("valid_flags", f"shape ({a.shape[0]},) (one flag per anchor)", f"shape {tuple(valid_flags.shape)}")
    img_h, img_w = _feature_size("img_shape", img_shape)
    b = check_scalar("allowed_border", allowed_border)
    valid = valid_flags.cpu()
    if b < 0:
        return valid.clone()
    return valid & (a[:, 0] >= -b) & (a[:, 1] >= -b) & (a[:, 2] < img_w + b) & (a[:, 3] < img_h + b)


def images_to_levels(per_image: Sequence[torch.Tensor], num_level_anchors: Sequence[int]) -> list[torch.Tensor]:
    """Per-image tensors ``[A_total, ...]`` regrouped per level as ``[N_img, A_l, ...]`` (mmdet
    ``images_to_levels``).

    per_image: tensors of one shape and a real dtype (kept; floating ones finite), ``A_total`` the sum of
    ``num_level_anchors`` (non-negative ints)."""
    if not isinstance(per_image, (tuple, list)) or len(per_image) == 0:
        raise fail("per_image", "a non-empty sequence of tensors, one per image", repr(type(per_image).__name__))
    if not isinstance(num_level_anchors, (tuple, list)):
        raise fail("num_level_anchors", "a sequence of per-level anchor counts", type(num_level_anchors).__name__)
    counts = [check_int(f"num_level_anchors[{i}]", n, low=0) for i, n in enumerate(num_level_anchors)]
    for i, t in enumerate(per_image):
        if not isinstance(t, torch.Tensor) or t.is_complex() or t.dim() == 0:
            found = f"{t.dtype} tensor of shape {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
            raise fail(f"per_image[{i}]", "a real-valued tensor [A_total, ...]", found)
        if t.shape != per_image[0].shape:
            raise fail(f"per_image[{i}]", f"the shape of per_image[0] {tuple(per_image[0].shape)}",
                       f"shape {tuple(t.shape)}")
        if t.is_floating_point():
            check_finite(f"per_image[{i}]", t)
    stacked = torch.stack(list(per_image), dim=0)
    if stacked.shape[1] != sum(counts):
        raise fail("per_image", f"{sum(counts)} anchors per image (the sum of num_level_anchors)",
                   f"shape {tuple(per_image[0].shape)}")
    return list(torch.split(stacked, counts, dim=1))


def anchor_points(featmap_sizes: Sequence[Sequence[int]], strides: Sequence[float],
                  offset: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """YOLOv8 anchor points: ``(points [A, 2], stride [A, 1])``, float64.

    ``points`` are ``(x + offset, y + offset)`` in grid units of their level (multiply by
    ``stride`` for pixels); levels are concatenated in order, row-major within a level, so
    ``A = sum(H_l * W_l)``. ``offset`` is ultralytics' ``grid_cell_offset`` (0.5: cell centres).
    """
    if not isinstance(strides, (tuple, list)):
        if isinstance(strides, torch.Tensor) and strides.dim() == 1:
            strides = strides.tolist()
        else:
            raise fail("strides", "a sequence of one stride per level", type(strides).__name__)
    sizes = _feature_sizes(featmap_sizes, len(strides))
    step = [check_scalar(f"strides[{i}]", s, low=0.0, low_open=True) for i, s in enumerate(strides)]
    off = check_scalar("offset", offset)
    return anchor_points_formula(sizes, step, off)


def anchor_points_formula(featmap_sizes: Sequence[tuple[int, int]], strides: Sequence[float], offset: float, *,
                          dtype: torch.dtype = torch.float64,
                          device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`anchor_points` on checked arguments, in ``dtype``, in a form ``torch.onnx.export`` traces
    (the sizes may be symbolic, read from feature maps' shapes)."""
    points, stride_column = [], []
    for (h, w), s in zip(featmap_sizes, strides):
        ys, xs = torch.meshgrid(torch.arange(h, dtype=dtype, device=device) + offset,
                                torch.arange(w, dtype=dtype, device=device) + offset, indexing="ij")
        points.append(torch.stack((xs, ys), dim=-1).reshape(-1, 2))
        stride_column.append(torch.full((h * w, 1), s, dtype=dtype, device=device))
    return torch.cat(points), torch.cat(stride_column)


__all__ = ["AnchorGenerator", "RETINANET_ANCHOR_GENERATOR", "ANCHOR_HEAD_ANCHOR_GENERATOR",
           "anchor_inside_flags", "images_to_levels", "anchor_points", "anchor_points_formula"]
