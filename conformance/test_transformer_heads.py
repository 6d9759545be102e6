"""DETR's transformer encoder and decoder, and the DETR head, with explicit weights; YOLOv8's box decode."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from components.canonical import canonical_keys
from conformance._cases import generated, golden_params


@pytest.mark.parametrize("case", golden_params("transformer.", "heads."))
def test_golden(case, detconf, request):
    detconf.check_case(case, request)


@generated
@given(b=st.integers(1, 2), length=st.integers(1, 6), heads=st.sampled_from([1, 2, 4]), seed=st.integers(0, 2**16),
       padded=st.integers(0, 3))
def test_encoder_generated(detconf, request, b, length, heads, seed, padded):
    from oracle import params
    rng = np.random.Generator(np.random.PCG64(seed))
    e = 8
    mask = torch.zeros(b, length, dtype=torch.bool)
    mask[:, length - min(padded, length - 1):] = True if length > 1 else False
    inputs = {"src": torch.from_numpy(rng.standard_normal((b, length, e))),
              "pos": torch.from_numpy(rng.standard_normal((b, length, e))), "key_padding_mask": mask,
              "weights": canonical_keys(params.encoder_weights(e, 16, 2, seed))}
    detconf.check_generated("transformer.encoder", inputs, {"num_layers": 2, "num_heads": heads}, "detr", request)


@pytest.mark.parametrize("intermediate", [True, False], ids=["intermediate", "last"])
@generated
@given(b=st.integers(1, 2), queries=st.integers(1, 4), length=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_decoder_generated(detconf, request, intermediate, b, queries, length, seed):
    from oracle import params
    rng = np.random.Generator(np.random.PCG64(seed))
    e = 8
    inputs = {"tgt": torch.zeros(b, queries, e, dtype=torch.float64),
              "memory": torch.from_numpy(rng.standard_normal((b, length, e))),
              "pos": torch.from_numpy(rng.standard_normal((b, length, e))),
              "query_pos": torch.from_numpy(rng.standard_normal((b, queries, e))),
              "weights": canonical_keys(params.decoder_weights(e, 16, 2, seed))}
    detconf.check_generated("transformer.decoder", inputs,
                            {"num_layers": 2, "num_heads": 2, "return_intermediate": intermediate}, "detr", request)


@generated
@given(b=st.integers(1, 2), queries=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_head_generated(detconf, request, b, queries, seed):
    from oracle import params
    rng = np.random.Generator(np.random.PCG64(seed))
    head = {"hidden": torch.from_numpy(rng.standard_normal((2, b, queries, 8))),
            "weights": canonical_keys(params.detr_head_weights(8, 5, seed))}
    detconf.check_generated("heads.detr", head, {"num_reg_fcs": 2}, "detr", request)


@generated
@given(b=st.integers(1, 2), sizes=st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6)), min_size=1, max_size=3),
       bins=st.sampled_from([2, 8, 16]), seed=st.integers(0, 2**16), fmt=st.sampled_from(["cxcywh", "xyxy"]))
def test_yolov8_decode_generated(detconf, request, b, sizes, bins, seed, fmt):
    rng = np.random.Generator(np.random.PCG64(seed))
    maps = [torch.from_numpy(rng.standard_normal((b, 4 * bins, h, w)) * 3) for h, w in sizes]
    strides = [8 * 2**i for i in range(len(sizes))]
    detconf.check_generated("heads.yolov8_decode", {"box_maps": maps}, {"strides": strides, "fmt": fmt}, "ultralytics",
                            request)
