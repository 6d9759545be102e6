"""oracle.criteria.denoising: DINO's CDN construction on explicit draws, and the denoising losses."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from oracle import OracleInputError
from oracle import boxes as box_ops
from oracle.criteria import CdnDraws, SetCriterion, SetCriterionConfig, cdn_group_count, draw_cdn, prepare_for_cdn
from oracle.criteria.denoising import cdn_attention_mask, inverse_sigmoid, split_denoising

TARGETS = [{"labels": torch.tensor([0, 2]), "boxes": torch.tensor([[0.3, 0.4, 0.2, 0.2], [0.6, 0.5, 0.3, 0.4]])},
           {"labels": torch.tensor([1]), "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.2]])}]


@pytest.mark.parametrize("max_targets, dn_number, groups", [
    (0, 100, 1), (1, 100, 100), (2, 100, 50), (3, 100, 33), (7, 100, 14), (300, 100, 1),
    (5, 10, 20),   # 2 * 10 < 100: never divided by the target count (DINO's rule)
    (5, 0, 1), (1, 50, 50),     # 2 * 50 = 100 >= 100: divided, 100 // 2
])
def test_group_count(max_targets, dn_number, groups):
    assert cdn_group_count(max_targets, dn_number) == groups


def _zero_noise(k):
    return CdnDraws(label_p=torch.ones(k), relabel=torch.zeros(0, dtype=torch.int64),
                    box_sign=torch.zeros(k, 4, dtype=torch.int64), box_part=torch.zeros(k, 4))


def test_layout_without_noise():
    # dn_number 1 -> 2 groups; M = 2 targets max, N = 3 targets in the batch; pad_size = 2 * 2 * 2 = 8.
    q = prepare_for_cdn(TARGETS, dn_number=1, label_noise_ratio=0.5, box_noise_scale=0.0, num_classes=3,
                        num_queries=5, draws=_zero_noise(12))
    assert q.dn_meta == {"pad_size": 8, "num_dn_group": 2}
    # Image 0 fills slots j*2 + {0, 1} of each of the 4 parts; image 1 fills slot j*2 only.
    assert q.valid[0].tolist() == [True] * 8
    assert q.valid[1].tolist() == [True, False] * 4
    assert q.labels[0].tolist() == [0, 2] * 4 and q.labels[1].tolist() == [1, 0] * 4
    torch.testing.assert_close(q.boxes[1, 2], TARGETS[1]["boxes"][0], rtol=0, atol=0)
    torch.testing.assert_close(q.boxes_unact[0, 1], inverse_sigmoid(TARGETS[0]["boxes"][1]), rtol=0, atol=0)
    assert bool((q.boxes_unact[1, 1] == 0).all())


def test_box_noise_by_hand():
    # One target, one group (dn_number 1 -> 2 groups; use sign/part to move one corner).
    targets = [{"labels": torch.tensor([0]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.4]])}]
    k = 4  # 2 groups x (positive, negative) x 1 target
    sign = torch.tensor([[1, 0, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]])
    part = torch.tensor([[0.5, 0.25, 0.0, 1.0 - 1e-9], [0.5, 0.0, 0.0, 0.0], [0.0] * 4, [0.9] * 4])
    q = prepare_for_cdn(targets, dn_number=1, label_noise_ratio=0.0, box_noise_scale=1.0, num_classes=2,
                        num_queries=0, draws=CdnDraws(torch.ones(k), torch.zeros(0, dtype=torch.int64), sign, part))
    # Query 0 (positive): corners [0.4, 0.3, 0.6, 0.7] move by [+0.5*0.1, -0.25*0.2, 0, +~1*0.2].
    want = torch.tensor([0.45, 0.25, 0.6, 0.9])
    torch.testing.assert_close(q.boxes[0, 0], box_ops.convert(want[None], "xyxy", "cxcywh")[0], rtol=0, atol=1e-9)
    # Query 1 (negative of group 0): part 0.5 -> 1.5, x1 moves +0.15, y1 +0.2, x2 +0.1, y2 +0.2 (clamped at 1).
    want_neg = torch.tensor([0.55, 0.5, 0.7, 0.9]).clamp(0, 1)
    got = q.boxes[0, 1]
    torch.testing.assert_close(got, torch.tensor([(want_neg[0] + want_neg[2]) / 2, (want_neg[1] + want_neg[3]) / 2,
                                                  want_neg[2] - want_neg[0], want_neg[3] - want_neg[1]]),
                               rtol=0, atol=1e-15)
    # Query 3 (negative of group 1), all corners +1.9 half-extents: clamped to the image.
    x1, y1, x2, y2 = 0.4 + 0.19, 0.3 + 0.38, min(0.6 + 0.19, 1.0), min(0.7 + 0.38, 1.0)
    torch.testing.assert_close(q.boxes[0, 3], torch.tensor([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]),
                               rtol=0, atol=1e-15)


def test_label_noise_by_hand():
    # 2 groups x 2 parts x 3 targets = 12 known queries; ratio 0.5 -> replaced where p < 0.25.
    p = torch.tensor([0.9, 0.1, 0.9, 0.9, 0.9, 0.24, 0.25, 0.9, 0.9, 0.0, 0.9, 0.9])
    relabel = torch.tensor([1, 0, 2])
    d = _zero_noise(12)
    q = prepare_for_cdn(TARGETS, dn_number=1, label_noise_ratio=0.5, box_noise_scale=0.0, num_classes=3,
                        num_queries=0, draws=CdnDraws(p, relabel, d.box_sign, d.box_part))
    # Known order: part-major, targets (img0 t0, img0 t1, img1 t0). Replaced: k=1 -> 1, k=5 -> 0, k=9 -> 2.
    # k=1: part 0, img0 t1 (slot 1); k=5: part 1, img1 t0 (slot 2); k=9: part 3, img0 t0 (slot 6).
    assert q.labels[0, 1].item() == 1 and q.labels[1, 2].item() == 0 and q.labels[0, 6].item() == 2
    assert q.labels[0, 0].item() == 0 and q.labels[1, 4].item() == 1      # p = 0.25 is not < 0.25
    with pytest.raises(OracleInputError, match=r"draws.relabel: expected 3 new labels"):
        prepare_for_cdn(TARGETS, dn_number=1, label_noise_ratio=0.5, box_noise_scale=0.0, num_classes=3,
                        num_queries=0, draws=CdnDraws(p, relabel[:2], d.box_sign, d.box_part))


@given(st.integers(0, 2**31 - 1), st.floats(0.1, 1.0), st.floats(0.0, 1.0))
def test_noise_is_bounded_by_the_scale(seed, scale, ratio):
    targets = [{"labels": torch.tensor([0, 1, 2]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.3], [0.3, 0.6, 0.1, 0.1],
                                                                          [0.7, 0.3, 0.4, 0.2]])}]
    draws = draw_cdn(targets, dn_number=2, label_noise_ratio=ratio, num_classes=3,
                     generator=torch.Generator().manual_seed(seed))
    q = prepare_for_cdn(targets, dn_number=2, label_noise_ratio=ratio, box_noise_scale=scale, num_classes=3,
                        num_queries=0, draws=draws)
    g = q.dn_meta["num_dn_group"]
    orig = box_ops.convert(targets[0]["boxes"], "cxcywh", "xyxy")
    half = targets[0]["boxes"][:, 2:].repeat(1, 2) / 2
    for part in range(2 * g):
        noised = q.boxes[0, part * 3:(part + 1) * 3]
        corners = torch.cat([noised[:, :2] - noised[:, 2:] / 2, noised[:, :2] + noised[:, 2:] / 2], dim=1)
        shift = (corners - orig).abs() / (half * scale)
        limit = 1.0 if part % 2 == 0 else 2.0           # positives move < 1 half-extent, negatives < 2
        assert bool((shift <= limit + 1e-9).all())
        assert bool(((corners >= -1e-15) & (corners <= 1 + 1e-15)).all())


def test_label_noise_rate_on_fixed_draws():
    targets = [{"labels": torch.zeros(50, dtype=torch.int64), "boxes": torch.full((50, 4), 0.2)}]
    draws = draw_cdn(targets, dn_number=100, label_noise_ratio=0.5, num_classes=80,
                     generator=torch.Generator().manual_seed(0))
    q = prepare_for_cdn(targets, dn_number=100, label_noise_ratio=0.5, box_noise_scale=1.0, num_classes=80,
                        num_queries=0, draws=draws)
    n = q.labels.numel()                                  # 2 groups x 2 x 50 = 200 known queries
    chosen = int((draws.label_p < 0.25).sum())
    # 200 Bernoulli(0.25) trials: 50 expected, sd ~6.1; a chosen label stays 0 with probability 1/80.
    assert abs(chosen - 50) < 4 * math.sqrt(200 * 0.25 * 0.75)
    assert int((q.labels != 0).sum()) == int((draws.relabel != 0).sum())
    assert n == 200


def test_attention_mask():
    m = cdn_attention_mask(pad_size=8, groups=2, num_queries=3)
    assert m.shape == (11, 11)
    assert bool(m[8:, :8].all()) and not bool(m[8:, 8:].any())      # matching queries never see denoising ones
    assert not bool(m[:4, :4].any()) and bool(m[:4, 4:8].all())      # group 0 sees itself only
    assert bool(m[4:8, :4].all()) and not bool(m[4:8, 4:8].any())
    assert not bool(m[:8, 8:].any())                                  # denoising queries see matching queries


def _dino():
    return SetCriterion(SetCriterionConfig.from_profile("dino", num_classes=3))


def _combined(batch, pad, q, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"pred_logits": torch.randn(batch, pad + q, 3, generator=g),
            "pred_boxes": torch.rand(batch, pad + q, 4, generator=g) * 0.4 + 0.1}


def test_dn_losses_use_positive_slots_and_group_normaliser():
    q = prepare_for_cdn(TARGETS, dn_number=1, label_noise_ratio=0.0, box_noise_scale=0.0, num_classes=3,
                        num_queries=4, draws=_zero_noise(12))
    meta = q.dn_meta
    matching, dn = split_denoising(_combined(2, meta["pad_size"], 4), meta)
    out = _dino()({**matching, "dn_outputs": dn, "dn_meta": meta}, TARGETS)
    # Positives: group g at slots g * 4 + t. num_boxes 3, G 2 -> normaliser 6.
    src = torch.cat([dn["pred_boxes"][0, [0, 1, 4, 5]], dn["pred_boxes"][1, [0, 4]]])
    tgt = torch.cat([TARGETS[0]["boxes"].repeat(2, 1), TARGETS[1]["boxes"].repeat(2, 1)])
    assert out["loss_bbox_dn"].item() == pytest.approx((src - tgt).abs().sum().item() / 6, rel=1e-13)
    assert out["loss_xy_dn"].item() == pytest.approx((src - tgt)[:, :2].abs().sum().item() / 6, rel=1e-13)


def test_matching_loss_never_sees_denoising_queries():
    meta = {"pad_size": 8, "num_dn_group": 2}
    combined = _combined(2, 8, 4)
    combined["pred_logits"].requires_grad_(True)
    combined["pred_boxes"].requires_grad_(True)
    matching, dn = split_denoising(combined, meta)
    crit = _dino()
    out = crit({**matching, "dn_outputs": dn, "dn_meta": meta}, TARGETS)
    main = sum(v for k, v in crit.weighted(out).items() if "_dn" not in k)
    g_logits, g_boxes = torch.autograd.grad(main, (combined["pred_logits"], combined["pred_boxes"]))
    assert bool((g_logits[:, :8] == 0).all()) and bool((g_boxes[:, :8] == 0).all())
    assert bool((g_logits[:, 8:] != 0).any())
    dn_total = sum(v for k, v in crit.weighted(out).items() if "_dn" in k)
    g_logits, _ = torch.autograd.grad(dn_total, (combined["pred_logits"], combined["pred_boxes"]))
    assert bool((g_logits[:, 8:] == 0).all())


def test_dn_with_zero_targets_gives_zero_constants():
    empty = [{"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)}] * 2
    q = prepare_for_cdn(empty, dn_number=100, label_noise_ratio=0.5, box_noise_scale=1.0, num_classes=3,
                        num_queries=4, draws=_zero_noise(0))
    assert q.dn_meta == {"pad_size": 0, "num_dn_group": 1} and q.labels.shape == (2, 0)
    layer = _combined(2, 0, 4)
    layer["pred_logits"].requires_grad_(True)
    crit = _dino()
    out = crit({**layer, "aux_outputs": [_combined(2, 0, 4, seed=1)], "dn_meta": q.dn_meta}, empty)
    for key in ("loss_ce_dn", "loss_bbox_dn", "loss_giou_dn", "loss_xy_dn", "loss_hw_dn", "cardinality_error_dn",
                "loss_ce_dn_0", "loss_bbox_dn_0"):
        assert out[key].item() == 0.0
    (g,) = torch.autograd.grad(crit.total(out), layer["pred_logits"])
    assert bool(torch.isfinite(g).all())


def test_dn_mixed_empty_image_and_aux_keys():
    targets = [TARGETS[0], {"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)}]
    meta = {"pad_size": 8, "num_dn_group": 2}
    matching, dn = split_denoising(_combined(2, 8, 4), meta)
    aux_matching, aux_dn = split_denoising(_combined(2, 8, 4, seed=3), meta)
    out = _dino()({**matching, "aux_outputs": [aux_matching], "dn_outputs": {**dn, "aux_outputs": [aux_dn]},
                   "dn_meta": meta}, targets)
    assert {"loss_ce_dn", "loss_ce_dn_0", "loss_giou_dn_0", "cardinality_error_dn_0"} <= set(out)
    assert all(bool(torch.isfinite(v)) for v in out.values())
    with pytest.raises(OracleInputError, match=r"outputs\['dn_outputs'\]\['aux_outputs'\]: expected 1 layers"):
        _dino()({**matching, "aux_outputs": [aux_matching], "dn_outputs": dn, "dn_meta": meta}, targets)
