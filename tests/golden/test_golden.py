"""golden: determinism, tamper detection, drift detection of exactly the dependent cases, the loader, the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import golden
from components.contract import reference_outputs
from golden import cli
from golden.catalogue import catalogue, components_without_cases, run_case
from golden.store import GOLDEN_DIR, FixtureError, flatten


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> Path:
    """A freshly regenerated fixture tree (tests damage their own copies of it)."""
    root = tmp_path_factory.mktemp("golden")
    assert cli.main(["--root", str(root), "regenerate"]) == 0
    return root


@pytest.fixture
def copy(fixtures, tmp_path) -> Path:
    shutil.copytree(fixtures, tmp_path / "g")
    return tmp_path / "g"


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_regeneration_is_byte_identical(fixtures, tmp_path):
    assert cli.main(["--root", str(tmp_path), "regenerate"]) == 0
    first, second = _files(fixtures), _files(tmp_path)
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []


def test_committed_fixtures_pass_the_check(fixtures):
    # The same check as `python -m golden check` on the committed tree, with a clearer failure in pytest.
    problems, checked, _ = cli.find_differences(GOLDEN_DIR)
    assert checked == len(catalogue())
    assert problems == []


def test_every_component_has_random_and_edge_cases():
    assert components_without_cases() == []


def test_size_limit():
    size = sum(p.stat().st_size for p in GOLDEN_DIR.rglob("*") if p.is_file() and p.suffix in (".safetensors", ".json"))
    assert size < 20e6, f"golden data is {size / 1e6:.1f} MB"


# --------------------------------------------------------------------------- tampering

def _one_file(root: Path) -> tuple[str, Path]:
    manifest = json.loads((root / "MANIFEST.json").read_text())
    name = "boxes.overlap/giou-dino-pairwise"
    return name, root / manifest["cases"][name]["file"]


def _kinds(root: Path) -> dict[str, set[str]]:
    problems, _, _ = cli.find_differences(root)
    out: dict[str, set[str]] = {}
    for p in problems:
        out.setdefault(p.case, set()).add(p.what)
    return out


def test_flipped_byte_is_reported_as_damaged(copy):
    name, path = _one_file(copy)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    assert _kinds(copy) == {name: {"damaged"}}
    with pytest.raises(FixtureError, match=rf"{path.name}: sha256 .* does not match MANIFEST.json"):
        golden.load(name, root=copy)


def test_truncated_and_deleted_files(copy):
    name, path = _one_file(copy)
    path.write_bytes(path.read_bytes()[:100])
    assert _kinds(copy) == {name: {"damaged"}}
    path.unlink()
    assert _kinds(copy) == {name: {"damaged"}}
    with pytest.raises(FixtureError, match=r"fixture file is missing"):
        golden.load(name, root=copy)
    assert cli.main(["--root", str(copy), "check"]) == 1


def test_orphans_and_unlisted_cases(copy):
    orphan = copy / "data" / "boxes.overlap" / "no-such-case.safetensors"
    orphan.write_bytes(b"x")
    manifest = json.loads((copy / "MANIFEST.json").read_text())
    manifest["cases"]["losses.l1_loss/retired-case"] = manifest["cases"].pop("losses.l1_loss/random-weight-avg-factor")
    (copy / "MANIFEST.json").write_text(json.dumps(manifest))
    kinds = _kinds(copy)
    assert kinds == {"data/boxes.overlap/no-such-case.safetensors": {"orphaned"},
                     "losses.l1_loss/retired-case": {"orphaned"},
                     "losses.l1_loss/random-weight-avg-factor": {"missing"}}


def test_manifest_shape_mismatch_is_damage(copy):
    manifest = json.loads((copy / "MANIFEST.json").read_text())
    entry = manifest["cases"]["boxes.area/random-xyxy"]
    entry["tensors"]["out.area"][1] = [7]
    (copy / "MANIFEST.json").write_text(json.dumps(manifest))
    assert _kinds(copy) == {"boxes.area/random-xyxy": {"damaged"}}


# --------------------------------------------------------------------------- drift detection

def _perturbed(monkeypatch, module, name):
    original = getattr(module, name)

    def moved(*args, **kwargs):
        return original(*args, **kwargs) * (1 + 1e-9)
    monkeypatch.setattr(module, name, moved)


def test_a_changed_dice_loss_moves_exactly_its_dependent_cases(fixtures, monkeypatch):
    import oracle.losses
    _perturbed(monkeypatch, oracle.losses, "dice_loss")
    moved = set(_kinds(fixtures))
    expected = {c.name for c in catalogue() if c.component == "losses.dice_loss" or "with:masks" in c.tags}
    assert moved == expected and len(expected) >= 3


def test_a_changed_giou_moves_exactly_its_dependent_cases(fixtures, monkeypatch):
    import oracle.boxes
    # _giou holds the formula: giou calls it, and so does giou_loss (naming its own arguments, pred and target).
    _perturbed(monkeypatch, oracle.boxes, "_giou")
    moved = set(_kinds(fixtures))
    dependent_components = {"losses.giou_loss", "assign.hungarian", "criteria.set_criterion",
                            "criteria.mmdet_detr_head"}
    expected = {c.name for c in catalogue() if c.component in dependent_components
                or (c.component == "boxes.overlap" and c.config["op"] == "giou")}
    # Cases where every GIoU term is multiplied by 0 (no targets) or not used cannot move.
    unmovable = {c.name for c in catalogue() if c.component in dependent_components and "edge:empty-targets" in c.tags
                 and "edge:all-background" in c.tags}
    assert moved == expected - unmovable


def test_check_runs_on_the_stored_inputs_not_on_rebuilt_ones(fixtures, monkeypatch, capsys):
    # Another platform's input builders may round differently: the gate reads the stored inputs, and the
    # determinism check reports rebuilt inputs that differ (a failure only on the platform that wrote them).
    from golden.tables import boxes as table
    original = table.rand_xyxy
    monkeypatch.setattr(table, "rand_xyxy", lambda rng, n, **kw: original(rng, n, **kw) + 1e-12)
    problems, _, _ = cli.find_differences(fixtures, pattern="boxes.area/random-xyxy")
    assert problems == []
    assert cli.main(["--root", str(fixtures), "check", "--only", "boxes.area/random-xyxy"]) == 0
    assert cli.main(["--root", str(fixtures), "check", "--inputs", "--only", "boxes.area/random-xyxy"]) == 1
    out = capsys.readouterr().out
    assert "in.boxes" in out and "on the platform that wrote them: the builders are not deterministic" in out
    manifest = json.loads((fixtures / "MANIFEST.json").read_text())
    [key] = manifest["platforms"]
    manifest["platforms"][key] = {**manifest["platforms"][key], "cpu_capability": "OTHER"}
    area_case = [c for c in catalogue() if c.name == "boxes.area/random-xyxy"]
    differences = cli.input_differences(fixtures, area_case, manifest)
    assert {d.tensor for d in differences} == {"in.boxes"}
    assert cli._report_inputs(differences, manifest, cli.platforms.describe()) == 0
    out = capsys.readouterr().out
    assert "written on another platform: information, not a failure" in out
    assert "* cpu_capability  OTHER" in out


def test_manifest_records_the_generating_platform(fixtures):
    manifest = json.loads((fixtures / "MANIFEST.json").read_text())
    here = cli.platforms.describe()
    assert manifest["platforms"] == {cli.platforms.key(here): here}
    assert {"torch", "cpu", "cpu_capability", "blas", "threads", "mkl_cbwr"} <= set(here)
    assert all(e["platform"] == cli.platforms.key(here) for e in manifest["cases"].values())


def test_check_shows_both_platforms_when_a_fixture_differs(copy, monkeypatch, capsys):
    import oracle.losses
    manifest = json.loads((copy / "MANIFEST.json").read_text())
    [key] = manifest["platforms"]
    manifest["platforms"][key]["threads"] = "64"
    (copy / "MANIFEST.json").write_text(json.dumps(manifest))
    assert cli.main(["--root", str(copy), "check", "--only", "losses.l1_loss/*"]) == 0
    assert "note: fixtures written on another platform (it differs in threads) agree here" in capsys.readouterr().out
    _perturbed(monkeypatch, oracle.losses, "l1_loss")
    assert cli.main(["--root", str(copy), "check", "--only", "losses.l1_loss/*"]) == 1
    out = capsys.readouterr().out
    assert "written on another platform" in out and "* threads" in out and "written on" in out and "checked on" in out


def test_a_fixture_whose_metadata_disagrees_with_the_catalogue_fails(copy):
    manifest = json.loads((copy / "MANIFEST.json").read_text())
    manifest["cases"]["losses.l1_loss/random-weight-avg-factor"]["profile"] = "no-such-profile"
    (copy / "MANIFEST.json").write_text(json.dumps(manifest))
    problems, _, _ = cli.find_differences(copy, pattern="losses.l1_loss/*")
    assert [(p.case, p.what) for p in problems] == [("losses.l1_loss/random-weight-avg-factor", "metadata")]
    assert "MANIFEST.json's profile 'no-such-profile'" in problems[0].detail


# --------------------------------------------------------------------------- loader

@pytest.mark.parametrize("dtype", [None, torch.float32, torch.float16, torch.bfloat16])
def test_loader_round_trips_every_case(fixtures, dtype):
    for case in golden.cases(root=fixtures):
        inputs, outputs = case.load(dtype=dtype)
        fresh_inputs, fresh_outputs = run_case(next(c for c in catalogue() if c.name == case.name))
        got = {**flatten(inputs, "in"), **flatten(outputs, "out")}
        want = {**flatten(fresh_inputs, "in"), **flatten(fresh_outputs, "out")}
        assert got.keys() == want.keys(), case.name
        for key, expected in want.items():
            value = got[key]
            if expected.dtype.is_floating_point:
                assert value.dtype == (dtype or torch.float64), key
                assert torch.equal(value, expected.detach().to(value.dtype)), key
            else:
                assert value.dtype == expected.dtype and torch.equal(value, expected), key


def test_loader_structure_and_filters(fixtures):
    inputs, outputs = golden.load("criteria.set_criterion/random-dino-interm-dn", root=fixtures)
    assert isinstance(inputs["targets"], list) and isinstance(inputs["outputs"]["aux_outputs"], list)
    assert set(outputs) >= {"losses", "total", "indices", "grad"}
    dn_logits = inputs["outputs"]["dn_outputs"]["pred_logits"]
    assert outputs["grad"]["outputs"]["dn_outputs"]["pred_logits"].shape == dn_logits.shape
    overlap_profiles = {c.profile for c in golden.cases(component="boxes.overlap", root=fixtures)}
    assert overlap_profiles >= {"detr", "mmdet", "ultralytics"}
    tie_cases = [c.name for c in golden.cases(tag="edge:tie", root=fixtures)]
    assert tie_cases == ["assign.hungarian/edge-tie-declared-tie-break"]
    assert all(c.name.startswith("losses.") for c in golden.cases(pattern="losses.*", root=fixtures))
    with pytest.raises(FixtureError, match="no fixture named 'nope'"):
        golden.load("nope", root=fixtures)


# --------------------------------------------------------------------------- CLI

def test_cli_regenerate_only_touches_matching_cases(copy):
    path = copy / "data" / "boxes.area" / "random-xyxy.safetensors"
    other = copy / "data" / "boxes.area" / "edge-zero-area.safetensors"
    path.unlink()
    other.write_bytes(other.read_bytes() + b"")
    assert cli.main(["--root", str(copy), "regenerate", "--only", "boxes.area/random-*"]) == 0
    assert path.is_file()
    assert cli.main(["--root", str(copy), "check"]) == 0


def test_cli_usage_and_list(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["frobnicate"])
    assert exit_info.value.code == 2
    assert cli.main(["list", "--component", "criteria.cdn"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == sum(c.component == "criteria.cdn" for c in catalogue())
    assert all("criteria.cdn" in r for r in listed)


def test_cli_check_reports_a_table(copy, monkeypatch, capsys):
    import oracle.losses
    _perturbed(monkeypatch, oracle.losses, "l1_loss")
    assert cli.main(["--root", str(copy), "check", "--only", "losses.l1_loss/*"]) == 1
    out = capsys.readouterr().out
    assert "case" in out and "ULPs" in out and "losses.l1_loss/random-weight-avg-factor" in out and "out.loss" in out


def test_a_dense_case_without_a_named_convention_takes_its_profiles():
    """The dense calls resolve an absent convention through the case's profile, as DETR-family cases do:
    a config without ``convention`` under ``mmdet`` is RetinaNet's assigner, under ``torchvision`` its Matcher."""
    from components.dense_calls import max_iou_convention
    from oracle import conventions as conv
    from oracle.errors import OracleInputError
    assert max_iou_convention({}, "mmdet") is conv.MAX_IOU_RETINANET_MMDET
    assert max_iou_convention({}, "torchvision") is conv.MAX_IOU_RETINANET_TORCHVISION
    assert max_iou_convention({"convention": "MAX_IOU_RPN_MMDET"}, "torchvision") is conv.MAX_IOU_RPN_MMDET
    with pytest.raises(OracleInputError, match="profile 'detr' has no max_iou convention"):
        max_iou_convention({}, "detr")
    case = next(c for c in catalogue() if c.component == "assign.max_iou" and c.profile == "mmdet"
                and c.config.get("convention") == "MAX_IOU_RETINANET_MMDET"
                and not c.config.get("convention_overrides"))
    inputs, outputs = run_case(case)
    implicit = reference_outputs(case.component, inputs, {k: v for k, v in case.config.items() if k != "convention"},
                                 case.profile)
    assert all(torch.equal(implicit[k], outputs[k]) for k in ("gt_inds", "max_overlaps", "labels"))


