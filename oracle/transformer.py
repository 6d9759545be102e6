"""DETR's transformer in float64 as functions of explicit weights (eval mode: no dropout).

Layout: batch-first, ``[B, L, E]`` (DETR and mmdet's reference code is sequence-first ``[L, B, E]``).
Masks: ``key_padding_mask`` ``[B, Lk]`` bool, True = that key is padding; ``attn_mask`` ``[Lq, Lk]``
bool (True = may not attend) or float (added to the scores).

Fully masked rows: when every key of a query is masked, a softmax over all ``-inf`` gives NaN (as
the attention of DETR's era did). The reference defines that query's attention weights as all
zero, so its attended value is 0 and the attention output is the out-projection's bias. torch
2.13's ``nn.MultiheadAttention`` returns the same with ``need_weights=False`` (its
scaled-dot-product path) and NaN with ``need_weights=True``, its default, which mmcv's DETR layers
use (a known difference of the mmdet adapter); tests/oracle/test_encoder.py shows both.

Weights are dicts of tensors with the names of ``torch.nn.MultiheadAttention`` and DETR's
``TransformerEncoderLayer`` / ``TransformerDecoderLayer`` (facebookresearch/detr models/transformer.py):
``self_attn.in_proj_weight [3E, E]``, ``self_attn.in_proj_bias``, ``self_attn.out_proj.weight``,
``self_attn.out_proj.bias``, ``linear1.weight [F, E]``, ``linear1.bias``, ``linear2.weight [E, F]``,
``linear2.bias``, ``norm1.weight``, ``norm1.bias``, ``norm2.*`` (and ``multihead_attn.*``, ``norm3.*``
in the decoder). Upstream: detr models/transformer.py (post-norm, ``normalize_before=False``),
torch.nn.functional.multi_head_attention_forward, mmdet models/layers/transformer/detr_layers.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from ._blocks import recomputed_blocks
from ._checks import TensorLike, as_float64, check_broadcasts, check_finite, check_magnitude, check_rank, fail

LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm's default, used by DETR and mmdet

#: The largest magnitude accepted in a sequence, positional encoding or weight. Attention scores are products of
#: four such values summed over the embedding (``(1e20)^4 E^2``), and layer norms square sums of products of
#: three, so every intermediate stays far inside float64 below it; larger finite inputs would overflow to inf/NaN.
VALUE_BOUND = 1e20


def _weights_arg(weights: object) -> Mapping[str, object]:
    if not isinstance(weights, Mapping):
        raise fail("weights", "a mapping of parameter names to tensors", type(weights).__name__)
    return weights


def _w(weights: Mapping[str, object], name: str, shape: tuple[int, ...]) -> torch.Tensor:
    if name not in weights:
        raise fail("weights", f"an entry {name!r}", f"keys {sorted(weights)[:8]}...")
    t = as_float64(f"weights[{name!r}]", weights[name])
    if tuple(t.shape) != shape:
        raise fail(f"weights[{name!r}]", f"shape {shape}", f"shape {tuple(t.shape)}")
    check_finite(f"weights[{name!r}]", t)
    check_magnitude(f"weights[{name!r}]", t, VALUE_BOUND, "the attention scores and layer norms")
    return t


def _seq(name: str, x: TensorLike, embed_dim: int | None = None, *, like: tuple[str, torch.Tensor] | None = None
         ) -> torch.Tensor:
    """A finite ``[B, L, E]`` sequence with values of magnitude at most :data:`VALUE_BOUND`; with ``like``
    ``(name, tensor)`` (a positional encoding's sequence), one that broadcasts to that tensor's shape."""
    t = as_float64(name, x)
    check_rank(name, t, 3, "([B, L, E])")
    check_finite(name, t)
    check_magnitude(name, t, VALUE_BOUND, "the attention scores and layer norms")
    if embed_dim is not None and t.shape[2] != embed_dim:
        raise fail(name, f"embedding size {embed_dim}", f"shape {tuple(t.shape)}")
    if like is not None:
        check_broadcasts(name, t, like[1].shape, f"a shape that broadcasts to that of {like[0]} {tuple(like[1].shape)}")
    return t


def multi_head_attention(query: TensorLike, key: TensorLike, value: TensorLike, weights: Mapping[str, object],
                         num_heads: int, *, prefix: str = "", key_padding_mask: TensorLike = None,
                         attn_mask: TensorLike = None) -> torch.Tensor:
    """Multi-head attention ``[B, Lq, E]`` (scaled dot product per head, softmax over keys).

    query ``[B, Lq, E]``, key and value ``[B, Lk, E]``; weights ``{prefix}in_proj_weight [3E, E]``,
    ``{prefix}in_proj_bias [3E]``, ``{prefix}out_proj.weight [E, E]``, ``{prefix}out_proj.bias [E]``.
    Values: finite, of magnitude at most :data:`VALUE_BOUND` (1e20).
    """
    q = _seq("query", query)
    weights = _weights_arg(weights)
    e = q.shape[2]
    k = _seq("key", key, e)
    v = _seq("value", value, e)
    if k.shape[:2] != v.shape[:2] or k.shape[0] != q.shape[0]:
        raise fail("key/value", f"[B={q.shape[0]}, Lk, {e}] each", f"{tuple(k.shape)} and {tuple(v.shape)}")
    _check_heads(num_heads, e)
    w = _checked(weights, _attention_shapes(prefix, e))
    b, lq, lk = q.shape[0], q.shape[1], k.shape[1]
    blocked, additive = _attn_mask_arg(attn_mask, lq, lk)
    return attention_formula(q, k, v, w, num_heads, prefix=prefix, attn_mask=blocked, additive_mask=additive,
                             key_padding_mask=_padding_arg(key_padding_mask, b, lk))


def attention_formula(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, weights: Mapping[str, torch.Tensor],
                      num_heads: int, *, prefix: str = "", key_padding_mask: torch.Tensor | None = None,
                      attn_mask: torch.Tensor | None = None, additive_mask: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`multi_head_attention` on checked tensors, in their dtype, in a form ``torch.onnx.export``
    traces: ``key_padding_mask [B, Lk]`` and ``attn_mask [Lq, Lk]`` bool (True = blocked),
    ``additive_mask [Lq, Lk]`` float (``-inf`` = blocked)."""
    e = q.shape[2]
    b, lq, lk, d = q.shape[0], q.shape[1], k.shape[1], e // num_heads
    w_in, b_in = weights[prefix + "in_proj_weight"], weights[prefix + "in_proj_bias"]

    def heads(x: torch.Tensor, i: int) -> torch.Tensor:
        y = x @ w_in[i * e:(i + 1) * e].T + b_in[i * e:(i + 1) * e]
        return y.reshape(b, x.shape[1], num_heads, d).transpose(1, 2)  # [B, h, L, d]
    qh, kh, vh = heads(q, 0), heads(k, 1), heads(v, 2)
    blocked = torch.zeros(b, 1, lq, lk, dtype=torch.bool, device=q.device)
    additive = None
    if attn_mask is not None:
        blocked = blocked | attn_mask[None, None]
    if additive_mask is not None:
        blocked = blocked | torch.isneginf(additive_mask)[None, None]
        additive = torch.where(torch.isneginf(additive_mask), 0.0, additive_mask)[None, None]
    if key_padding_mask is not None:
        blocked = blocked | key_padding_mask[:, None, None, :]
    tracing = _tracing()
    if tracing or b * num_heads * lq * lk <= _ATTENTION_BLOCK:
        context = _attend(qh, kh, vh, blocked, additive, d, tracing)
    else:
        # One (image, head) at a time (oracle/_blocks.py): the [B, h, Lq, Lk] float64 scores (462 MB at DETR's
        # 8 x 8 x 950 x 950) become per-matrix blocks; each block is the same batched product, masking and
        # softmax of the same rows, so the concatenation is bit for bit the whole computation (outside
        # exports, whose batch axis is dynamic).
        context = torch.cat([
            recomputed_blocks(_attend, ((qb, kb, vb, mask, additive, d, tracing)
                                        for qb, kb, vb in zip(qi.split(1, 1), ki.split(1, 1), vi.split(1, 1))), dim=1)
            for qi, ki, vi, mask in zip(qh.split(1), kh.split(1), vh.split(1), blocked.split(1))])
    out = context.transpose(1, 2).reshape(b, lq, e)
    return out @ weights[prefix + "out_proj.weight"].T + weights[prefix + "out_proj.bias"]


#: Attention scores (elements) above which the attention runs one (image, head) matrix at a time.
_ATTENTION_BLOCK = 1 << 20


def _attend(qh: torch.Tensor, kh: torch.Tensor, vh: torch.Tensor, blocked: torch.Tensor,
            additive: torch.Tensor | None, d: int, tracing: bool) -> torch.Tensor:
    """Scaled dot-product attention of ``[n, h, Lq, d]`` queries over ``[n, h, Lk, d]`` keys and values, with
    ``blocked [n, 1, Lq, Lk]`` (True = blocked) and an optional additive ``[1, 1, Lq, Lk]``: ``[n, h, Lq, d]``."""
    # Contiguous operands, as matmul makes them of a [B, h, L, d] view before its batched product: a block
    # multiplied in the view's strides takes another GEMM path and other roundings.
    scores = qh.contiguous() @ kh.transpose(-1, -2).contiguous() / math.sqrt(d)  # [n, h, Lq, Lk]
    if additive is not None:
        scores = scores + additive
    # In place: scores is this function's own temporary (its producer's backward does not read it), and
    # the scores are the largest tensor of the layer (a copy of it per masked_fill).
    scores = scores.masked_fill_(blocked, float("-inf"))
    # "no key left" as a count (ReduceSum) rather than .all() (ReduceMin): torch 2.13's ONNX exporter cannot
    # convert ReduceMin's axes input down to opset 17 and silently keeps opset 18.
    all_blocked = (~blocked).sum(-1, keepdim=True) == 0
    if tracing or bool(all_blocked.any()):
        # Defined result for a fully masked row (upstream: NaN): zero attention weights.
        probs = torch.softmax(scores.masked_fill_(all_blocked, 0.0), dim=-1).masked_fill(all_blocked, 0.0)
    else:  # no fully masked row: both fills are no-ops (same bits), skipped outside an export
        probs = torch.softmax(scores, dim=-1)
    return probs @ vh


def _tracing() -> bool:
    """Whether the formula is being traced for export (data-dependent branches must then take the general form)."""
    return torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export() or torch.jit.is_tracing() \
        or torch.compiler.is_compiling()


def _check_heads(num_heads: object, e: int) -> None:
    if not isinstance(num_heads, int) or num_heads < 1 or e % num_heads:
        raise fail("num_heads", f"a positive divisor of the embedding size {e}", repr(num_heads))


_MEMORY_MASK = "memory_key_padding_mask"


def _describe_mask(mask: object) -> str:
    if isinstance(mask, torch.Tensor):
        return f"tensor of dtype {mask.dtype} and shape {tuple(mask.shape)}"
    return type(mask).__name__


def _attn_mask_arg(attn_mask: TensorLike, lq: int, lk: int, name: str = "attn_mask"
                   ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``(bool mask, additive float64 mask)`` from an ``attn_mask`` ``[Lq, Lk]`` (bool: True = blocked, or float)."""
    if attn_mask is None:
        return None, None
    if not isinstance(attn_mask, torch.Tensor) or tuple(attn_mask.shape) != (lq, lk):
        raise fail(name, f"a tensor [{lq}, {lk}]", _describe_mask(attn_mask))
    if attn_mask.dtype == torch.bool:
        return attn_mask.cpu(), None
    additive = as_float64(name, attn_mask)
    if bool(torch.isnan(additive).any()) or bool(torch.isposinf(additive).any()):
        raise fail(name, "finite values or -inf (blocked)", "NaN or +inf")
    return None, additive


def _padding_arg(key_padding_mask: TensorLike, b: int, lk: int, name: str = "key_padding_mask"
                 ) -> torch.Tensor | None:
    if key_padding_mask is None:
        return None
    if not isinstance(key_padding_mask, torch.Tensor) or key_padding_mask.dtype != torch.bool \
            or tuple(key_padding_mask.shape) != (b, lk):
        raise fail(name, f"a bool tensor [{b}, {lk}] (True = padding)", _describe_mask(key_padding_mask))
    return key_padding_mask.cpu()


def _attention_shapes(prefix: str, e: int) -> dict[str, tuple[int, ...]]:
    return {prefix + "in_proj_weight": (3 * e, e), prefix + "in_proj_bias": (3 * e,),
            prefix + "out_proj.weight": (e, e), prefix + "out_proj.bias": (e,)}


def _layer_shapes(weights: Mapping[str, object], e: int, attentions: tuple[str, ...],
                  norms: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    """The names and shapes of one layer's weights (the FFN width from ``linear1.weight``)."""
    w1 = as_float64("weights['linear1.weight']", weights.get("linear1.weight"))
    f = w1.shape[0] if w1.dim() == 2 else 0
    shapes = {"linear1.weight": (f, e), "linear1.bias": (f,), "linear2.weight": (e, f), "linear2.bias": (e,)}
    for prefix in attentions:
        shapes.update(_attention_shapes(prefix, e))
    for norm in norms:
        shapes.update({norm + ".weight": (e,), norm + ".bias": (e,)})
    return shapes


def _checked(weights: Mapping[str, object], shapes: Mapping[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {name: _w(weights, name, shape) for name, shape in shapes.items()}


def _layer_norm(x: torch.Tensor, weights: Mapping[str, torch.Tensor], name: str) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), weights[name + ".weight"], weights[name + ".bias"], LAYER_NORM_EPS)


def _ffn(x: torch.Tensor, weights: Mapping[str, torch.Tensor]) -> torch.Tensor:
    h = torch.relu(x @ weights["linear1.weight"].T + weights["linear1.bias"])
    return h @ weights["linear2.weight"].T + weights["linear2.bias"]


def _with_pos(x: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
    return x if pos is None else x + pos


ENCODER_ATTENTIONS, ENCODER_NORMS = ("self_attn.",), ("norm1", "norm2")
DECODER_ATTENTIONS, DECODER_NORMS = ("self_attn.", "multihead_attn."), ("norm1", "norm2", "norm3")


def encoder_layer(src: TensorLike, weights: Mapping[str, object], num_heads: int, *, pos: TensorLike = None,
                  key_padding_mask: TensorLike = None) -> torch.Tensor:
    """DETR's post-norm encoder layer ``[B, L, E]``: ``q = k = src + pos``, ``v = src``; add & norm1; FFN
    (ReLU); add & norm2. src ``[B, L, E]``, pos broadcastable to it; values finite, of magnitude at most
    :data:`VALUE_BOUND` (1e20)."""
    x = _seq("src", src)
    p = None if pos is None else _seq("pos", pos, x.shape[2], like=("src", x))
    _check_heads(num_heads, x.shape[2])
    weights = _weights_arg(weights)
    w = _checked(weights, _layer_shapes(weights, x.shape[2], ENCODER_ATTENTIONS, ENCODER_NORMS))
    return encoder_layer_formula(x, w, num_heads, pos=p,
                                 key_padding_mask=_padding_arg(key_padding_mask, x.shape[0], x.shape[1]))


def encoder_layer_formula(x: torch.Tensor, weights: Mapping[str, torch.Tensor], num_heads: int, *,
                          pos: torch.Tensor | None = None,
                          key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`encoder_layer` on checked tensors, in their dtype, in a form ``torch.onnx.export`` traces."""
    q = _with_pos(x, pos)
    x = _layer_norm(x + attention_formula(q, q, x, weights, num_heads, prefix="self_attn.",
                                          key_padding_mask=key_padding_mask), weights, "norm1")
    return _layer_norm(x + _ffn(x, weights), weights, "norm2")


def decoder_layer(tgt: TensorLike, memory: TensorLike, weights: Mapping[str, object], num_heads: int, *,
                  pos: TensorLike = None, query_pos: TensorLike = None, memory_key_padding_mask: TensorLike = None,
                  tgt_mask: TensorLike = None) -> torch.Tensor:
    """DETR's post-norm decoder layer ``[B, Q, E]``: self-attention (``q = k = tgt + query_pos``),
    add & norm1; cross-attention (``q = tgt + query_pos``, ``k = memory + pos``, ``v = memory``, memory
    padding mask), add & norm2; FFN, add & norm3. tgt ``[B, Q, E]``, memory ``[B, L, E]``, pos broadcastable
    to memory, query_pos to tgt; values finite, of magnitude at most :data:`VALUE_BOUND` (1e20)."""
    t, m, p, qp = _decoder_inputs(tgt, memory, pos, query_pos, num_heads)
    weights = _weights_arg(weights)
    e = t.shape[2]
    w = _checked(weights, _layer_shapes(weights, e, DECODER_ATTENTIONS, DECODER_NORMS))
    self_blocked, self_additive = _attn_mask_arg(tgt_mask, t.shape[1], t.shape[1], "tgt_mask")
    padding = _padding_arg(memory_key_padding_mask, m.shape[0], m.shape[1], _MEMORY_MASK)
    return decoder_layer_formula(t, m, w, num_heads, pos=p, query_pos=qp, memory_key_padding_mask=padding,
                                 tgt_mask=self_blocked, tgt_additive_mask=self_additive)


def _decoder_inputs(tgt: TensorLike, memory: TensorLike, pos: TensorLike, query_pos: TensorLike, num_heads: int
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Checked ``(tgt [B, Q, E], memory [B, L, E], pos [B, L, E] | None, query_pos [B, Q, E] | None)``."""
    t = _seq("tgt", tgt)
    e = t.shape[2]
    m = _seq("memory", memory, e)
    if m.shape[0] != t.shape[0]:
        raise fail("memory", f"batch size {t.shape[0]} (that of tgt)", f"shape {tuple(m.shape)}")
    p = None if pos is None else _seq("pos", pos, e, like=("memory", m))
    qp = None if query_pos is None else _seq("query_pos", query_pos, e, like=("tgt", t))
    _check_heads(num_heads, e)
    return t, m, p, qp


def decoder_layer_formula(t: torch.Tensor, m: torch.Tensor, weights: Mapping[str, torch.Tensor], num_heads: int, *,
                          pos: torch.Tensor | None = None, query_pos: torch.Tensor | None = None,
                          memory_key_padding_mask: torch.Tensor | None = None, tgt_mask: torch.Tensor | None = None,
                          tgt_additive_mask: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`decoder_layer` on checked tensors, in their dtype, in a form ``torch.onnx.export`` traces."""
    q = _with_pos(t, query_pos)
    t = _layer_norm(t + attention_formula(q, q, t, weights, num_heads, prefix="self_attn.", attn_mask=tgt_mask,
                                          additive_mask=tgt_additive_mask), weights, "norm1")
    t = _layer_norm(t + attention_formula(_with_pos(t, query_pos), _with_pos(m, pos), m, weights, num_heads,
                                          prefix="multihead_attn.", key_padding_mask=memory_key_padding_mask),
                    weights, "norm2")
    return _layer_norm(t + _ffn(t, weights), weights, "norm3")


def _sub(weights: Mapping[str, object], prefix: str) -> dict[str, object]:
    return {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}


def encoder(src: TensorLike, weights: Mapping[str, object], num_layers: int, num_heads: int, *, pos: TensorLike = None,
            key_padding_mask: TensorLike = None) -> torch.Tensor:
    """A stack of encoder layers (weights ``layers.{i}.*``); DETR's post-norm encoder has no final norm.

    Inputs as :func:`encoder_layer` (values finite, of magnitude at most :data:`VALUE_BOUND`)."""
    x = _seq("src", src)
    e = x.shape[2]
    p = None if pos is None else _seq("pos", pos, e, like=("src", x))
    _check_heads(num_heads, e)
    _check_layers(num_layers)
    weights = _weights_arg(weights)
    w = {}
    for i in range(num_layers):
        layer = _sub(weights, f"layers.{i}.")
        w.update({f"layers.{i}.{k}": v for k, v in
                  _checked(layer, _layer_shapes(layer, e, ENCODER_ATTENTIONS, ENCODER_NORMS)).items()})
    out = encoder_formula(x, w, num_layers, num_heads, pos=p,
                          key_padding_mask=_padding_arg(key_padding_mask, x.shape[0], x.shape[1]))
    check_finite("encoder output", out)
    return out


def encoder_formula(x: torch.Tensor, weights: Mapping[str, torch.Tensor], num_layers: int, num_heads: int, *,
                    pos: torch.Tensor | None = None, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`encoder` on checked tensors, in their dtype, in a form ``torch.onnx.export`` traces."""
    for i in range(num_layers):
        x = encoder_layer_formula(x, _sub(weights, f"layers.{i}."), num_heads, pos=pos,
                                  key_padding_mask=key_padding_mask)
    return x


def decoder(tgt: TensorLike, memory: TensorLike, weights: Mapping[str, object], num_layers: int, num_heads: int, *,
            pos: TensorLike = None, query_pos: TensorLike = None, memory_key_padding_mask: TensorLike = None,
            return_intermediate: bool = True) -> torch.Tensor:
    """A stack of decoder layers (``layers.{i}.*``) with the shared final ``norm.*``.

    Returns ``[L, B, Q, E]`` (every layer's output through the final norm) with ``return_intermediate``,
    else ``[1, B, Q, E]`` (the last one), as DETR's ``TransformerDecoder``. Inputs as :func:`decoder_layer`
    (values finite, of magnitude at most :data:`VALUE_BOUND`).
    """
    t, m, p, qp = _decoder_inputs(tgt, memory, pos, query_pos, num_heads)
    e = t.shape[2]
    _check_layers(num_layers)
    weights = _weights_arg(weights)
    w = _checked(weights, {"norm.weight": (e,), "norm.bias": (e,)})
    for i in range(num_layers):
        layer = _sub(weights, f"layers.{i}.")
        w.update({f"layers.{i}.{k}": v for k, v in
                  _checked(layer, _layer_shapes(layer, e, DECODER_ATTENTIONS, DECODER_NORMS)).items()})
    padding = _padding_arg(memory_key_padding_mask, m.shape[0], m.shape[1], _MEMORY_MASK)
    out = decoder_formula(t, m, w, num_layers, num_heads, pos=p, query_pos=qp, memory_key_padding_mask=padding,
                          return_intermediate=return_intermediate)
    check_finite("decoder output", out)
    return out


def _check_layers(num_layers: object) -> None:
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
        raise fail("num_layers", "a positive int", repr(num_layers))


def decoder_formula(t: torch.Tensor, m: torch.Tensor, weights: Mapping[str, torch.Tensor], num_layers: int,
                    num_heads: int, *, pos: torch.Tensor | None = None, query_pos: torch.Tensor | None = None,
                    memory_key_padding_mask: torch.Tensor | None = None,
                    return_intermediate: bool = True) -> torch.Tensor:
    """:func:`decoder` on checked tensors, in their dtype, in a form ``torch.onnx.export`` traces."""
    outputs = []
    for i in range(num_layers):
        t = decoder_layer_formula(t, m, _sub(weights, f"layers.{i}."), num_heads, pos=pos, query_pos=query_pos,
                                  memory_key_padding_mask=memory_key_padding_mask)
        if return_intermediate or i == num_layers - 1:
            outputs.append(_layer_norm(t, weights, "norm"))
    return torch.stack(outputs)
