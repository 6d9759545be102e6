"""Run one canonical call through an adapter and judge it against the reference (DESIGN §6).

Expected values: at float64 the golden fixture's outputs (when the check comes from a fixture);
otherwise the reference recomputed on exactly the inputs the candidate saw (rounded to the run's
dtype, then upcast), so that input rounding is never counted against the implementation.

Matchings are judged tie-aware; a criterion whose matching differs from the reference's (on a tie)
is compared with the reference evaluated under the candidate's own matching, after its matching has
been shown valid and optimal. On a mismatch the candidate is re-run in float64 where it can be, and
the failure is classed *precision* (it agrees then) or *semantic* (it still disagrees).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import torch

from components.contract import COMPONENTS, criterion_layers, gradients, reference_outputs, with_grad
from golden.store import encode, flatten, unflatten
from oracle import conventions as conv
from oracle.assign.hungarian import matching_cost_matrix

from .adapters.base import Adapter, NotProvided
from .compare import Figures, check_matching, compare_trees, same_matching

Tree = Any


class ConformanceFailure(AssertionError):
    """The candidate disagrees with the reference. ``kind`` is precision, semantic or unclassified."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


# --------------------------------------------------------------------------- trees

def cast(tree: Tree, dtype: torch.dtype | None, device: str | torch.device) -> Tree:
    """Floating tensors to ``dtype`` (when given), every tensor to ``device``."""
    if isinstance(tree, torch.Tensor):
        t = tree.detach()
        if dtype is not None and t.dtype.is_floating_point:
            t = t.to(dtype)
        return t.to(device)
    if isinstance(tree, Mapping):
        return {k: cast(v, dtype, device) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [cast(v, dtype, device) for v in tree]
    return tree


def _to_cpu(tree: Tree) -> Tree:
    return cast(tree, None, "cpu")


# --------------------------------------------------------------------------- running

def run_candidate(adapter: Adapter, component: str, inputs64: Mapping[str, Any], config: Mapping[str, Any],
                  profile: str, dtype: torch.dtype, device: str) -> tuple[dict, dict]:
    """``(outputs with grad, the run's inputs as float64 on CPU)``."""
    comp = COMPONENTS[component]
    inputs = cast(inputs64, dtype, device)
    differentiable = adapter.differentiable and comp.objective is not None
    if differentiable:
        inputs = with_grad(inputs, comp.grad_inputs)
    with adapter.calling(dtype, device):
        outputs = adapter.run(component, inputs, config, profile)
    if not isinstance(outputs, Mapping):
        raise ConformanceFailure(f"{adapter.name} returned {type(outputs).__name__} for {component}, expected a "
                                 f"mapping of outputs", "semantic")
    outputs = dict(outputs)
    if differentiable:
        objective = comp.objective(outputs)
        grads = gradients(objective, {k: inputs[k] for k in comp.grad_inputs if k in inputs})
        if grads:
            outputs["grad"] = grads
    return _to_cpu(outputs), cast(inputs, torch.float64, "cpu")


def _criterion_problems(inputs64: Mapping[str, Any], config: Mapping[str, Any], profile: str, candidate: Mapping,
                        dtype: torch.dtype) -> list[str]:
    """Validity and optimality of a candidate criterion's matchings under the reference costs."""
    matcher = conv.get_profile(profile).matcher
    problems = []
    layers = criterion_layers(inputs64["outputs"])
    for key, per_image in candidate.items():
        if key not in layers:
            problems.append(f"indices.{key}: no such matched layer")
            continue
        layer = layers[key]
        for b, (pair, target) in enumerate(zip(per_image, inputs64["targets"])):
            if key == "enc":
                target = {**target, "labels": torch.zeros_like(target["labels"])}
            cost = matching_cost_matrix(layer["pred_logits"][b], layer["pred_boxes"][b], target, convention=matcher)
            issues, _ = check_matching(f"indices.{key}.{b}", cost, pair["pred"], pair["gt"], pair["pred"], pair["gt"],
                                       dtype)
            problems += issues
    return problems


def judge(component: str, actual: Mapping, expected: Mapping, inputs64: Mapping[str, Any], config: Mapping[str, Any],
          profile: str, dtype: torch.dtype, figures: Figures) -> list[str]:
    """Every problem of a candidate's outputs against the expected ones (messages), by the standard of ``dtype``."""
    comp = COMPONENTS[component]
    problems: list[str] = []
    skip: tuple[str, ...] = ()
    if comp.matching and comp.matching in actual:
        skip = (comp.matching,)
        if component == "assign.hungarian":
            ties = 0
            for b, (cand, ref) in enumerate(zip(actual["indices"], expected["indices"])):
                issues, n = check_matching(f"indices.{b}", expected["cost"][b], ref["pred"], ref["gt"], cand["pred"],
                                           cand["gt"], dtype)
                problems += issues
                ties += n
            if ties:
                figures.notes.append(f"{ties} tied decision(s)")
            if len(actual["indices"]) != len(expected["indices"]):
                problems.append(f"indices: {len(actual['indices'])} images, expected {len(expected['indices'])}")
        elif not same_matching(actual["indices"], expected["indices"]):
            problems += _criterion_problems(inputs64, config, profile, actual["indices"], dtype)
            expected = reference_outputs(component, {**inputs64, "indices": actual["indices"]}, config, profile)
            figures.notes.append("compared under the candidate's own (co-optimal) matching")
    problems += [m.message for m in compare_trees(component, actual, expected, inputs64, dtype, figures, skip=skip,
                                                  optional=comp.optional_outputs)]
    return problems


def check(adapter: Adapter, component: str, inputs64: Mapping[str, Any], config: Mapping[str, Any], profile: str, *,
          device: str, dtype: torch.dtype, fixture: Mapping | None = None, label: str = "",
          record: Callable[[dict], None] = lambda info: None) -> None:
    """Run the candidate on one input and raise :class:`ConformanceFailure` if it disagrees."""
    support = adapter.supports(component, device, dtype, profile, config)
    info = {"component": component, "case": label, "profile": profile}
    if not support:
        record({**info, "outcome": "not provided", "reason": support.reason})
        pytest.skip(f"not provided: {support.reason}")
    try:
        actual, seen64 = run_candidate(adapter, component, inputs64, config, profile, dtype, device)
    except NotProvided as err:  # the adapter declines this particular input (e.g. an unsupported rank)
        record({**info, "outcome": "not provided", "reason": str(err)})
        pytest.skip(f"not provided: {err}")
    except Exception:  # the library raised where the reference computes: a failure, reported as such
        record({**info, "class": "raised"})
        raise
    expected = fixture if (fixture is not None and dtype == torch.float64) else \
        reference_outputs(component, seen64, config, profile)
    figures = Figures()
    if not adapter.differentiable and "grad" in expected:
        expected = {k: v for k, v in expected.items() if k != "grad"}
        figures.notes.append("gradients not compared: the implementation is not differentiable")
    problems = judge(component, actual, expected, seen64, config, profile, dtype, figures)
    info.update(max_abs=figures.max_abs, max_rel=figures.max_rel, ulps=figures.ulps, norm_ulps=figures.norm_ulps,
                worst=figures.worst, notes=figures.notes)
    if not problems:
        record(info)
        return
    kind = classify(adapter, component, inputs64, config, profile, device, dtype, fixture)
    info["class"] = kind
    record(info)
    header = (f"{component} disagrees with the reference [{kind}]: impl {adapter.name} {adapter.version}, "
              f"profile {profile}, {str(dtype).removeprefix('torch.')} on {device}")
    if label:
        header += f", case {label}"
    raise ConformanceFailure(header + "\n" + "\n".join(problems), kind)


def classify(adapter: Adapter, component: str, inputs64: Mapping[str, Any], config: Mapping[str, Any], profile: str,
             device: str, dtype: torch.dtype, fixture: Mapping | None) -> str:
    """precision: run in float64, the candidate meets the standard of the failing run's dtype; semantic: it does
    not; unclassified: it cannot run in float64. (PyTorch's reference tests arbitrate the same way: rerun in a
    precise dtype and ask whether the disagreement goes away.)"""
    if dtype == torch.float64:
        return "semantic"
    if not adapter.supports(component, device, torch.float64, profile, config):
        return "unclassified"
    try:
        actual, seen64 = run_candidate(adapter, component, inputs64, config, profile, torch.float64, device)
    except Exception:  # noqa: BLE001 - a float64 run that crashes cannot show the difference is precision
        return "semantic"
    expected = fixture if fixture is not None else reference_outputs(component, seen64, config, profile)
    if not adapter.differentiable:
        expected = {k: v for k, v in expected.items() if k != "grad"}
    problems = judge(component, actual, expected, seen64, config, profile, dtype, Figures())
    return "semantic" if problems else "precision"


# --------------------------------------------------------------------------- failing examples

FAILURE_DIR = Path(".detconf") / "failures"


def save_failure(test_name: str, component: str, inputs64: Mapping[str, Any], config: Mapping[str, Any],
                 profile: str) -> Path:
    """Write a failing generated example as a fixture file; returns its path."""
    tensors = flatten(_to_cpu(dict(inputs64)), "in")
    meta = {"name": f"replay/{test_name}", "component": component, "config": dict(config), "profile": profile}
    payload = encode(tensors, meta)
    digest = hashlib.sha256(test_name.encode()).hexdigest()[:12]
    path = FAILURE_DIR / component / f"{digest}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return path


def load_failure(path: Path) -> tuple[str, dict, dict, str]:
    """``(component, inputs, config, profile)`` of a file written by :func:`save_failure`."""
    from safetensors import safe_open
    from safetensors.torch import load_file
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads((handle.metadata() or {})["case"])
    return meta["component"], unflatten(tensors, "in"), meta["config"], meta["profile"]


def check_generated(adapter: Adapter, component: str, inputs64: Mapping[str, Any], config: Mapping[str, Any],
                    profile: str, *, device: str, dtype: torch.dtype, test_name: str, impl: str,
                    record: Callable[[dict], None] = lambda info: None) -> None:
    """:func:`check` for a generated example; a failure is saved with a one-line replay command."""
    try:
        check(adapter, component, inputs64, config, profile, device=device, dtype=dtype, label=test_name, record=record)
    except ConformanceFailure as err:
        path = save_failure(test_name, component, inputs64, config, profile).resolve()
        # Absolute paths: the command works from any directory (the suite's own, an installed wheel's).
        replay = (f"pytest {Path(__file__).resolve().parent} --impl={impl} --dtype={str(dtype).removeprefix('torch.')} "
                  f"--device={device} --conformance-replay={path}")
        raise ConformanceFailure(f"{err}\nfailing example saved to {path}; replay: {replay}", err.kind) from None
