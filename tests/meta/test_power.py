"""The fault registry covers the contract, and the power command reports a cheap fault caught (tests/meta/power.py)."""

from __future__ import annotations

import dataclasses

import pytest

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
    assert "**Caught: 1 / 1.**" in text
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
    assert "**Caught: 1 / 2.**" in text and "no-longer-registered" not in text
    assert "| anchors.points | `points-offset-zero` | convention field | 2 | **none** | 0.00 | no | 0000000 |" in text
