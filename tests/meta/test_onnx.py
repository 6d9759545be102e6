"""The ONNX adapter: exports at two opsets agree with the reference; broken exports are caught; a
user's model goes end to end through ``pytest --impl=onnx --onnx-model=...``."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

if os.environ.get("DETCONF_REQUIRE_THIRD_PARTY") != "1":  # CI must run these: there a missing onnx fails below
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install -e '.[onnx]'")
import onnx

import golden
from conformance.adapters.onnx import OnnxGraphError, make_adapter, user_model_spec
from conformance.onnx.export import export_graph, graph_problems, newest_opset
from conformance.onnx.graphs import GraphInput
from conformance.onnx.modules import SinePosition
from conformance.runner import ConformanceFailure, check
from oracle import conventions as conv

ROOT = Path(__file__).resolve().parents[2]
#: One golden case per exportable component (the edge cases with padding where there are some).
CASES = ["position.sine/edge-fully-padded-rows-detr", "masks.resize/float32-scale-boundary",
         "transformer.encoder/random-padded", "transformer.decoder/random-intermediate", "heads.detr/random",
         "heads.yolov8_decode/random-3-levels-xywh"]
MASK_AXES = (GraphInput("mask", ((0, "batch"), (1, "height"), (2, "width")), boolean=True),)


def _case(name):
    return next(c for c in golden.cases() if c.name == name)


def _check(adapter, case_name):
    case = _case(case_name)
    inputs, outputs = case.load()
    check(adapter, case.component, inputs, case.config, case.profile, device="cpu", dtype=torch.float32,
          fixture=outputs, label=case.name)


@pytest.mark.parametrize("opset", [17, newest_opset()])
def test_every_component_exports_and_agrees_at_two_opsets(opset):
    adapter = make_adapter()
    adapter.opset = opset
    for name in CASES:
        _check(adapter, name)
    assert len(adapter.exports) == len(CASES)
    assert {o for _, o, _ in adapter.exports} == {opset}, adapter.exports


def _sine_module(offset: float = 0.0, num_feats: int = 8):
    convention = dataclasses.replace(conv.get_profile("detr").position, num_feats=num_feats, offset=offset)
    return SinePosition(convention, torch.float32).eval()


def _export_sine(path: Path, graph_inputs=MASK_AXES, offset: float = 0.0) -> Path:
    example = (torch.rand(3, 7, 11, generator=torch.Generator().manual_seed(0)) > 0.7,)
    graph = export_graph(_sine_module(offset), graph_inputs, ["pos"], example, 18, optimize=True)
    onnx.save(graph.model, path)
    return path


def test_fixed_batch_axis_is_reported(tmp_path):
    spatial_only = (GraphInput("mask", ((1, "height"), (2, "width")), boolean=True),)
    model = onnx.load(_export_sine(tmp_path / "fixed-batch.onnx", spatial_only))
    problems = graph_problems(model, {"mask": MASK_AXES[0].dynamic}, {"pos": (0, 2, 3)})
    assert any("input 'mask': axis 0 (batch) is fixed at 3" in p for p in problems), problems


def test_batch_baked_into_a_reshape_is_reported(tmp_path):
    class BakedBatch(torch.nn.Module):
        def forward(self, mask):
            return _sine_module()(mask).reshape(3, 16, -1)  # the example's batch size, written as a constant

    path = tmp_path / "baked.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated; it is what writes such graphs
        torch.onnx.export(BakedBatch(), (torch.zeros(3, 7, 11, dtype=torch.bool),), str(path), dynamo=False,
                          input_names=["mask"], output_names=["pos"], dynamic_axes={"mask": [0, 1, 2], "pos": [0, 2]})
    problems = graph_problems(onnx.load(path), {"mask": MASK_AXES[0].dynamic}, {"pos": (0, 2)})
    assert any("output 'pos': axis 0 is the constant 3" in p for p in problems), problems


def test_bool_cumsum_is_reported():
    from onnx import TensorProto, helper
    node = helper.make_node("CumSum", ["mask", "axis"], ["out"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("mask", TensorProto.BOOL, ["b", "h", "w"])],
                              [helper.make_tensor_value_info("out", TensorProto.BOOL, ["b", "h", "w"])],
                              [helper.make_tensor("axis", TensorProto.INT64, [], [1])])
    problems = graph_problems(helper.make_model(graph), {"mask": MASK_AXES[0].dynamic}, {})
    assert any("CumSum over a bool tensor" in p for p in problems), problems


def _user_adapter(path, **flags):
    adapter = make_adapter()
    adapter.user = user_model_spec(None, str(path), "position.sine", "detr", flags.get("inputs"), flags.get("outputs"),
                                   ["num_feats=8"])
    adapter.components = {"position.sine": adapter._call("position.sine")}
    adapter.profiles = frozenset({"detr"})
    return adapter


def test_user_model_with_a_wrong_offset_fails(tmp_path):
    good = _user_adapter(_export_sine(tmp_path / "good.onnx"))
    _check(good, "position.sine/edge-fully-padded-rows-detr")
    wrong = _user_adapter(_export_sine(tmp_path / "wrong.onnx", offset=-0.5))
    with pytest.raises(ConformanceFailure, match="position.sine disagrees with the reference"):
        _check(wrong, "position.sine/edge-fully-padded-rows-detr")


def test_user_model_with_a_fixed_batch_fails_with_the_graph_problem(tmp_path):
    spatial_only = (GraphInput("mask", ((1, "height"), (2, "width")), boolean=True),)
    adapter = _user_adapter(_export_sine(tmp_path / "fixed.onnx", spatial_only))
    with pytest.raises(OnnxGraphError, match="axis 0 \\(batch\\) is fixed at 3"):
        _check(adapter, "position.sine/edge-fully-padded-rows-detr")


def _pytest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_user_model_end_to_end_from_a_toml_spec(tmp_path):
    # A model that takes a pixel mask (True = valid) under other names: the spec maps and inverts it.
    class PixelMaskSine(torch.nn.Module):
        def forward(self, pixel_mask):
            return _sine_module()(~pixel_mask)

    example = (torch.rand(3, 7, 11, generator=torch.Generator().manual_seed(0)) > 0.3,)
    graph = export_graph(PixelMaskSine().eval(), (GraphInput("pixel_mask", MASK_AXES[0].dynamic, boolean=True),),
                         ["pos_embed"], example, 17, optimize=True)
    onnx.save(graph.model, tmp_path / "mine.onnx")
    spec = tmp_path / "mine.toml"
    spec.write_text('model = "mine.onnx"\ncomponent = "position.sine"\nprofile = "detr"\ninvert = ["mask"]\n'
                    '[config]\nnum_feats = 8\n[inputs]\nmask = "pixel_mask"\n[outputs]\npos = "pos_embed"\n')
    run = _pytest("conformance/test_masks_position.py", "--impl=onnx", f"--onnx-spec={spec}")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    summary = next(line for line in run.stdout.splitlines() if line.startswith("position.sine"))
    assert " 2 passed" in summary and " 0 failed" in summary, summary  # the golden detr case and the generated test
    assert f"checked {tmp_path / 'mine.onnx'} as position.sine" in run.stdout

    wrong = _pytest("conformance/test_masks_position.py", "--impl=onnx", f"--onnx-spec={spec}",
                    "--onnx-input=mask=not_an_input")
    assert wrong.returncode == 4, wrong.stderr[-3000:]
    assert "no such input mask=not_an_input in the model" in wrong.stderr, wrong.stderr[-3000:]


def test_user_model_options_are_checked():
    run = _pytest("conformance/test_boxes.py", "--impl=onnx", "--onnx-component=position.sine")
    assert run.returncode == 4 and "give --onnx-model=PATH" in run.stderr, run.stderr[-2000:]
    run = _pytest("conformance/test_boxes.py", "--impl=onnx", "--onnx-model=missing.onnx",
                  "--onnx-component=position.sine")
    assert run.returncode == 4 and "missing.onnx: no such file" in run.stderr, run.stderr[-2000:]


# --------------------------------------------------------------------------- a library's own export


def _source_adapter(source: str):
    """The ONNX adapter exporting ``source``'s own modules (``--onnx-source``)."""
    if os.environ.get("DETCONF_REQUIRE_THIRD_PARTY") != "1":  # CI must run these
        pytest.importorskip(source, reason=f"{source} is not installed (docs/install.md)")
    adapter = make_adapter()
    adapter._configure_source(source)
    return adapter


