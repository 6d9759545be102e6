"""The fault registry covers the contract, and the power command reports a cheap fault caught (tests/meta/power.py)."""

from __future__ import annotations

import dataclasses
import fnmatch
import pickle

import pytest
import torch

from components.contract import COMPONENTS
from tests.meta import faults as Fm
from tests.meta import power


def test_every_component_has_a_fault():
    broken = {f.component for f in Fm.FAULTS.values()}
    assert set(COMPONENTS) - broken == set()
    assert {f.kind for f in Fm.FAULTS.values()} <= set(Fm.KINDS)


def _leaves(cls: type, prefix: str = "") -> list[str]:
    out = []
    for f in dataclasses.fields(cls):
        inner = Fm._nested(Fm._field_types(cls)[f.name])
        if inner is not None and (cls, f.name) not in Fm.SKIPPED_FIELDS:
            out += _leaves(inner, prefix + f.name + ".")
        else:
            out.append(prefix + f.name)
    return out


@pytest.mark.parametrize("component", sorted(Fm.CONVENTIONS))
def test_every_convention_field_has_a_mutant_or_a_reason(component):
    for _, cls in Fm.CONVENTIONS[component]:
        paths, skipped = Fm.mutable_fields(cls)
        for leaf in _leaves(cls):
            assert leaf in skipped or f"{component}~{cls.__name__}.{leaf}" in Fm.FAULTS, (component, leaf)
        assert all(reason for reason in skipped.values())
        assert set(paths).isdisjoint(skipped)


def test_a_mutant_changes_the_convention_only_during_the_call():
    from oracle import conventions as conv
    before = conv.get_profile("dino").box_iou
    with Fm.mutated_conventions(conv.IoUConvention, "eps"):
        assert conv.get_profile("dino").box_iou.eps == 1e-5
        assert conv.named("IOU_MMDET").eps == 1e-5
    assert conv.get_profile("dino").box_iou is before and conv.named("IOU_MMDET").eps == 1e-6


def test_the_command_reports_a_cheap_fault_caught_and_merges_earlier_runs(tmp_path):
    import json
    out, results = tmp_path / "power.md", tmp_path / "power.json"
    assert power.main(["--faults", "area-plus-one", "--profile", "dev", "--write", str(out),
                       "--json", str(results)]) == 0
    text = out.read_text()
    assert "**Caught: 1 / 1** (0 equivalent" in text
    row = next(line for line in text.splitlines() if "`area-plus-one`" in line)
    assert "| boxes.area |" in row and "semantic" in row and "| 1.00 |" in row
    assert row.endswith(f"| {power.current_commit()} |")
    # An earlier run's results fill the table for faults not run now; a fault no longer registered is dropped.
    records = json.loads(results.read_text())
    records += [{**records[0], "fault": "no-longer-registered"},
                {**records[0], "fault": "points-offset-zero", "component": "anchors.points", "kind": "convention field",
                 "caught": [], "run": 2, "commit": "0000000"}]
    results.write_text(json.dumps(records))
    assert power.main(["--faults", "--merge", str(results), "--write", str(out)]) == 0
    text = out.read_text()
    assert "**Caught: 1 / 2** (0 equivalent" in text and "no-longer-registered" not in text
    assert "| anchors.points | `points-offset-zero` | convention field | 2 | **none** | 0.00 | no | 0000000 |" in text


def test_a_mutant_notes_whether_a_formula_reads_its_field(tmp_path, monkeypatch):
    from oracle import conventions as conv
    reads = tmp_path / "reads.txt"
    monkeypatch.setenv(Fm.READS_FILE, str(reads))
    monkeypatch.setattr(Fm, "_recorded", set())
    overlap = COMPONENTS["boxes.overlap"].call
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
    config = {"aligned": False, "fmt": "xyxy", "convention": "box_iou"}
    with Fm.mutated_conventions(conv.IoUConvention, "ciou_alpha_eps"):
        mutated = conv.get_profile("mmdet").box_iou
        assert type(mutated) is not conv.IoUConvention and isinstance(mutated, conv.IoUConvention)
        # The dataclass machinery, pickling and validation are not a formula's reads; GIoU does not read it.
        repr(mutated), dataclasses.replace(mutated, eps=1e-3), pickle.loads(pickle.dumps(mutated)), hash(mutated)
        overlap({"boxes1": boxes, "boxes2": boxes}, {"op": "giou", **config}, "mmdet")
        assert not reads.exists()
        overlap({"boxes1": boxes, "boxes2": boxes / 2}, {"op": "ciou", **config}, "mmdet")
        assert reads.read_text().startswith("IoUConvention.ciou_alpha_eps oracle.boxes:")
    assert type(conv.get_profile("mmdet").box_iou) is conv.IoUConvention


