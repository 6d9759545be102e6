"""oracle.masks, oracle.position, oracle.transformer, oracle.heads, oracle.params."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from oracle import OracleInputError
from oracle import heads as H
from oracle import masks as M
from oracle import params as P
from oracle import position as PE
from oracle import transformer as T
from oracle.conventions import PE_DEFORMABLE_DETR, PE_DETR, PE_DINO, SinePEConvention

from ..conftest import import_or_skip

# --------------------------------------------------------------------------- masks


def test_padding_mask_by_hand():
    m = M.padding_mask([(2, 3), (1, 1)], (3, 4))
    assert m[0].int().tolist() == [[0, 0, 0, 1], [0, 0, 0, 1], [1, 1, 1, 1]]
    assert m[1].int().tolist() == [[0, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]
    with pytest.raises(OracleInputError, match=r"image_sizes\[:, 1\]: expected values <= 4, got 5"):
        M.padding_mask([(2, 5)], (3, 4))


def test_nearest_index_matches_torch_on_every_size_pair():
    for i in range(1, 97):
        for o in range(1, 97):
            x = torch.arange(i, dtype=torch.float32)[None, None, :, None]
            want = F.interpolate(x, size=(o, 1), mode="nearest")[0, 0, :, 0].long()
            assert torch.equal(M.nearest_source_index(i, o), want), (i, o)


@pytest.mark.parametrize("in_size, out_size", [(2, 82), (3, 123), (4, 94)])
def test_nearest_uses_the_float32_scale(in_size, out_size):
    # At these sizes floor(i * in / out) in float64 picks another row than PyTorch's float32 rule.
    i = np.arange(out_size)
    float64_rule = np.minimum(np.floor(i * (in_size / out_size)).astype(int), in_size - 1)
    ours = M.nearest_source_index(in_size, out_size).numpy()
    x = torch.arange(in_size, dtype=torch.float32)[None, None, :, None]
    assert np.array_equal(ours, F.interpolate(x, size=(out_size, 1), mode="nearest")[0, 0, :, 0].long().numpy())
    assert not np.array_equal(ours, float64_rule)


def test_bilinear_resize_by_hand():
    # [0, 1] to 4 columns: sources (i + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (the last index
    # blends with itself).
    assert M.resize_bilinear(torch.tensor([[0.0, 1.0]]), (1, 4)).tolist() == [[0.0, 0.25, 0.75, 1.0]]
    assert M.bilinear_weights(2, 4).tolist() == [[1.0, 0.0], [0.75, 0.25], [0.25, 0.75], [0.0, 1.0]]


@pytest.mark.parametrize("size_in, size_out", [((16, 16), (64, 64)), ((3, 5), (7, 16)), ((4, 4), (8, 12)),
                                               ((5, 2), (5, 9)), ((9, 7), (4, 3)), ((6, 6), (6, 6))])
def test_bilinear_resize_matches_torch(size_in, size_out):
    x = torch.randn(2, 3, *size_in, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    want = F.interpolate(x, size_out, mode="bilinear", align_corners=False)
    torch.testing.assert_close(M.resize_bilinear(x, size_out), want, rtol=1e-14, atol=1e-15)


def test_bilinear_resize_refuses_bad_input():
    with pytest.raises(OracleInputError, match="x"):
        M.resize_bilinear(torch.zeros(3, 0), (2, 2))
    with pytest.raises(OracleInputError, match="x"):
        M.resize_bilinear(torch.tensor([[float("nan")]]), (2, 2))
    with pytest.raises(OracleInputError, match="size"):
        M.resize_bilinear(torch.zeros(2, 2), (0, 2))


@pytest.mark.parametrize("sizes, padded, feature", [
    ([(5, 3)], (32, 32), (1, 1)),            # an image smaller than the stride
    ([(1, 1)], (4, 4), (2, 3)),              # a 1x1 valid region
    ([(20, 37), (33, 15)], (33, 37), (5, 7)),  # non-square maps
    ([(100, 7)], (100, 7), (3, 3)),          # scale factors 100/3 and 7/3 are not representable
    ([(25, 38), (13, 40)], (25, 40), (13, 20)),
])
def test_resize_matches_detr_interpolation(sizes, padded, feature):
    mask = M.padding_mask(sizes, padded)
    detr = F.interpolate(mask[None].float(), size=feature).to(torch.bool)[0]  # detr models/backbone.py
    assert torch.equal(M.resize_nearest(mask, feature), detr)


def test_yolo_mask_helpers():
    masks = torch.zeros(1, 4, 6, dtype=torch.float64)
    masks[0, 1:3, 2:5] = 1
    assert torch.equal(M.downsample_masks(masks, (2, 3)), F.interpolate(masks[None], (2, 3), mode="nearest")[0])
    full = torch.ones(1, 4, 6, dtype=torch.float64)
    cropped = M.crop_mask(full, torch.tensor([[1.0, 0.5, 3.0, 2.0]]))
    # columns 1, 2 (>= 1, < 3); rows 1 (>= 0.5, < 2)
    assert cropped[0].nonzero().tolist() == [[1, 1], [1, 2]]


# --------------------------------------------------------------------------- positional encoding

def _closed_form(y: float, x: float, c: int, conv: SinePEConvention) -> float:
    """Channel c of the encoding at normalised positions (y, x), written from the formula."""
    f = conv.num_feats
    ty, tx = conv.temperature if isinstance(conv.temperature, tuple) else (conv.temperature,) * 2
    v, t, k = (y, ty, c) if c < f else (x, tx, c - f)
    arg = v / t ** (2 * (k // 2) / f)
    return math.sin(arg) if k % 2 == 0 else math.cos(arg)


@pytest.mark.parametrize("conv", [PE_DETR, PE_DEFORMABLE_DETR, PE_DINO, SinePEConvention(num_feats=8, normalize=False),
                                  SinePEConvention(num_feats=16, temperature=(20.0, 10000.0))],
                         ids=["detr", "deformable", "dino", "unnormalized", "distinct-yx-temperatures"])
def test_position_encoding_closed_form(conv):
    mask = M.padding_mask([(3, 4), (2, 2)], (3, 5))
    pos = PE.sine_position_encoding(mask, convention=conv)
    assert pos.shape == (2, 2 * conv.num_feats, 3, 5)
    for b, i, j in [(0, 0, 0), (0, 2, 3), (1, 1, 1), (0, 1, 4), (1, 2, 4)]:
        valid = ~mask[b]
        y = float(valid[: i + 1, j].sum())
        x = float(valid[i, : j + 1].sum())
        if conv.normalize:
            y = (y + conv.offset) / (float(valid[:, j].sum()) + conv.eps) * conv.scale
            x = (x + conv.offset) / (float(valid[i, :].sum()) + conv.eps) * conv.scale
        for c in (0, 1, 2, 7, conv.num_feats - 1, conv.num_feats, conv.num_feats + 3, 2 * conv.num_feats - 1):
            assert pos[b, c, i, j].item() == pytest.approx(_closed_form(y, x, c, conv), rel=1e-12, abs=1e-12)


def test_position_conventions_differ_and_none_means_all_valid():
    mask = torch.zeros(1, 3, 4, dtype=torch.bool)
    assert torch.equal(PE.sine_position_encoding(None, (1, 3, 4)), PE.sine_position_encoding(mask))
    a, b, c = (PE.sine_position_encoding(mask, convention=k) for k in (PE_DETR, PE_DEFORMABLE_DETR, PE_DINO))
    assert not torch.allclose(a, b) and not torch.allclose(a, c)


def test_fully_padded_row_and_column_are_finite():
    mask = M.padding_mask([(2, 3)], (4, 5))  # rows 2-3 and columns 3-4 fully padded
    for conv in (PE_DETR, PE_DEFORMABLE_DETR):
        assert bool(torch.isfinite(PE.sine_position_encoding(mask, convention=conv)).all())
    with pytest.raises(OracleInputError, match="no fully padded row or column when eps = 0"):
        PE.sine_position_encoding(mask, convention=SinePEConvention(eps=0.0))


def test_position_encoding_matches_transformers():
    hf = import_or_skip("transformers.models.detr.modeling_detr", 'pip install -c constraints.txt -e ".[transformers]"')
    mask = M.padding_mask([(3, 4), (5, 2)], (5, 6))
    module = hf.DetrSinePositionEmbedding(num_position_features=64, normalize=True)
    theirs = module((2, 3, 5, 6), "cpu", torch.float64, mask=(~mask).to(torch.int64))  # pixel mask: 1 = valid
    ours = PE.sine_position_encoding(mask, convention=SinePEConvention(num_feats=64))
    torch.testing.assert_close(ours, theirs, rtol=1e-13, atol=1e-13)


# --------------------------------------------------------------------------- attention and layers

def _naive_attention(q, k, v, w, heads, blocked):
    """Scaled dot-product attention written with explicit loops over images, heads and queries."""
    e = q.shape[-1]
    d = e // heads
    wq, wk, wv = w["in_proj_weight"].split(e)
    bq, bk, bv = w["in_proj_bias"].split(e)
    out = torch.zeros_like(q)
    for b in range(q.shape[0]):
        for h in range(heads):
            sl = slice(h * d, (h + 1) * d)
            qh = q[b] @ wq[sl].T + bq[sl]
            kh = k[b] @ wk[sl].T + bk[sl]
            vh = v[b] @ wv[sl].T + bv[sl]
            for i in range(q.shape[1]):
                keep = ~blocked[b, i]
                scores = torch.tensor([float(qh[i] @ kh[j]) / math.sqrt(d) for j in range(k.shape[1])])
                p = torch.zeros(k.shape[1], dtype=torch.float64)
                if keep.any():
                    p[keep] = torch.softmax(scores[keep].double(), 0)
                out[b, i, sl] = p @ vh
    return out @ w["out_proj.weight"].T + w["out_proj.bias"]


def _mha_weights(e, seed):
    w = P.encoder_layer_weights(e, 2 * e, seed)
    return {k.removeprefix("self_attn."): v for k, v in w.items() if k.startswith("self_attn.")}


@given(st.integers(1, 2), st.integers(1, 4), st.integers(1, 5), st.sampled_from([1, 2, 4]), st.integers(0, 99))
def test_attention_matches_a_naive_loop(batch, lq, lk, heads, seed):
    g = torch.Generator().manual_seed(seed)
    e = 8
    q, k, v = (torch.randn(batch, n, e, generator=g, dtype=torch.float64) for n in (lq, lk, lk))
    pad = torch.rand(batch, lk, generator=g) < 0.3
    w = _mha_weights(e, seed)
    got = T.multi_head_attention(q, k, v, w, heads, key_padding_mask=pad)
    want = _naive_attention(q, k, v, w, heads, pad[:, None, :].expand(batch, lq, lk))
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_attention_matches_torch_and_defines_fully_masked_rows():
    g = torch.Generator().manual_seed(0)
    e, heads = 8, 2
    q = torch.randn(2, 3, e, generator=g, dtype=torch.float64)
    k = torch.randn(2, 5, e, generator=g, dtype=torch.float64)
    w = _mha_weights(e, 1)
    mha = torch.nn.MultiheadAttention(e, heads, batch_first=True, dtype=torch.float64)
    mha.load_state_dict({"in_proj_weight": w["in_proj_weight"], "in_proj_bias": w["in_proj_bias"],
                         "out_proj.weight": w["out_proj.weight"], "out_proj.bias": w["out_proj.bias"]})
    pad = torch.tensor([[False, False, True, False, True], [True, False, False, False, False]])
    causal = torch.tensor([[False, True, True, True, True], [False, False, True, True, True], [False] * 5])
    theirs, _ = mha(q, k, k, key_padding_mask=pad, attn_mask=causal, need_weights=False)
    ours = T.multi_head_attention(q, k, k, w, heads, key_padding_mask=pad, attn_mask=causal)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    # Image 1, query 0 can only see key 0, which is padding. A softmax over all -inf is NaN (what the DETR-era
    # attention returned); the reference defines zero weights, so the output is the out-projection bias, and
    # torch 2.13's nn.MultiheadAttention returns the same with need_weights=False...
    assert bool(torch.isnan(torch.softmax(torch.full((3,), float("-inf")), 0)).all())
    torch.testing.assert_close(ours[1, 0], w["out_proj.bias"], rtol=0, atol=0)
    torch.testing.assert_close(theirs[1, 0], w["out_proj.bias"], rtol=1e-15, atol=1e-15)
    # ... but NaN with need_weights=True, its default (mmcv's DETR layers use it).
    all_padded = torch.ones(2, 5, dtype=torch.bool)
    theirs, _ = mha(q, k, k, key_padding_mask=all_padded, need_weights=False)
    torch.testing.assert_close(theirs, w["out_proj.bias"].expand_as(theirs), rtol=1e-15, atol=1e-15)
    theirs, _ = mha(q, k, k, key_padding_mask=all_padded)
    assert bool(torch.isnan(theirs).all())
    ours = T.multi_head_attention(q, k, k, w, heads, key_padding_mask=all_padded)
    torch.testing.assert_close(ours, w["out_proj.bias"].expand_as(ours), rtol=0, atol=0)


def _load_encoder_layer(e, f, heads, w):
    layer = torch.nn.TransformerEncoderLayer(e, heads, f, dropout=0.0, batch_first=True, dtype=torch.float64)
    layer.load_state_dict(w)
    return layer.eval()


def test_encoder_layer_without_pos_is_the_standard_post_norm_layer():
    e, f, heads = 8, 16, 2
    w = P.encoder_layer_weights(e, f, 3)
    x = torch.randn(2, 6, e, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    pad = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    theirs = _load_encoder_layer(e, f, heads, w)(x, src_key_padding_mask=pad)
    ours = T.encoder_layer(x, w, heads, key_padding_mask=pad)
    torch.testing.assert_close(ours[~pad], theirs[~pad], rtol=1e-12, atol=1e-12)


def test_encoder_layer_adds_pos_to_queries_and_keys_only():
    e, f, heads = 8, 16, 2
    w = P.encoder_layer_weights(e, f, 4)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(1, 5, e, dtype=torch.float64, generator=g)
    pos = torch.randn(1, 5, e, dtype=torch.float64, generator=g)
    mha = torch.nn.MultiheadAttention(e, heads, batch_first=True, dtype=torch.float64)
    mha.load_state_dict({k.removeprefix("self_attn."): v for k, v in w.items() if k.startswith("self_attn.")})
    attended, _ = mha(x + pos, x + pos, x, need_weights=False)
    h = F.layer_norm(x + attended, (e,), w["norm1.weight"], w["norm1.bias"])
    ffn = torch.relu(h @ w["linear1.weight"].T + w["linear1.bias"]) @ w["linear2.weight"].T + w["linear2.bias"]
    want = F.layer_norm(h + ffn, (e,), w["norm2.weight"], w["norm2.bias"])
    torch.testing.assert_close(T.encoder_layer(x, w, heads, pos=pos), want, rtol=1e-12, atol=1e-12)


def test_decoder_layer_without_pos_is_the_standard_post_norm_layer():
    e, f, heads = 8, 16, 2
    w = P.decoder_layer_weights(e, f, 5)
    g = torch.Generator().manual_seed(5)
    tgt = torch.randn(2, 4, e, dtype=torch.float64, generator=g)
    memory = torch.randn(2, 6, e, dtype=torch.float64, generator=g)
    pad = torch.tensor([[False] * 6, [False] * 3 + [True] * 3])
    layer = torch.nn.TransformerDecoderLayer(e, heads, f, dropout=0.0, batch_first=True, dtype=torch.float64)
    layer.load_state_dict(w)
    theirs = layer.eval()(tgt, memory, memory_key_padding_mask=pad)
    torch.testing.assert_close(T.decoder_layer(tgt, memory, w, heads, memory_key_padding_mask=pad), theirs,
                               rtol=1e-12, atol=1e-12)


def test_decoder_layer_adds_positions_to_queries_and_memory_keys_only():
    e, f, heads = 8, 16, 2
    w = P.decoder_layer_weights(e, f, 6)
    g = torch.Generator().manual_seed(6)
    tgt = torch.randn(1, 3, e, dtype=torch.float64, generator=g)
    qpos = torch.randn(1, 3, e, dtype=torch.float64, generator=g)
    memory = torch.randn(1, 5, e, dtype=torch.float64, generator=g)
    pos = torch.randn(1, 5, e, dtype=torch.float64, generator=g)

    def mha(prefix):
        m = torch.nn.MultiheadAttention(e, heads, batch_first=True, dtype=torch.float64)
        m.load_state_dict({k.removeprefix(prefix): v for k, v in w.items() if k.startswith(prefix)})
        return m

    def norm(x, name):
        return F.layer_norm(x, (e,), w[name + ".weight"], w[name + ".bias"])
    t = norm(tgt + mha("self_attn.")(tgt + qpos, tgt + qpos, tgt, need_weights=False)[0], "norm1")
    t = norm(t + mha("multihead_attn.")(t + qpos, memory + pos, memory, need_weights=False)[0], "norm2")
    ffn = torch.relu(t @ w["linear1.weight"].T + w["linear1.bias"]) @ w["linear2.weight"].T + w["linear2.bias"]
    want = norm(t + ffn, "norm3")
    torch.testing.assert_close(T.decoder_layer(tgt, memory, w, heads, pos=pos, query_pos=qpos), want,
                               rtol=1e-12, atol=1e-12)


def _encode(image, mask, w, heads):
    pos = PE.sine_position_encoding(mask, convention=SinePEConvention(num_feats=image.shape[1] // 2))
    b, e, h, wd = image.shape
    seq = image.flatten(2).transpose(1, 2)
    out = T.encoder(seq, w, 2, heads, pos=pos.flatten(2).transpose(1, 2), key_padding_mask=mask.flatten(1))
    return out.transpose(1, 2).reshape(b, e, h, wd)


def test_padding_invariance_and_batch_equals_images():
    e, heads = 8, 2
    w = P.encoder_weights(e, 16, 2, 7)
    g = torch.Generator().manual_seed(7)
    a = torch.randn(1, e, 3, 4, dtype=torch.float64, generator=g)
    b = torch.randn(1, e, 2, 5, dtype=torch.float64, generator=g)
    alone_a = _encode(a, torch.zeros(1, 3, 4, dtype=torch.bool), w, heads)
    alone_b = _encode(b, torch.zeros(1, 2, 5, dtype=torch.bool), w, heads)
    batch = torch.zeros(2, e, 3, 5, dtype=torch.float64)
    batch[0, :, :3, :4], batch[1, :, :2, :5] = a[0], b[0]
    batch[0, :, :, 4] = 123.0  # garbage in the padding must not leak into the valid region
    mask = M.padding_mask([(3, 4), (2, 5)], (3, 5))
    out = _encode(batch, mask, w, heads)
    torch.testing.assert_close(out[0, :, :3, :4], alone_a[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out[1, :, :2, :5], alone_b[0], rtol=1e-12, atol=1e-12)


def test_decoder_stack_intermediate_outputs():
    e, heads = 8, 2
    w = P.decoder_weights(e, 16, 3, 11)
    g = torch.Generator().manual_seed(11)
    tgt, memory = torch.zeros(2, 4, e, dtype=torch.float64), torch.randn(2, 6, e, dtype=torch.float64, generator=g)
    qpos = torch.randn(2, 4, e, dtype=torch.float64, generator=g)
    stack = T.decoder(tgt, memory, w, 3, heads, query_pos=qpos)
    last = T.decoder(tgt, memory, w, 3, heads, query_pos=qpos, return_intermediate=False)
    assert stack.shape == (3, 2, 4, e) and last.shape == (1, 2, 4, e)
    torch.testing.assert_close(stack[-1], last[0], rtol=0, atol=0)
    one_layer = {k.removeprefix("layers.0."): v for k, v in w.items() if k.startswith("layers.0.")}
    first = T.decoder_layer(tgt, memory, one_layer, heads, query_pos=qpos)
    torch.testing.assert_close(stack[0], F.layer_norm(first, (e,), w["norm.weight"], w["norm.bias"]), rtol=0, atol=0)


# --------------------------------------------------------------------------- head and weights

def test_detr_head_matches_linear_modules():
    e, k = 8, 5
    w = P.detr_head_weights(e, k, 2)
    hidden = torch.randn(3, 2, 4, e, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    cls = torch.nn.Linear(e, k, dtype=torch.float64)
    cls.load_state_dict({"weight": w["cls.weight"], "bias": w["cls.bias"]})
    mlp = torch.nn.Sequential(torch.nn.Linear(e, e), torch.nn.ReLU(), torch.nn.Linear(e, e), torch.nn.ReLU(),
                              torch.nn.Linear(e, 4)).double()
    mlp.load_state_dict({"0.weight": w["reg.0.weight"], "0.bias": w["reg.0.bias"], "2.weight": w["reg.1.weight"],
                         "2.bias": w["reg.1.bias"], "4.weight": w["reg.out.weight"], "4.bias": w["reg.out.bias"]})
    logits, boxes = H.detr_head(hidden, w)
    torch.testing.assert_close(logits, cls(hidden), rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(boxes, mlp(hidden).sigmoid(), rtol=1e-13, atol=1e-13)


def test_seeded_weights_are_deterministic():
    a, b, c = P.decoder_weights(8, 16, 2, 1), P.decoder_weights(8, 16, 2, 1), P.decoder_weights(8, 16, 2, 2)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["layers.0.linear1.weight"], c["layers.0.linear1.weight"])
    assert a["layers.1.multihead_attn.in_proj_weight"].shape == (24, 8) and a["norm.weight"].shape == (8,)


def test_attention_by_blocks_is_bit_identical_to_the_whole(monkeypatch):
    # Above _ATTENTION_BLOCK scores the attention runs one (image, head) matrix at a time; it must
    # give the same bits as the batched computation, gradients included, with padded keys, fully masked
    # rows (an all-padded image) and an additive float mask.
    rng = np.random.default_rng(11)
    b, lq, lk, e, heads = 3, 7, 9, 8, 2
    w = {k.removeprefix("self_attn."): v for k, v in P.encoder_layer_weights(e, 2 * e, 8).items()
         if k.startswith("self_attn.")}
    q, k, v = (torch.tensor(rng.standard_normal((b, n, e)), requires_grad=True) for n in (lq, lk, lk))
    pad = torch.zeros(b, lk, dtype=torch.bool)
    pad[0, 6:] = True
    pad[2, :] = True  # every key of image 2 is padding: fully masked rows
    additive = torch.tensor(rng.standard_normal((lq, lk)))
    additive[1, 3] = -math.inf

    def run(block):
        monkeypatch.setattr(T, "_ATTENTION_BLOCK", block)
        out = T.multi_head_attention(q, k, v, w, heads, key_padding_mask=pad, attn_mask=additive)
        grads = torch.autograd.grad(out.square().sum(), (q, k, v))
        return out, grads
    whole, whole_grads = run(1 << 40)
    blocked, blocked_grads = run(0)
    assert torch.equal(whole, blocked)
    assert all(torch.equal(g, h) for g, h in zip(whole_grads, blocked_grads))
    assert torch.isfinite(whole).all() and whole[2].abs().sum() > 0  # out_proj bias only for image 2
