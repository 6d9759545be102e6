"""--world-size: the rank-dependent criteria run on the ranks of a real torch.distributed group, and a criterion
that normalises by its own rank's count is caught there (and only there)."""

from __future__ import annotations

import pytest
import torch

from components import ranks

from .suite_runs import faulty, outcomes, run_suite

SET_CRITERION = "test_golden and criteria.set_criterion and (random-detr or edge-mixed-empty-detr)"


def test_the_reference_agrees_with_itself_across_ranks(pytester):
    result, report = run_suite(pytester, "oracle", "--world-size=2", "-k", SET_CRITERION)
    got = outcomes(report)
    assert got and set(got.values()) == {("passed", None)}, result.stdout.str()[-3000:]
    assert all(t["world_size"] == 2 for t in report["tests"])


def test_a_criterion_normalised_by_its_own_rank_is_caught_across_ranks_only(pytester):
    # edge-mixed-empty: rank 0 has no target, rank 1 two; random-detr: 3 and 1. Each rank divides by its own
    # count (clamped to 1) instead of the world mean (1 and 2): every such case fails as semantic.
    result, report = run_suite(pytester, faulty("criterion_local_count"), "-k", SET_CRITERION)
    assert set(outcomes(report).values()) == {("passed", None)}
    result, report = run_suite(pytester, faulty("criterion_local_count"), "--world-size=2", "-k", SET_CRITERION)
    got = outcomes(report)
    for case in ("random-detr]", "edge-mixed-empty-detr]"):
        (key,) = [k for k in got if k.endswith(case)]
        assert got[key] == ("failed", "semantic"), (key, got)
    text = result.stdout.str()
    assert "disagrees with the reference across 2 ranks [semantic]" in text and "rank 0 of 2: " in text


def test_split_gives_each_rank_its_images_and_the_reference_every_rank_count():
    targets = [{"labels": torch.zeros(n, dtype=torch.int64), "boxes": torch.rand(n, 4)} for n in (3, 0, 1)]
    outputs = {"pred_logits": torch.rand(3, 5, 4), "pred_boxes": torch.rand(3, 5, 4),
               "aux_outputs": [{"pred_logits": torch.rand(3, 5, 4), "pred_boxes": torch.rand(3, 5, 4)}] * 3,
               "dn_meta": {"pad_size": torch.tensor(0)}}
    inputs = {"outputs": outputs, "targets": targets, "world_num_boxes": torch.tensor([9.0])}
    shards = ranks.split("criteria.set_criterion", inputs, 2)
    assert [len(s["targets"]) for s in shards] == [1, 2] and "world_num_boxes" not in shards[0]
    assert shards[1]["outputs"]["pred_logits"].shape == (2, 5, 4)
    assert shards[1]["outputs"]["aux_outputs"][2]["pred_boxes"].shape == (2, 5, 4)  # 3 layers, not 3 images
    assert shards[0]["outputs"]["dn_meta"]["pad_size"].item() == 0
    counts = [ranks.local_statistic("criteria.set_criterion", s, {}, "detr") for s in shards]
    assert counts == [{"num_boxes": [3.0]}, {"num_boxes": [1.0]}]
    world = ranks.with_world("criteria.set_criterion", shards[0], counts, {}, "detr")
    assert world["world_num_boxes"].tolist() == [3.0, 1.0]
    assert "world_num_boxes" not in ranks.with_world("criteria.set_criterion", shards[0], counts, {}, "ultralytics")
    with pytest.raises(ValueError, match="a batch of 3 image"):
        ranks.split("criteria.set_criterion", inputs, 4)


def test_a_generated_failure_across_ranks_replays_across_ranks(pytester):
    import re
    result, _ = run_suite(pytester, faulty("criterion_local_count"), "--world-size=2", "-k",
                          "test_set_criterion_generated and detr]")
    match = re.search(r"failing example saved to (\S+); replay: (pytest .*)$", result.stdout.str(), re.M)
    assert match, result.stdout.str()[-3000:]
    args = match.group(2).split()[1:]
    assert "--world-size=2" in args
    result, report = run_suite(pytester, args[1].removeprefix("--impl="), *args[2:])
    assert [(t["outcome"], t.get("class"), t.get("world_size")) for t in report["tests"]] == \
        [("failed", "semantic", 2)], result.stdout.str()[-3000:]


def test_a_saved_example_with_an_image_without_targets_replays_across_ranks(pytester):
    # A saved example is read back from a mapped file; the last image's empty tensors (it has no targets) view one
    # storage under two dtypes there. The ranks' messages must still carry them.
    from conformance.runner import save_failure
    generator = torch.Generator().manual_seed(0)
    targets = [{"labels": torch.tensor([0, 2]), "boxes": torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.5, 0.5, 0.25, 0.25]],
                                                                      dtype=torch.float64)},
               {"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4, dtype=torch.float64)}]
    outputs = {"pred_logits": torch.randn(2, 3, 4, generator=generator, dtype=torch.float64),
               "pred_boxes": torch.rand(2, 3, 4, generator=generator, dtype=torch.float64) * 0.5 + 0.25}
    path = save_failure("t", "criteria.set_criterion", {"outputs": outputs, "targets": targets},
                        {"num_classes": 3}, "detr", impl="x")
    result, report = run_suite(pytester, faulty("criterion_local_count"), "--world-size=2",
                               f"--conformance-replay={path}")
    assert [(t["outcome"], t.get("class"), t.get("world_size")) for t in report["tests"]] == \
        [("failed", "semantic", 2)], result.stdout.str()[-3000:]