def test_the_table_leaves_equivalent_mutants_out_of_the_count():
    caught = power.Result("area-plus-one", "boxes.area", "formula", "w", run=3, caught=[("test_x", "semantic")])
    missed = power.Result("m~A.x", "boxes.area", "convention field", "w", run=3, field_read=True)
    same = power.Result("m~A.y", "boxes.area", "convention field", "w", run=3, field_read=False)
    text = power.markdown([caught, missed, same], command="c", profile="ci", seconds=1.0)
    assert "**Caught: 1 / 2** (1 equivalent mutants left out" in text
    assert "equivalent: no check reads the field" in next(line for line in text.splitlines() if "`m~A.y`" in line)
    assert "| boxes.area | 1 / 2 |" in text
    assert text.split("## Not caught")[1].split("## Equivalent")[0].count("`m~A.") == 1


def test_a_config_mutant_notes_whether_a_formula_reads_its_field(tmp_path, monkeypatch):
    # The delta coder is built from the case's config inside the call: encode never reads the decode-only fields.
    reads = tmp_path / "reads.txt"
    monkeypatch.setenv(Fm.READS_FILE, str(reads))
    monkeypatch.setattr(Fm, "_recorded", set())
    boxes = torch.tensor([[0.0, 0.0, 4.0, 4.0], [1.0, 2.0, 9.0, 6.0]], dtype=torch.float64)
    encode = Fm.FAULTS["coders.delta_xywh_encode~DeltaXYWHCoder.clip_border"].factory().components
    encode["coders.delta_xywh_encode"]({"anchors": boxes, "gt": boxes + 1}, {}, "mmdet")
    assert not reads.exists()
    decode = Fm.FAULTS["coders.delta_xywh_decode~DeltaXYWHCoder.clip_border"].factory().components
    decode["coders.delta_xywh_decode"]({"anchors": boxes, "deltas": torch.zeros(2, 4, dtype=torch.float64)},
                                       {"max_shape": [5, 5]}, "mmdet")
    assert reads.read_text().startswith("DeltaXYWHCoder.clip_border oracle.coders:decode")
    from oracle.coders import DeltaXYWHCoder
    assert "__getattribute__" not in vars(DeltaXYWHCoder)


def test_every_mutant_listed_as_equivalent_in_effect_is_registered_with_a_reason():
    for glob, why in Fm.EQUIVALENT_IN_EFFECT.items():
        assert any(fnmatch.fnmatchcase(name, glob) for name in Fm.FAULTS), glob
        assert len(why) > 40, glob
    # Only convention mutants: a handwritten fault is a fault by construction.
    assert all(Fm.FAULTS[n].kind == "convention field" for n in Fm.FAULTS if Fm.equivalent_in_effect(n))


def test_a_mutant_equivalent_in_effect_is_left_out_while_uncaught_and_a_wrong_reason_fails_the_run(tmp_path):
    import json
    name = "assign.max_iou~MaxIoUConvention.iou.intersection"
    kept = power.Result(name, "assign.max_iou", "convention field", "w", run=3, field_read=True)
    text = power.markdown([kept], command="c", profile="ci", seconds=1.0)
    assert "**Caught: 0 / 0** (1 equivalent" in text
    assert "equivalent: 'clamp' and 'strict' give the same overlaps" in next(
        line for line in text.splitlines() if f"`{name}`" in line)
    caught = dataclasses.replace(kept, caught=[("test_x", "semantic")])
    assert caught.wrong_equivalence and not caught.equivalent
    # A caught mutant that no formula read (only validation did, and refused it) is caught, not a wrong reason.
    unnoted = power.Result("m~A.x", "boxes.area", "convention field", "w", run=3, field_read=False, caught=[("t", "s")])
    assert not unnoted.wrong_equivalence and not unnoted.equivalent
    assert "## Listed as equivalent in effect, but caught" in power.markdown([caught], command="c", profile="ci",
                                                                              seconds=1.0)
    results = tmp_path / "r.json"
    results.write_text(json.dumps([caught.__dict__]))
    assert power.main(["--faults", "--merge", str(results), "--write", str(tmp_path / "p.md")]) == 1


def test_a_fault_that_lives_in_another_dtype_runs_and_is_shown_in_it(monkeypatch):
    # A float16 overflow cannot show in the default float32 run: the fault names its dtype and the run uses it.
    fault = Fm.FAULTS["seg-proto-sum-times-zero"]
    assert fault.dtype == "float16"
    seen = {}

    def fake_run(cmd, **kwargs):
        seen["cmd"] = cmd
        raise power.subprocess.TimeoutExpired(cmd, 1)
    monkeypatch.setattr(power.subprocess, "run", fake_run)
    result = power.run_fault(fault, "ci", {})
    assert "--dtype=float16" in seen["cmd"] and result.dtype == "float16"
    row = next(line for line in power.markdown([result], command="c", profile="ci", seconds=1.0).splitlines()
               if "`seg-proto-sum-times-zero`" in line)
    assert "| dtype (float16 run) |" in row
