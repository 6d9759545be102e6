"""oracle.conventions: the named profiles pin the upstream values of upstream_sources.md §F."""

from __future__ import annotations

import dataclasses

import pytest

from oracle.conventions import (FLT_EPS, IOU_DINO, IOU_EXACT, IOU_MMDET, IOU_TORCHVISION_LOSS,
                                IOU_TORCHVISION_PAIRWISE, IOU_ULTRALYTICS_XYWH, IOU_ULTRALYTICS_XYXY, PROFILES,
                                get_profile)

REQUIRED = {"detr", "deformable_detr", "dino", "mmdet", "torchvision", "ultralytics", "hf_detr", "hf_deformable_detr"}


def test_required_profiles_exist_and_are_frozen():
    assert REQUIRED <= set(PROFILES)
    for name, profile in PROFILES.items():
        assert profile.name == name and profile.upstream
        with pytest.raises(dataclasses.FrozenInstanceError):
            profile.name = "other"  # type: ignore[misc]


def test_flt_eps_is_float32_eps():
    import numpy as np
    assert FLT_EPS == float(np.finfo(np.float32).eps) == 1.1920928955078125e-07


@pytest.mark.parametrize("name, box_iou, iou_loss", [
    ("detr", IOU_EXACT, IOU_EXACT),
    ("hf_detr", IOU_EXACT, IOU_EXACT),
    ("deformable_detr", IOU_EXACT, IOU_EXACT),
    ("hf_deformable_detr", IOU_EXACT, IOU_EXACT),
    ("dino", IOU_DINO, IOU_DINO),
    ("mmdet", IOU_MMDET, IOU_MMDET),
    ("torchvision", IOU_TORCHVISION_PAIRWISE, IOU_TORCHVISION_LOSS),
    ("ultralytics", IOU_ULTRALYTICS_XYXY, IOU_ULTRALYTICS_XYXY),
])
def test_iou_conventions_per_profile(name, box_iou, iou_loss):
    p = get_profile(name)
    assert p.box_iou == box_iou and p.iou_loss == iou_loss


def test_eps_values():
    assert (IOU_DINO.eps_mode, IOU_DINO.eps, IOU_DINO.units) == ("add", 1e-6, "normalized")
    assert (IOU_MMDET.eps_mode, IOU_MMDET.eps, IOU_MMDET.units) == ("clamp", 1e-6, "pixel")
    assert (IOU_TORCHVISION_LOSS.eps_mode, IOU_TORCHVISION_LOSS.eps) == ("add", 1e-7)
    assert IOU_TORCHVISION_PAIRWISE.eps_mode == "none" and IOU_TORCHVISION_PAIRWISE.diag_eps == 1e-7
    assert IOU_ULTRALYTICS_XYXY.area_height_eps == IOU_ULTRALYTICS_XYXY.aspect_height_eps == 1e-7
    assert IOU_ULTRALYTICS_XYWH.area_height_eps == IOU_ULTRALYTICS_XYWH.aspect_height_eps == 0.0


@pytest.mark.parametrize("name, kind, weights, eps, offset", [
    ("detr", "softmax", (1, 5, 2), None, 0.0),
    ("hf_detr", "softmax", (1, 5, 2), None, 0.0),
    ("deformable_detr", "focal", (2, 5, 2), 1e-8, 0.0),
    ("hf_deformable_detr", "focal", (1, 5, 2), 1e-8, 0.0),
    ("dino", "focal", (2, 5, 2), 1e-8, 0.0),
    ("mmdet", "softmax", (1, 5, 2), None, 0.0),
    ("ultralytics", "focal", (2, 5, 2), 1e-8, 1.0),
])
def test_matcher_conventions(name, kind, weights, eps, offset):
    m = get_profile(name).matcher
    assert m.class_cost == kind
    assert (m.weight_class, m.weight_bbox, m.weight_giou) == weights
    assert m.giou_cost_offset == offset
    if eps is not None:
        assert (m.focal_alpha, m.focal_gamma, m.focal_eps) == (0.25, 2.0, eps)


def test_normalisation_and_background_conventions():
    assert get_profile("mmdet").avg_factor_eps == FLT_EPS
    for name in ("detr", "hf_detr", "deformable_detr", "dino"):
        assert get_profile(name).avg_factor_eps == 0.0
    assert get_profile("detr").background_weight == 0.1
    assert get_profile("mmdet").matcher.focal_eps == 1e-12
    assert get_profile("torchvision").matcher is None


def test_docs_table_is_current():
    from pathlib import Path

    from oracle.conventions import profiles_markdown
    doc = (Path(__file__).resolve().parents[2] / "docs" / "conventions.md").read_text()
    start = doc.index("-->\n", doc.index("<!-- generated")) + len("-->\n")
    end = doc.index("<!-- end generated -->")
    assert doc[start:end] == profiles_markdown(), "regenerate the table in docs/conventions.md"


# --------------------------------------------------------------------------- the registry

