"""Seeded weights for the learned parts (transformer layers, DETR head), so fixtures can carry them.

Every function returns a dict of float64 tensors named as oracle.transformer / oracle.heads read
them, drawn from ``numpy.random.Generator(PCG64(seed))``: matrices uniform in ``±sqrt(6 / (fan_in +
fan_out))`` (Xavier/Glorot, as DETR initialises its transformer), biases uniform in ``±0.1``, layer
norms near ``(1, 0)`` with a small perturbation so that a swapped weight and bias would show.
"""

from __future__ import annotations

import numpy as np
import torch

from ._checks import check_int


def _matrix(rng: np.random.Generator, rows: int, cols: int) -> torch.Tensor:
    a = np.sqrt(6.0 / (rows + cols))
    return torch.from_numpy(rng.uniform(-a, a, (rows, cols)))


def _vector(rng: np.random.Generator, n: int, center: float = 0.0, spread: float = 0.1) -> torch.Tensor:
    return torch.from_numpy(center + rng.uniform(-spread, spread, n))


def _attention(rng, e: int, prefix: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}in_proj_weight": _matrix(rng, 3 * e, e), f"{prefix}in_proj_bias": _vector(rng, 3 * e),
            f"{prefix}out_proj.weight": _matrix(rng, e, e), f"{prefix}out_proj.bias": _vector(rng, e)}


def _norm(rng, e: int, name: str) -> dict[str, torch.Tensor]:
    return {f"{name}.weight": _vector(rng, e, 1.0), f"{name}.bias": _vector(rng, e)}


def _ffn(rng, e: int, f: int) -> dict[str, torch.Tensor]:
    return {"linear1.weight": _matrix(rng, f, e), "linear1.bias": _vector(rng, f),
            "linear2.weight": _matrix(rng, e, f), "linear2.bias": _vector(rng, e)}


def _rng(seed: object) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(check_int("seed", seed, low=0)))


def encoder_layer_weights(embed_dim: int, ffn_dim: int, seed: int) -> dict[str, torch.Tensor]:
    """One encoder layer's weights: ``embed_dim`` and ``ffn_dim`` positive ints, ``seed`` a non-negative int."""
    check_int("embed_dim", embed_dim, low=1)
    check_int("ffn_dim", ffn_dim, low=1)
    rng = _rng(seed)
    return {**_attention(rng, embed_dim, "self_attn."), **_ffn(rng, embed_dim, ffn_dim),
            **_norm(rng, embed_dim, "norm1"), **_norm(rng, embed_dim, "norm2")}


def decoder_layer_weights(embed_dim: int, ffn_dim: int, seed: int) -> dict[str, torch.Tensor]:
    """One decoder layer's weights: ``embed_dim`` and ``ffn_dim`` positive ints, ``seed`` a non-negative int."""
    check_int("embed_dim", embed_dim, low=1)
    check_int("ffn_dim", ffn_dim, low=1)
    rng = _rng(seed)
    return {**_attention(rng, embed_dim, "self_attn."), **_attention(rng, embed_dim, "multihead_attn."),
            **_ffn(rng, embed_dim, ffn_dim), **_norm(rng, embed_dim, "norm1"), **_norm(rng, embed_dim, "norm2"),
            **_norm(rng, embed_dim, "norm3")}


def encoder_weights(embed_dim: int, ffn_dim: int, num_layers: int, seed: int) -> dict[str, torch.Tensor]:
    """``layers.{i}.*`` for ``num_layers`` (a non-negative int) encoder layers, layer ``i`` seeded ``seed + i``."""
    check_int("embed_dim", embed_dim, low=1)
    check_int("ffn_dim", ffn_dim, low=1)
    check_int("num_layers", num_layers, low=0)
    check_int("seed", seed, low=0)
    out = {}
    for i in range(num_layers):
        out.update({f"layers.{i}.{k}": v for k, v in encoder_layer_weights(embed_dim, ffn_dim, seed + i).items()})
    return out


def decoder_weights(embed_dim: int, ffn_dim: int, num_layers: int, seed: int) -> dict[str, torch.Tensor]:
    """``layers.{i}.*`` for ``num_layers`` (a non-negative int) decoder layers, layer ``i`` seeded ``seed + i``, and
    the final ``norm.*``."""
    check_int("embed_dim", embed_dim, low=1)
    check_int("ffn_dim", ffn_dim, low=1)
    check_int("num_layers", num_layers, low=0)
    check_int("seed", seed, low=0)
    out = {}
    for i in range(num_layers):
        out.update({f"layers.{i}.{k}": v for k, v in decoder_layer_weights(embed_dim, ffn_dim, seed + i).items()})
    rng = _rng(seed + num_layers)
    out.update(_norm(rng, embed_dim, "norm"))
    return out


def detr_head_weights(embed_dim: int, num_logits: int, seed: int, *, num_reg_fcs: int = 2) -> dict[str, torch.Tensor]:
    """The DETR head's weights: ``embed_dim``, ``num_logits`` positive ints, ``num_reg_fcs`` and ``seed``
    non-negative ints."""
    check_int("embed_dim", embed_dim, low=1)
    check_int("num_logits", num_logits, low=1)
    check_int("num_reg_fcs", num_reg_fcs, low=0)
    rng = _rng(seed)
    out = {"cls.weight": _matrix(rng, num_logits, embed_dim), "cls.bias": _vector(rng, num_logits)}
    for i in range(num_reg_fcs):
        out.update({f"reg.{i}.weight": _matrix(rng, embed_dim, embed_dim), f"reg.{i}.bias": _vector(rng, embed_dim)})
    out.update({"reg.out.weight": _matrix(rng, 4, embed_dim), "reg.out.bias": _vector(rng, 4)})
    return out
