"""Sine positional encoding from a padding mask (DETR family, mmdet), in float64.

For a padding mask ``[B, H, W]`` (True = padding; ``None`` = all valid), with ``F = num_feats``::

    y[b, i, j] = number of valid rows at or above i in column j      (cumulative sum of ~mask over H)
    x[b, i, j] = number of valid columns at or left of j in row i
    if normalize: y = (y + offset) / (y[b, -1, j] + eps) * scale,   x likewise with x[b, i, -1]
    dim_t[k]   = T ** (2 * (k // 2) / F)                            (T_y for y, T_x for x)
    pos_y[..., 2m] = sin(y / dim_t[2m]),  pos_y[..., 2m+1] = cos(y / dim_t[2m+1])
    pos = cat(pos_y, pos_x) -> [B, 2F, H, W]                         (y channels first)

Upstream: facebookresearch/detr models/position_encoding.py (PositionEmbeddingSine),
Deformable-DETR (offset -0.5), IDEA-Research/DINO models/dino/position_encoding.py
(PositionEmbeddingSineHW, separate temperatures), mmdet models/layers/positional_encoding.py
(SinePositionalEncoding, ``offset`` before the division). Upstream computes in float32; the
cumulative sums are exact there (integers), so only ``dim_t`` and the sin/cos differ by rounding.
"""

from __future__ import annotations

import torch

from ._checks import TensorLike, check_rank, fail
from .conventions import PE_DETR, SinePEConvention


def sine_position_encoding(mask: TensorLike, shape: tuple[int, int, int] | None = None, *,
                           convention: SinePEConvention = PE_DETR) -> torch.Tensor:
    """``[B, 2 * num_feats, H, W]`` float64 from ``mask`` ``[B, H, W]`` (bool, True = padding), or from
    ``shape = (B, H, W)`` when ``mask`` is None (every position valid).

    A fully padded column (or row) has a last cumulative value of 0: its normalised positions are
    ``offset / eps * scale`` (finite for ``eps > 0``); ``eps = 0`` with such a column raises, as
    upstream would produce NaN.
    """
    if not isinstance(convention, SinePEConvention):
        raise fail("convention", "a SinePEConvention", type(convention).__name__)
    if mask is None:
        if shape is None or len(shape) != 3 or not all(isinstance(v, int) and v >= 1 for v in shape):
            raise fail("shape", "(B, H, W) positive ints when mask is None", repr(shape))
        valid = torch.ones(shape, dtype=torch.float64)
    else:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise fail("mask", "a bool tensor [B, H, W] (True = padding)",
                       f"{type(mask).__name__} {getattr(mask, 'dtype', '')}")
        check_rank("mask", mask, 3, "([B, H, W], True = padding)")
        if min(mask.shape) == 0:
            raise fail("mask", "non-empty [B, H, W]", f"shape {tuple(mask.shape)}")
        valid = (~mask.cpu()).to(torch.float64)
    if convention.normalize and convention.eps == 0:
        last = valid.cumsum(1)[:, -1:, :], valid.cumsum(2)[:, :, -1:]
        if bool((last[0] == 0).any()) or bool((last[1] == 0).any()):
            raise fail("mask", "no fully padded row or column when eps = 0 (0/0)", "a fully padded row or column")
    return sine_encoding_formula(valid, convention)


def sine_encoding_formula(valid: torch.Tensor, convention: SinePEConvention) -> torch.Tensor:
    """The encoding ``[B, 2F, H, W]`` from ``valid`` ``[B, H, W]`` (1 = valid, 0 = padding), in ``valid``'s
    dtype and device, without input checks: the formula :func:`sine_position_encoding` applies after its
    checks, in a form ``torch.onnx.export`` traces (the conformance suite exports it in float32)."""
    c = convention
    y = valid.cumsum(1)
    x = valid.cumsum(2)
    if c.normalize:
        last_y, last_x = y[:, -1:, :], x[:, :, -1:]
        y = (y + c.offset) / (last_y + c.eps) * c.scale
        x = (x + c.offset) / (last_x + c.eps) * c.scale
    t_y, t_x = c.temperature if isinstance(c.temperature, tuple) else (c.temperature, c.temperature)
    k = torch.arange(c.num_feats, dtype=valid.dtype, device=valid.device)
    exponent = 2 * torch.div(k, 2, rounding_mode="floor") / c.num_feats

    def encode(v: torch.Tensor, temperature: float) -> torch.Tensor:
        p = v[..., None] / temperature ** exponent
        return torch.stack((p[..., 0::2].sin(), p[..., 1::2].cos()), dim=4).flatten(3)
    return torch.cat((encode(y, t_y), encode(x, t_x)), dim=3).permute(0, 3, 1, 2)
