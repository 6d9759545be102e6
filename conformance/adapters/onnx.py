"""ONNX-exported heads on onnxruntime: ``pytest --impl=onnx conformance`` (DESIGN §9, docs/onnx.md).

Two modes:

- **Exported here** (default): each component of conformance/onnx/graphs.py is built from the
  reference's own formulas in the run's dtype (conformance/onnx/modules.py), exported with
  ``torch.onnx.export(dynamo=True)`` at ``--onnx-opset`` (default: the newest the installed exporter
  writes) with every batch and spatial axis dynamic, checked (conformance/onnx/export.py:
  no bool CumSum, no fixed dynamic axis), and run on onnxruntime at the check's inputs, whose shapes
  differ from the export's. An export is cached per run and reused for every case with the same
  graph; a case's weights are swapped into the initializers. With ``--onnx-source=transformers|ultralytics|mmdet``
  the module is the library's own, exported the way that library's users export it
  (conformance/onnx/sources.py), with the library adapter's ``supports`` and its own known differences.
- **A user's model**: ``--onnx-model=PATH`` with ``--onnx-component=NAME`` (and ``--onnx-profile``,
  ``--onnx-input``/``--onnx-output CANONICAL=MODEL_NAME``, ``--onnx-config KEY=VALUE``) or ``--onnx-spec=FILE.toml``
  (same fields, plus ``invert`` for masks of the opposite polarity and ``[weights]``: canonical
  weight name -> initializer name, which lets the golden and generated weights be swapped in).
  Only that component is provided; cases whose graph-fixing config (``num_feats``, ``strides``,
  ``num_layers``...) differs from the model's are not provided.

Gradients are not part of an ONNX run (``differentiable=False``). Devices: the CPU provider; the
CUDA provider with ``--device=cuda`` where onnxruntime-gpu finds a GPU (an error otherwise, never
a silent fallback: the session's provider is checked).
"""

from __future__ import annotations

import json
import sys
import tomllib
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..onnx import graphs as G
from ..onnx.export import Graph, example_inputs, graph_problems, newest_opset, opset_of, with_weights
from ..onnx.sources import SOURCES, Source
from .base import Adapter, NotProvided, Support, known_differences_file

INSTALL = 'pip install -c constraints.txt "onnx==1.23.2" "onnxruntime==1.31.1" "onnxscript==0.7.2" ' \
          '(or pip install -e ".[onnx]"; onnxruntime-gpu for --device=cuda)'
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
OPTIONAL_INPUTS = {"pos", "key_padding_mask", "query_pos", "memory_key_padding_mask"}
SESSION_CACHE = 8


class OnnxGraphError(AssertionError):
    """The ONNX graph itself is wrong (a bool CumSum, a fixed dynamic axis): every check of it fails."""