def _check_dtype(adapter, case_name, dtype):
    case = _case(case_name)
    inputs, outputs = case.load()
    check(adapter, case.component, inputs, case.config, case.profile, device="cpu", dtype=dtype, label=case.name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_ultralytics_detect_decode_exported_its_way_agrees(dtype):
    from ultralytics.utils.export.engine import best_onnx_opset
    adapter = _source_adapter("ultralytics")
    for name in ("random-3-levels-xywh", "edge-one-cell-levels-xyxy-rectangular"):
        _check_dtype(adapter, f"heads.yolov8_decode/{name}", dtype)
    assert {o for _, o, _ in adapter.exports} == {best_onnx_opset(onnx)}
    assert "ultralytics" in adapter.version and "dynamo=False" in adapter.version
    graph = next(iter(adapter._graphs.values()))
    kinds = {init.data_type for init in graph.model.graph.initializer}
    # The half export is float16 inside (its DFL weight) with float32 inputs, as ultralytics' quantize=16 writes it.
    assert kinds == ({onnx.TensorProto.FLOAT16} if dtype == torch.float16 else {onnx.TensorProto.FLOAT})
    assert graph.model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_ultralytics_export_without_dynamic_axes_fails(monkeypatch):
    """Detect exported without ``dynamic`` (ultralytics' default) makes its anchors once, at the export's feature-map
    sizes, and bakes them into the graph: a deployment fed another image size decodes with the wrong anchors."""
    from conformance.onnx import sources
    built = sources.UltralyticsDetectDecode.__init__

    def static_head(self, *args, **kwargs):
        built(self, *args, **kwargs)
        self.head.dynamic = False

    monkeypatch.setattr(sources.UltralyticsDetectDecode, "__init__", static_head)
    with pytest.raises(OnnxGraphError, match="output 'boxes': axis 1 is the constant"):
        _check_dtype(_source_adapter("ultralytics"), "heads.yolov8_decode/random-3-levels-xywh", torch.float32)


def test_onnx_options_are_for_the_onnx_impl_and_a_known_source():
    wrong_impl = _pytest("conformance", "--impl=oracle", "--onnx-source=ultralytics", "-k", "decode")
    assert wrong_impl.returncode == 4 and "--onnx-source applies to --impl=onnx" in wrong_impl.stderr
    unknown = _pytest("conformance", "--impl=onnx", "--onnx-source=nope", "-k", "decode")
    assert unknown.returncode == 4 and "expected one of reference, ultralytics" in unknown.stderr


def test_transformers_modules_exported_agree_and_take_each_case_weights():
    adapter = _source_adapter("transformers")
    for name in ("position.sine/edge-fully-padded-rows-detr", "transformer.encoder/random-padded", "heads.detr/random"):
        _check(adapter, name)
    assert "transformers" in adapter.version and len(adapter.exports) == 3
    # The encoder graph holds DetrEncoder's parameters by their transformers names, which the case's weights replace.
    encoder = next(g for g in adapter._graphs.values() if "encoder.layers.0.self_attn.q_proj.weight" in
                   g.initializers.values())
    assert set(encoder.initializers.values()) <= {i.name for i in encoder.model.graph.initializer}


def test_transformers_encoder_exported_without_its_padding_mask_fails(monkeypatch):
    """An export that drops the key padding mask (a deployment exporting the module without ``attention_mask``)
    attends to padded keys: the padded case's memory differs."""
    from conformance.onnx import sources

    def unmasked(self, src, pos, key_padding_mask):
        return self.encoder(inputs_embeds=src, spatial_position_embeddings=pos).last_hidden_state

    monkeypatch.setattr(sources.TransformersEncoder, "forward", unmasked)
    with pytest.raises(ConformanceFailure, match="transformer.encoder disagrees with the reference"):
        _check(_source_adapter("transformers"), "transformer.encoder/random-padded")


def test_mmdet_modules_exported_agree_and_each_weighted_case_gets_its_export():
    adapter = _source_adapter("mmdet")
    for name in ("position.sine/edge-fully-padded-rows-detr", "transformer.decoder/random-intermediate",
                 "heads.detr/random"):
        _check(adapter, name)
    assert "mmdet" in adapter.version and {o for _, o, _ in adapter.exports} == {17}
    # mmdeploy's export folds constants, so no graph keeps its parameters as swappable initializers.
    assert all(not g.initializers for g in adapter._graphs.values())


def test_mmdet_decoder_exported_without_its_key_positions_fails(monkeypatch):
    """An export that drops ``key_pos`` (the memory's positional encoding) from the cross-attention: the TorchScript
    exporter then drops the unused graph input, and a padded case's positions cannot be fed."""
    from conformance.onnx import sources

    def without_key_pos(self, tgt, memory, pos, query_pos, memory_key_padding_mask):
        return self.decoder(query=tgt, key=memory, value=memory, query_pos=query_pos, key_pos=None,
                            key_padding_mask=memory_key_padding_mask)

    monkeypatch.setattr(sources.MmdetDecoder, "forward", without_key_pos)
    with pytest.raises(OnnxGraphError, match="has no input 'pos': the export dropped it"):
        _check(_source_adapter("mmdet"), "transformer.decoder/random-intermediate")


def test_mmdet_half_export_is_float16_throughout():
    """mmdeploy's onnxruntime fp16 backend converts inputs and outputs too (keep_io_types=False)."""
    adapter = _source_adapter("mmdet")
    _check_dtype(adapter, "heads.detr/random", torch.float16)
    graph = next(iter(adapter._graphs.values()))
    assert graph.model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert {i.data_type for i in graph.model.graph.initializer} == {onnx.TensorProto.FLOAT16}
