"""The mmdet adapter's own conversions (conformance/adapters/mmdet.py), where the conformance suite cannot reach
them on this machine: the integer-label route of FocalLoss (taken on CUDA), the mask-to-img_shape conversion, and
the weight-name mapping onto mmdet's transformer stacks."""

from __future__ import annotations

import pytest
import torch

from ..conftest import import_or_skip

INSTALL = "see docs/install.md (mmcv 2.1.0 built with ops, then mmdet 3.3.0)"


@pytest.fixture(scope="module")
def adapter():
    import_or_skip("mmdet.models", INSTALL)
    from conformance.adapters.mmdet import MMDetAdapter, make_adapter
    a = make_adapter()
    assert isinstance(a, MMDetAdapter), getattr(a, "reason", "")
    return a


@pytest.mark.parametrize("shape", [(5,), (5, 4)])
def test_focal_label_route_equals_the_target_route(adapter, shape):
    # On CUDA the adapter passes hard targets as labels (mmcv op); on CPU that route is FocalLoss's one_hot path,
    # which must give exactly what the one-hot targets give: the conversion (background = C, 1-D as one column).
    from conformance.adapters.mmdet import _focal
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(shape, generator=g) * 4
    if len(shape) == 1:
        targets = (torch.rand(shape, generator=g) < 0.5).float()
    else:
        labels = torch.randint(0, shape[1] + 1, shape[:1], generator=g)  # shape[1] = background
        targets = torch.nn.functional.one_hot(labels, shape[1] + 1)[:, : shape[1]].float()
    for reduction in ("none", "sum", "mean"):
        loss = adapter.MODELS.build(dict(type="FocalLoss", use_sigmoid=True, reduction=reduction))
        want = loss(logits, targets)
        got = _focal(loss, logits, targets, {}, as_labels=True)
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    soft = torch.rand(shape, generator=g)  # soft targets never take the label route
    loss = adapter.MODELS.build(dict(type="FocalLoss", use_sigmoid=True, reduction="none"))
    torch.testing.assert_close(_focal(loss, logits, soft, {}, as_labels=True), loss(logits, soft), rtol=0, atol=0)


def test_resized_mask_needs_top_left_rectangles(adapter):
    from oracle.masks import padding_mask, resize_nearest
    mask = padding_mask([(3, 5), (6, 2)], (6, 5))
    got = adapter.run("masks.resize", {"mask": mask}, {"size": [4, 3]}, "detr")["mask"]
    assert torch.equal(got, resize_nearest(mask, (4, 3)))
    holed = mask.clone()
    holed[1, 0, 0] = True  # not a top-left valid rectangle: mmdet's img_shape cannot describe it
    with pytest.raises(NotImplementedError, match="top-left valid rectangles"):
        adapter.run("masks.resize", {"mask": holed}, {"size": [4, 3]}, "detr")


def test_weight_names_cover_mmdets_transformer_stacks(adapter):
    # transformer_module loads strictly: every mmdet parameter gets a reference weight and none is left over.
    from conformance.adapters.mmdet import transformer_module
    from oracle import params
    enc_w, dec_w = params.encoder_weights(8, 16, 2, 0), params.decoder_weights(8, 16, 2, 0)
    config = {"num_layers": 2, "num_heads": 2}
    transformer_module(enc_w, config, torch.float64, encoder=True)
    dec = transformer_module(dec_w, config, torch.float64, encoder=False)
    w = dec.post_norm.weight.detach()
    torch.testing.assert_close(w, dec_w["norm.weight"].to(w.dtype), rtol=0, atol=0)


def test_detr_heads_on_two_ranks_agree_with_the_reference_given_every_rank(adapter):
    # mmdet's own heads on a real 2-rank gloo group (its reduce_mean of num_total_pos and, with
    # sync_cls_avg_factor, of cls_avg_factor): each rank's losses are the reference's on its image given both
    # ranks' statistics, and not the reference's on its image alone. loss_cls is compared by value (mmdet gives
    # it shape (1,) under sync_cls_avg_factor: a known difference of the suite).
    import golden
    from components import ranks
    from components.contract import reference_outputs
    from conformance.distributed import RankPool
    pool = RankPool("mmdet", 2)
    try:
        for case in golden.cases(component="criteria.mmdet_detr_head"):
            inputs, _ = case.load()
            results = pool.run(case.component, ranks.split(case.component, inputs, 2), case.config, case.profile,
                               torch.float32, 60)
            assert all(r.error is None for r in results), [r.error for r in results]
            stats = [ranks.local_statistic(case.component, r.seen64, case.config, case.profile) for r in results]
            apart = []
            for r in results:
                grouped = ranks.with_world(case.component, r.seen64, stats, case.config, case.profile)
                want = reference_outputs(case.component, grouped, case.config, case.profile)["losses"]
                alone = reference_outputs(case.component, r.seen64, case.config, case.profile)["losses"]
                got = {k: v.detach().double().reshape(()) for k, v in r.outputs["losses"].items()}
                assert got.keys() == want.keys()
                worst = max(abs(got[k] - want[k]).item() for k in want)
                assert worst < 1e-5 * max(1.0, max(abs(want[k]).item() for k in want)), (case.name, r.rank, worst)
                apart.append(max(abs(got[k] - alone[k]).item() for k in want))
            # where the ranks' statistics differ, some rank's losses are not its own image's alone (a rank without
            # targets under DETRHead, which keeps its own class factor and has no box loss, may be unchanged)
            assert stats[0] == stats[1] or max(apart) > 0.1, (case.name, apart)
    finally:
        pool.close()