class OnnxAdapter(Adapter):
    def __init__(self, onnx_version: str, ort_version: str):
        self.onnx_version, self.ort_version = onnx_version, ort_version
        self.opset = newest_opset()
        self.source: Source = SOURCES["reference"]
        self.library: Adapter | None = None  # a library source's adapter: its supports() applies
        self.user: dict[str, Any] | None = None
        self.exports: list[tuple[str, int, float]] = []  # (component, opset, seconds): the run's export log
        self._graphs: dict[tuple, Graph] = {}
        self._sessions: OrderedDict[tuple, Any] = OrderedDict()
        super().__init__(name="onnx", version=self._version(), components={c: self._call(c) for c in G.SPECS},
                         profiles=None, dtypes=frozenset({torch.float32, torch.float64}), differentiable=False,
                         install=INSTALL, known_differences=known_differences_file("onnx"),
                         slow_first_calls=True,  # each new graph is exported on its first call (seconds)
                         runs_under_autocast=Support(False, "its graphs run on onnxruntime, outside torch; a float16 "
                                                            "graph is the export's own precision, not autocast"))

    def _version(self) -> str:
        if self.user:
            source = f"model {Path(self.user['model']).name}"
        elif self.source.library:
            source = f"{self.source.library} {self.source.version()} export ({self.source.exporter})"
        else:
            source = f"torch {torch.__version__} export"
        return f"onnxruntime {self.ort_version}, opset {self.opset}, {source}"

    # ----------------------------------------------------------------- options

    def configure(self, config) -> None:
        """Read the ``--onnx-*`` options (conformance/plugin.py calls this once per run)."""
        import pytest
        self._configure_source(config.getoption("onnx_source", None) or "reference")
        opset = config.getoption("onnx_opset")
        if opset is not None:
            if not 17 <= opset <= newest_opset():
                raise pytest.UsageError(f"--onnx-opset={opset}: the installed exporter writes opsets 17 to "
                                        f"{newest_opset()}")
            self.opset = opset
        if config.getoption("device") == "cuda":
            import onnxruntime
            if PROVIDERS["cuda"] not in onnxruntime.get_available_providers():
                raise pytest.UsageError("--impl=onnx --device=cuda: onnxruntime has no CUDAExecutionProvider here "
                                        f"(providers: {onnxruntime.get_available_providers()}); install "
                                        "onnxruntime-gpu on a GPU machine")
        spec_path, model = config.getoption("onnx_spec"), config.getoption("onnx_model")
        if (spec_path or model) and self.source.name != "reference":
            raise pytest.UsageError(f"--onnx-source={self.source.name} exports that library's modules; a user's model "
                                    f"(--onnx-model/--onnx-spec) is checked as it is: give one or the other")
        if spec_path or model:
            try:
                self.user = user_model_spec(spec_path, model, config.getoption("onnx_component"),
                                            config.getoption("onnx_profile"), config.getoption("onnx_input"),
                                            config.getoption("onnx_output"), config.getoption("onnx_config"))
            except (ValueError, OSError) as err:
                raise pytest.UsageError(str(err)) from None
            component = self.user["component"]
            self.components = {component: self._call(component)}
            self.known_differences = None  # those of the exports made here say nothing about a user's model
            graph = self._user_graph()
            have_in = [i.name for i in graph.model.graph.input]
            have_out = [o.name for o in graph.model.graph.output]
            bad = [f"input {c}={n}" for c, n in graph.inputs.items() if n not in have_in] + \
                  [f"output {G.CANONICAL_OUTPUTS.get(component, {}).get(c, c)}={n}" for c, n in graph.outputs.items()
                   if n not in have_out]
            if bad:
                raise pytest.UsageError(f"{self.user['model']}: no such {', '.join(bad)} in the model (its inputs: "
                                        f"{have_in}; outputs: {have_out})")
            self.profiles = frozenset({self.user["profile"]}) if self.user["profile"] else None
        elif any(config.getoption(o) for o in ("onnx_component", "onnx_profile", "onnx_input", "onnx_output",
                                               "onnx_config")):
            raise pytest.UsageError("--onnx-component/-profile/-input/-output/-config describe a user's model: give "
                                    "--onnx-model=PATH (or --onnx-spec=FILE.toml) too")
        self.version = self._version()

    def _configure_source(self, name: str) -> None:
        """``--onnx-source=NAME``: the library's modules, its adapter's ``supports``, its exporter's opset and its
        own known differences (conformance/onnx/sources.py)."""
        import pytest

        from . import AdapterError, resolve
        if name not in SOURCES:
            raise pytest.UsageError(f"--onnx-source={name}: expected one of {', '.join(SOURCES)}")
        self.source = SOURCES[name]
        if self.source.library is None:
            return
        try:
            self.library = resolve(self.source.library)
        except AdapterError as err:
            raise pytest.UsageError(f"--onnx-source={name} needs {self.source.library}: {err}") from None
        self.components = {c: self._call(c) for c in sorted(self.source.components)}
        self.known_differences = known_differences_file(f"onnx-{name}")
        if self.source.default_opset is not None:
            self.opset = self.source.default_opset()
        if self.source.half is not None:
            self.dtypes = self.dtypes | {torch.float16}
        self.version = self._version()

    def summary(self) -> list[str]:
        """Lines for the terminal summary: what was exported and how long it took."""
        if self.user:
            return [f"onnx: checked {self.user['model']} as {self.user['component']} (opset "
                    f"{self._user_graph().opset})"]
        total = sum(s for _, _, s in self.exports)
        reuse = "weights swapped into the initializers" if self.source.swaps_weights else \
            "a weighted case exported with its own weights"
        return [f"onnx: {len(self.exports)} export(s) of {self.source.name}'s modules ({self.source.exporter}) at "
                f"opset {self.opset} in {total:.1f} s, reused for every case with the same graph ({reuse})"]

    # ----------------------------------------------------------------- support

    def supports(self, component, device, dtype, profile, config=None) -> Support:
        base = super().supports(component, device, dtype, profile, config)
        if base and self.library is not None:  # the library's own conventions, as its adapter declares them
            return self.library.supports(component, "cpu", dtype, profile, config)
        if not base or config is None or not self.user:
            return base
        declared = self.user["config"]
        wanted = G.structural_config(component, config, profile)
        for key, value in wanted.items():
            if key not in declared:
                return Support(False, f"the model's {key} is not declared (--onnx-config {key}=...); this case has "
                                      f"{key}={value!r}")
            if declared[key] != value:
                return Support(False, f"the model has {key}={declared[key]!r}; this case needs {value!r}")
        if G.SPECS[component].weighted and not self.user["weights"]:
            return Support(False, "the model's initializers are not mapped to the canonical weight names ([weights] "
                                  "in --onnx-spec), so a case's weights cannot be applied")
        return base

    # ----------------------------------------------------------------- running

    def _call(self, component: str):
        def call(inputs, config, profile):
            return self._run(component, inputs, config, profile)
        return call

    def _run(self, component: str, inputs: Mapping[str, Any], config: Mapping[str, Any], profile: str) -> dict:
        tensors = G.canonical_tensors(component, inputs, config)
        graph_inputs = G.graph_inputs(component, inputs)
        graph = self._user_graph() if self.user else self._export(component, inputs, config, profile, tensors,
                                                                  graph_inputs)
        problems = graph.problems + self._dynamic_problems(graph, component, inputs, graph_inputs)
        if problems:
            raise OnnxGraphError(f"the ONNX graph of {component} is wrong:\n" + "\n".join(f"  - {p}" for p in problems))
        weights = G.weight_tensors(inputs) if G.SPECS[component].weighted else {}
        session = self._session(graph, self.source.weights(component, weights) if weights and not self.user
                                else weights)
        declared = {i.name: i.type for i in session.get_inputs()}
        feeds = {}
        for canonical, tensor in tensors.items():
            name = graph.inputs.get(canonical, canonical)
            if name not in declared:
                if canonical in OPTIONAL_INPUTS and not bool(tensor.to(torch.float64).abs().sum()):
                    continue  # the model has no such input and the case gives its neutral value
                if not self.user:  # an export made here lost an input its module takes: the export is wrong
                    raise OnnxGraphError(f"the exported graph of {component} has no input {canonical!r}: the export "
                                         f"dropped it (inputs: {sorted(declared)})")
                raise NotProvided(f"the model has no input for {canonical!r} (inputs: {sorted(declared)})")
            if self.user and canonical in self.user["invert"]:
                tensor = ~tensor
            feeds[name] = _to_numpy(tensor, declared[name])
        outputs = [o.name for o in session.get_outputs()]
        wanted = {graph.outputs.get(out, out): out for out, _ in _output_names(component, inputs)}
        missing = sorted(set(wanted) - set(outputs))
        if missing:
            raise OnnxGraphError(f"the model has no output(s) {missing} (outputs: {outputs})")
        values = session.run(list(wanted), feeds)
        return G.canonical_outputs(component, {wanted[name]: v for name, v in zip(wanted, values)})

    def _export(self, component, inputs, config, profile, tensors, graph_inputs) -> Graph:
        dtype = self.call_dtype
        structural = G.structural_config(component, config, profile)
        weights = G.weight_tensors(inputs) if G.SPECS[component].weighted else {}
        static = tuple((gi.name, tuple(d for a, d in enumerate(tensors[gi.name].shape)
                                       if a not in dict(gi.dynamic))) for gi in graph_inputs)
        # Below opset 18 the exporter converts its opset-18 graph down, which fails on an unoptimized graph (its
        # axes are computed, not constants) and silently stays at 18; so there each case's weights are exported
        # into an optimized graph (folded: nothing to swap), and the export is cached per weights.
        swap = G.SPECS[component].weighted and self.opset >= 18 and self.source.swaps_weights
        key = (component, json.dumps(structural, sort_keys=True),
               profile if component == "position.sine" else "", static,
               tuple(sorted((k, tuple(v.shape)) for k, v in weights.items())), str(dtype), self.opset,
               "" if swap or not weights else _digest(weights))
        if key not in self._graphs:
            # A progress line past pytest's capture: an export takes seconds, a run of them minutes.
            print(f"detconf onnx: exporting {component} (opset {self.opset}, graph {len(self._graphs) + 1})",
                  file=sys.__stderr__, flush=True)
            # A half graph is the library's float32 export converted by the library's own float16 step.
            half = dtype == torch.float16
            export_dtype = torch.float32 if half else dtype
            module = self.source.build(component, structural, profile, weights, export_dtype, tensors)
            example = example_inputs(graph_inputs, tensors, export_dtype)
            graph = self.source.export(module, graph_inputs, dict(_output_names(component, inputs)), example,
                                       self.opset, not swap)
            if half:
                graph.model = self.source.half(graph.model)
            if graph.opset != self.opset:
                raise RuntimeError(f"asked the exporter for opset {self.opset}, got {graph.opset}")
            graph.problems = graph_problems(graph.model, {gi.name: gi.dynamic for gi in graph_inputs},
                                            G.output_axes(component, inputs))
            self.exports.append((component, graph.opset, graph.seconds))
            self._graphs[key] = graph
        return self._graphs[key]

    def _user_graph(self) -> Graph:
        if "graph" not in self.user:
            import onnx
            model = onnx.load(self.user["model"])
            self.user["graph"] = Graph(model=model, inputs=dict(self.user["inputs"]),
                                       outputs=dict(self.user["outputs"]), initializers=dict(self.user["weights"]),
                                       opset=opset_of(model))
        return self.user["graph"]

    def _dynamic_problems(self, graph: Graph, component, inputs, graph_inputs) -> list[str]:
        """A user's model is checked against the axes this case needs to be dynamic (its rank and levels)."""
        if not self.user:
            return []
        key = ("problems", tuple(gi.name for gi in graph_inputs))
        if key not in self.user:
            self.user[key] = graph_problems(
                graph.model, {graph.inputs.get(gi.name, gi.name): gi.dynamic for gi in graph_inputs},
                {graph.outputs.get(n, n): axes for n, axes in G.output_axes(component, inputs).items()})
        return self.user[key]

    def _session(self, graph: Graph, weights: Mapping[str, torch.Tensor]):
        import onnxruntime
        key = (id(graph), _digest(weights) if graph.initializers else "", self.call_device)
        if key in self._sessions:
            self._sessions.move_to_end(key)
            return self._sessions[key]
        model = with_weights(graph.model, graph.initializers, weights) if graph.initializers else graph.model
        provider = PROVIDERS[self.call_device]
        session = onnxruntime.InferenceSession(model.SerializeToString(), providers=[provider])
        if session.get_providers()[0] != provider:  # onnxruntime falls back to the CPU without saying so
            raise RuntimeError(f"onnxruntime runs this model on {session.get_providers()[0]}, not {provider}")
        self._sessions[key] = session
        if len(self._sessions) > SESSION_CACHE:
            self._sessions.popitem(last=False)
        return session


