"""components.canonical: the canonical-format helpers adapters share, by hand."""

from __future__ import annotations

import torch

from components import canonical as K


def test_names_round_trip():
    state = {"layers.0.linear1.weight": 1, "norm.bias": 2, "cls": 3}
    canonical = K.canonical_keys(state)
    assert canonical == {"layers/0/linear1/weight": 1, "norm/bias": 2, "cls": 3}
    assert K.dotted_keys(canonical) == state
    assert K.dotted_name("d0/loss_cls") == "d0.loss_cls"


def test_global_target_indices_become_per_image():
    counts = [2, 0, 3]
    assert K.target_offsets(counts) == [0, 2, 2]
    pairs = [(torch.tensor([4, 1]), torch.tensor([1, 0])), (torch.tensor([], dtype=torch.int64),) * 2,
             (torch.tensor([0, 2]), torch.tensor([4, 2]))]
    got = K.per_image_matching(pairs, counts)
    assert [m["gt"].tolist() for m in got] == [[1, 0], [], [2, 0]]
    assert [m["pred"].tolist() for m in got] == [[4, 1], [], [0, 2]]
    assert [t.tolist() for t in K.cdn_global_targets(counts)] == [[0, 1], [], [2, 3, 4]]


def test_denoising_slots_by_hand():
    # pad_size 12 over 2 groups: 6 slots a group (3 positives then 3 negatives for a batch of at most 3 targets).
    assert [s.tolist() for s in K.cdn_positive_slots([2, 3, 0], 12, 2)] == [[0, 1, 6, 7], [0, 1, 2, 6, 7, 8], []]