def test_only_may_be_repeated(fixtures, capsys):
    # Each --only adds cases (any pattern matches), for check and regenerate alike.
    assert cli.main(["--root", str(fixtures), "check", "--only", "boxes.area/*", "--only", "losses.l1_loss/*"]) == 0
    want = sum(c.name.startswith(("boxes.area/", "losses.l1_loss/")) for c in catalogue())
    assert f"golden check: {want} cases agree" in capsys.readouterr().out
    assert want > sum(c.name.startswith("losses.l1_loss/") for c in catalogue()) > 0


def test_a_partial_regeneration_keeps_the_other_fixtures_records(copy):
    # Only the regenerated cases get this platform and new entries; the others keep what their writer recorded.
    manifest = json.loads((copy / "MANIFEST.json").read_text())
    [key] = manifest["platforms"]
    manifest["platforms"]["elsewhere"] = {**manifest["platforms"][key], "cpu": "another CPU"}
    for entry in manifest["cases"].values():
        entry["platform"] = "elsewhere"
    (copy / "MANIFEST.json").write_text(json.dumps(manifest))
    before = {k: v for k, v in manifest["cases"].items() if not k.startswith("boxes.area/")}
    assert cli.main(["--root", str(copy), "regenerate", "--only", "boxes.area/*"]) == 0
    after = json.loads((copy / "MANIFEST.json").read_text())
    assert {k: v for k, v in after["cases"].items() if not k.startswith("boxes.area/")} == before
    assert {v["platform"] for k, v in after["cases"].items() if k.startswith("boxes.area/")} == {key}
    assert set(after["platforms"]) == {key, "elsewhere"}