def test_every_preset_of_the_package_is_named_and_nothing_else():
    """A preset is an upper-case convention constant of oracle.conventions' namespace; the registry holds
    exactly those (the package re-exports every preset of its modules, dense ones included)."""
    import oracle.conventions as conv
    public = {name for name, value in vars(conv).items()
              if name.isupper() and dataclasses.is_dataclass(value) and not isinstance(value, type)}
    assert set(conv.PRESETS) == public
    assert {"IOU_MMDET", "MAX_IOU_RPN_MMDET", "TAL_MMDET", "MMDET_DINO_HEAD", "PE_DINO", "CODER_TORCHVISION_RCNN",
            "RETINANET_ANCHOR_GENERATOR", "ANCHOR_HEAD_MMDET", "YOLOV8_ULTRALYTICS_LEGACY"} <= public
    for name in conv.PRESETS:
        assert conv.named(name) is getattr(conv, name)
    for name, profile in PROFILES.items():
        assert conv.named(name) is profile


def test_named_refuses_unknown_names_and_other_kinds():
    from oracle.conventions import IoUConvention, MaxIoUConvention, named
    from oracle.errors import OracleInputError
    with pytest.raises(OracleInputError, match="IOU_MMDT.*did you mean IOU_MMDET"):
        named("IOU_MMDT")
    with pytest.raises(OracleInputError, match="'IOU_MMDET' is a IoUConvention, not a MaxIoUConvention"):
        named("IOU_MMDET", MaxIoUConvention)
    with pytest.raises(OracleInputError, match="a str"):
        named(None)  # type: ignore[arg-type]
    assert named("IOU_MMDET", IoUConvention) is IOU_MMDET


def test_lookup_reads_a_profile_field_or_a_preset():
    from oracle.conventions import (IOU_MMDET_CIOU_LOSS, MAX_IOU_RETINANET_MMDET, MAX_IOU_RETINANET_TORCHVISION,
                                    MAX_IOU_RPN_MMDET, MaxIoUConvention, lookup)
    from oracle.errors import OracleInputError
    assert lookup("mmdet", "box_iou") is IOU_MMDET
    assert lookup("mmdet", "IOU_MMDET_CIOU_LOSS") is IOU_MMDET_CIOU_LOSS
    assert lookup("mmdet", "max_iou") is MAX_IOU_RETINANET_MMDET
    assert lookup("torchvision", "max_iou", MaxIoUConvention) is MAX_IOU_RETINANET_TORCHVISION
    assert lookup("detr", "MAX_IOU_RPN_MMDET", MaxIoUConvention) is MAX_IOU_RPN_MMDET
    with pytest.raises(OracleInputError, match="profile 'detr' has no max_iou convention"):
        lookup("detr", "max_iou")
    with pytest.raises(OracleInputError, match="profile: expected one of"):
        lookup("nope", "box_iou")
    with pytest.raises(OracleInputError, match="mmdet.box_iou is a IoUConvention, not a MaxIoUConvention"):
        lookup("mmdet", "box_iou", MaxIoUConvention)


@pytest.mark.parametrize("name, fields", [
    ("mmdet", {"max_iou": "MAX_IOU_RETINANET_MMDET", "task_aligned": "TAL_MMDET", "coder": "CODER_MMDET",
               "anchor_head": "RETINANET_HEAD_MMDET", "yolov8": None}),
    ("torchvision", {"max_iou": "MAX_IOU_RETINANET_TORCHVISION", "task_aligned": None,
                     "coder": "CODER_TORCHVISION_RETINANET", "anchor_head": None, "yolov8": None}),
    ("ultralytics", {"max_iou": None, "task_aligned": "TAL_ULTRALYTICS", "coder": None, "anchor_head": None,
                     "yolov8": "YOLOV8_ULTRALYTICS"}),
    ("detr", {"max_iou": None, "task_aligned": None, "coder": None, "anchor_head": None, "yolov8": None}),
])
def test_dense_conventions_per_profile(name, fields):
    import oracle.conventions as conv
    profile = get_profile(name)
    for field, preset in fields.items():
        assert getattr(profile, field) is (None if preset is None else getattr(conv, preset)), field


def test_profiles_with_a_convention():
    from oracle.conventions import profiles_with
    from oracle.errors import OracleInputError
    assert profiles_with("matcher") == ("detr", "hf_detr", "deformable_detr", "hf_deformable_detr", "dino", "mmdet",
                                        "ultralytics")
    assert profiles_with("max_iou") == ("mmdet", "torchvision")
    assert profiles_with("box_iou") == tuple(PROFILES)
    with pytest.raises(OracleInputError, match="field: expected one of"):
        profiles_with("name")


def test_presets_of_a_kind():
    from oracle.conventions import MaxIoUConvention, TaskAlignedConvention, presets_of
    assert presets_of(MaxIoUConvention) == ("MAX_IOU_RETINANET_MMDET", "MAX_IOU_RETINANET_TORCHVISION",
                                            "MAX_IOU_RPN_MMDET")
    assert presets_of(TaskAlignedConvention) == ("TAL_MMDET", "TAL_ULTRALYTICS", "TAL_ULTRALYTICS_LEGACY")