def _digest(weights: Mapping[str, torch.Tensor]) -> str:
    import hashlib
    digest = hashlib.sha256()
    for name in sorted(weights):
        digest.update(name.encode())
        digest.update(weights[name].detach().cpu().to(torch.float64).numpy().tobytes())
    return digest.hexdigest()


def _output_names(component: str, inputs: Mapping[str, Any]) -> list[tuple[str, tuple[int, ...]]]:
    return list(G.output_axes(component, inputs).items())


_NUMPY_TYPES = {"tensor(bool)": np.bool_, "tensor(float)": np.float32, "tensor(double)": np.float64,
                "tensor(float16)": np.float16, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
                "tensor(uint8)": np.uint8}


def _to_numpy(tensor: torch.Tensor, onnx_type: str) -> np.ndarray:
    """The tensor as the model's declared input type (a user's model may take a float or integer mask)."""
    if onnx_type not in _NUMPY_TYPES:
        raise NotProvided(f"the model takes {onnx_type}")
    return np.ascontiguousarray(tensor.detach().cpu().numpy().astype(_NUMPY_TYPES[onnx_type], copy=False))


# --------------------------------------------------------------------------- a user's model

def _pairs(values: list[str] | None, option: str, parse_json: bool) -> dict[str, Any]:
    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{option} {item!r}: expected KEY=VALUE")
        if parse_json:
            try:
                out[key] = json.loads(value)
            except json.JSONDecodeError:
                out[key] = value
        else:
            out[key] = value
    return out