def _git(root: Path, *args: str) -> None:
    import subprocess
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True)


def test_diff_shows_which_fixtures_moved_and_by_how_much(copy, capsys):
    # A fixture tree in its own git repository; then one output moved by 1e-9, one case removed, one added.
    from golden.store import encode, read_case_file, sha256, tensor_specs
    _git(copy, "init", "-q")
    _git(copy, "add", "-A")
    _git(copy, "commit", "-q", "-m", "fixtures")
    assert cli.main(["--root", str(copy), "diff"]) == 0
    assert "no fixture differs from HEAD" in capsys.readouterr().out
    manifest = json.loads((copy / "MANIFEST.json").read_text())
    name = "losses.l1_loss/random-weight-avg-factor"
    entry = manifest["cases"][name]
    tensors, case_json = read_case_file(copy / entry["file"], entry)
    tensors["out.loss"] = tensors["out.loss"] + 1e-9
    payload = encode(tensors, case_json)
    (copy / entry["file"]).write_bytes(payload)
    entry.update(sha256=sha256(payload), tensors=tensor_specs(tensors))
    removed = manifest["cases"].pop("boxes.area/random-xyxy")
    manifest["cases"]["boxes.area/renamed"] = removed
    (copy / "MANIFEST.json").write_text(json.dumps(manifest))
    assert cli.main(["--root", str(copy), "diff"]) == 0
    out = capsys.readouterr().out
    moved = [line for line in out.splitlines() if line.startswith(name)]
    assert len(moved) == 1 and "out.loss" in moved[0] and "values" in moved[0] and "1e-09" in moved[0]
    assert any(line.startswith("boxes.area/random-xyxy") and "removed" in line for line in out.splitlines())
    assert any(line.startswith("boxes.area/renamed") and "added" in line for line in out.splitlines())
    assert "3 case(s) differ from HEAD" in out
    assert cli.main(["--root", str(copy), "diff", "no-such-ref"]) == 2