def user_model_spec(spec_path: str | None, model: str | None, component: str | None, profile: str | None,
                    inputs_flag: list[str] | None, outputs_flag: list[str] | None,
                    config: list[str] | None) -> dict[str, Any]:
    """The description of a user's model from ``--onnx-spec`` (TOML) and the flags (which win)."""
    spec: dict[str, Any] = {}
    if spec_path:
        with open(spec_path, "rb") as handle:
            spec = tomllib.load(handle)
        unknown = sorted(set(spec) - {"model", "component", "profile", "config", "inputs", "outputs", "invert",
                                      "weights"})
        if unknown:
            raise ValueError(f"--onnx-spec={spec_path}: unknown keys {unknown}")
        if "model" in spec and not Path(spec["model"]).is_absolute():
            spec["model"] = str(Path(spec_path).parent / spec["model"])
    model = model or spec.get("model")
    component = component or spec.get("component")
    if not model:
        raise ValueError("a user's model needs --onnx-model=PATH (or model = ... in --onnx-spec)")
    if not Path(model).is_file():
        raise ValueError(f"--onnx-model={model}: no such file")
    if component not in G.SPECS:
        raise ValueError(f"--onnx-component={component}: expected one of {', '.join(G.SPECS)}")
    inputs = {**spec.get("inputs", {}), **_pairs(inputs_flag, "--onnx-input", parse_json=False)}
    outputs = {**spec.get("outputs", {}), **_pairs(outputs_flag, "--onnx-output", parse_json=False)}
    known_inputs = {gi.name for gi in G.SPECS[component].inputs} or ({"hidden"} if component == "heads.detr" else set())
    if component != "heads.yolov8_decode" and set(inputs) - known_inputs:
        raise ValueError(f"{component} has no canonical input(s) {sorted(set(inputs) - known_inputs)}; its inputs: "
                         f"{sorted(known_inputs)}")
    rename = {canonical: graph for graph, canonical in G.CANONICAL_OUTPUTS.get(component, {}).items()}
    known_outputs = {G.CANONICAL_OUTPUTS.get(component, {}).get(n, n) for n, _ in G.SPECS[component].outputs}
    if set(outputs) - known_outputs:
        raise ValueError(f"{component} has no canonical output(s) {sorted(set(outputs) - known_outputs)}; its "
                         f"outputs: {sorted(known_outputs)}")
    outputs = {rename.get(k, k): v for k, v in outputs.items()}
    invert = spec.get("invert", [])
    if not isinstance(invert, list):
        raise ValueError("invert: expected a list of canonical mask inputs")
    return {"model": model, "component": component, "profile": profile or spec.get("profile"),
            "config": {**spec.get("config", {}), **_pairs(config, "--onnx-config", parse_json=True)},
            "inputs": inputs, "outputs": outputs, "invert": set(invert), "weights": dict(spec.get("weights", {}))}


def make_adapter() -> Adapter:
    from . import AdapterError
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401 - torch.onnx.export(dynamo=True) needs it
    except ImportError as err:
        raise AdapterError(f"--impl=onnx needs onnx, onnxruntime and onnxscript ({err}); install them with: "
                           f"{INSTALL}") from None
    return OnnxAdapter(onnx.__version__, onnxruntime.__version__)
