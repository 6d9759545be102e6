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

import contextlib
import fnmatch
import hashlib
import json
import os
import re
import shlex
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

import pytest
import torch

from components.contract import (COMPONENTS, criterion_layers, gradients, matcher_convention, reference_outputs,
                                 with_grad)
from golden.store import encode, flatten, unflatten
from oracle.assign.hungarian import matching_cost_matrix
from oracle.errors import OracleInputError

from .adapters.base import Adapter, NotProvided, Support
from .compare import Figures, Mismatch, check_matching, compare_trees, dtype_mismatches, same_matching

Tree = Any


class ConformanceFailure(AssertionError):
    """The candidate disagrees with the reference. ``kind`` is precision, semantic, non-finite, internal-precision,
    unclassified, timeout or raised (a rank's call raised); ``paths`` are the output paths that differ (as the
    message names them: ``value``, ``losses.loss_ce``, ``grad.outputs.pred_boxes``, ``indices.0``; none for a call
    that did not return)."""

    def __init__(self, message: str, kind: str, paths: tuple[str, ...] = ()):
        super().__init__(message)
        self.kind = kind
        self.paths = tuple(paths)


class CallTimeout(ConformanceFailure):
    """The candidate's call (its forward and the gradients) ran past ``--conformance-timeout``."""

    def __init__(self, message: str):
        super().__init__(message, "timeout")


#: Seconds one candidate call may take (``--conformance-timeout``; 0 or None: no limit).
DEFAULT_TIMEOUT = 300.0


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str) -> Iterator[None]:
    """Raise :class:`CallTimeout` in the calling thread when the block runs past ``seconds``.

    A real-time interval timer (SIGALRM): it interrupts Python code and any native call that returns to the
    interpreter; a native call that never returns is beyond it (run with ``-n 1``: pytest-xdist replaces a
    worker that a timeout-killer or a crash ends). Without SIGALRM (Windows) or off the main thread the
    block runs unlimited."""
    usable = (seconds and hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise CallTimeout(f"{what} ran past --conformance-timeout={seconds:g} s [timeout]")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


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
                  profile: str, dtype: torch.dtype, device: str, timeout: float | None = None,
                  autocast: torch.dtype | None = None) -> tuple[dict, dict]:
    """``(outputs with grad, the run's inputs as float64 on CPU)``; the call and its gradients within
    ``timeout`` seconds (:func:`time_limit`). With ``autocast``, the call and its objective run inside
    ``torch.autocast(device type, autocast)`` and the backward pass outside it, as in mixed-precision training."""
    comp = COMPONENTS[component]
    inputs = cast(inputs64, dtype, device)
    differentiable = adapter.differentiable and comp.objective is not None
    if differentiable:
        inputs = with_grad(inputs, comp.grad_inputs)
    amp = (torch.autocast(device_type=torch.device(device).type, dtype=autocast) if autocast is not None
           else contextlib.nullcontext())
    with time_limit(timeout, f"{adapter.name}'s {component} call"):
        with adapter.calling(dtype, device), amp:
            outputs = adapter.run(component, inputs, config, profile)
            if not isinstance(outputs, Mapping):
                raise ConformanceFailure(f"{adapter.name} returned {type(outputs).__name__} for {component}, "
                                         f"expected a mapping of outputs", "semantic")
            outputs = dict(outputs)
            objective = comp.objective(outputs) if differentiable else None
        if differentiable:
            grads = gradients(objective, {k: inputs[k] for k in comp.grad_inputs if k in inputs})
            if grads:
                outputs["grad"] = grads
    return _to_cpu(outputs), cast(inputs, torch.float64, "cpu")


def _criterion_problems(inputs64: Mapping[str, Any], config: Mapping[str, Any], profile: str, candidate: Mapping,
                        dtype: torch.dtype) -> list[Mismatch]:
    """Validity and optimality of a candidate criterion's matchings under the reference costs: the profile's matcher
    with the config's ``matcher`` fields, the criterion's own."""
    matcher = matcher_convention(config, profile)
    problems = []
    layers = criterion_layers(inputs64["outputs"])
    for key, per_image in candidate.items():
        if key not in layers:
            problems.append(Mismatch(f"indices.{key}", f"indices.{key}: no such matched layer"))
            continue
        layer = layers[key]
        for b, (pair, target) in enumerate(zip(per_image, inputs64["targets"])):
            if key == "enc":
                target = {**target, "labels": torch.zeros_like(target["labels"])}
            cost = matching_cost_matrix(layer["pred_logits"][b], layer["pred_boxes"][b], target, convention=matcher)
            issues, _ = check_matching(f"indices.{key}.{b}", cost, pair["pred"], pair["gt"], pair["pred"], pair["gt"],
                                       dtype)
            problems += [Mismatch(f"indices.{key}.{b}", m) for m in issues]
    return problems


def _tie_aware(component: str, actual: Mapping, expected: Mapping, inputs64: Mapping[str, Any],
               config: Mapping[str, Any], profile: str, figures: Figures) -> Mapping:
    """``expected`` with each tie-dependent output (components.contract.Component.tie_dependent) that the candidate
    gives differently replaced by the admissible value nearest the candidate's: the reference's values when every
    exact tie of the largest logits is broken in the metric's favour and against it bound what a correct ``argmax``
    or ``topk`` may give (ties are broken in an unspecified order), as tie-aware matchings are judged."""
    patterns = COMPONENTS[component].tie_dependent
    flat_a, flat_e = flatten(dict(actual), "out"), flatten(dict(expected), "out")
    paths = [k for k in flat_e if k in flat_a and any(fnmatch.fnmatchcase(k[4:], p) for p in patterns)]
    if all(torch.equal(flat_a[k].to(torch.float64), flat_e[k]) for k in paths):
        return expected
    inputs = {**inputs64, "indices": expected[COMPONENTS[component].matching]} if "indices" in expected else inputs64
    bounds = [flatten(reference_outputs(component, inputs, {**config, "metric_ties": ties}, profile,
                                        with_grads=False), "out") for ties in ("favourable", "unfavourable")]
    widened = []
    for k in paths:
        low, high = torch.minimum(bounds[0][k], bounds[1][k]), torch.maximum(bounds[0][k], bounds[1][k])
        if bool((low < high).any()):
            flat_e[k] = torch.minimum(torch.maximum(flat_a[k].to(torch.float64), low), high)
            widened.append(k[4:])
    if not widened:
        return expected
    figures.notes.append(f"tie-dependent {', '.join(widened)}: compared with the nearest value a tie order gives")
    return unflatten(flat_e, "out")


def judge(component: str, actual: Mapping, expected: Mapping, inputs64: Mapping[str, Any], config: Mapping[str, Any],
          profile: str, dtype: torch.dtype, figures: Figures, *, autocast: bool = False) -> list[str]:
    """Every problem of a candidate's outputs against the expected ones (messages), by the standard of ``dtype``
    (with ``autocast``: of a float32 run inside ``torch.autocast(dtype)``)."""
    return [m.message for m in judge_mismatches(component, actual, expected, inputs64, config, profile, dtype, figures,
                                                autocast=autocast)]


def judge_mismatches(component: str, actual: Mapping, expected: Mapping, inputs64: Mapping[str, Any],
                     config: Mapping[str, Any], profile: str, dtype: torch.dtype, figures: Figures, *,
                     autocast: bool = False) -> list[Mismatch]:
    """:func:`judge` with each problem's output path (``indices.<image>`` for a matching)."""
    comp = COMPONENTS[component]
    # Before any comparison: a matching in int32 indices compares equal by value, but breaks indexing downstream.
    problems: list[Mismatch] = list(dtype_mismatches(component, actual))
    skip: tuple[str, ...] = ()
    if comp.matching and comp.matching in actual:
        skip = (comp.matching,)
        if component == "assign.hungarian":
            ties = 0
            big_m = matcher_convention(config, profile).non_finite_cost == "max"
            for b, (cand, ref) in enumerate(zip(actual["indices"], expected["indices"])):
                issues, n = check_matching(f"indices.{b}", expected["cost"][b], ref["pred"], ref["gt"], cand["pred"],
                                           cand["gt"], dtype, big_m=big_m)
                problems += [Mismatch(f"indices.{b}", m) for m in issues]
                ties += n
            if ties:
                figures.notes.append(f"{ties} tied decision(s)")
            if len(actual["indices"]) != len(expected["indices"]):
                problems.append(Mismatch("indices", f"indices: {len(actual['indices'])} images, expected "
                                                    f"{len(expected['indices'])}"))
        elif not same_matching(actual["indices"], expected["indices"]):
            problems += _criterion_problems(inputs64, config, profile, actual["indices"], dtype)
            expected = reference_outputs(component, {**inputs64, "indices": actual["indices"]}, config, profile)
            figures.notes.append("compared under the candidate's own (co-optimal) matching")
    if comp.tie_dependent:
        expected = _tie_aware(component, actual, expected, inputs64, config, profile, figures)
    problems += compare_trees(component, actual, expected, inputs64, dtype, figures, skip=skip,
                              optional=comp.optional_outputs, autocast=autocast, profile=profile)
    return problems


def not_provided(record: Callable[[dict], None], info: Mapping[str, Any], reason: str, per_draw: bool) -> NoReturn:
    """End a check the adapter does not provide. A golden case (or a whole generated test) is skipped as *not
    provided*; with ``per_draw`` (a generated example whose variant or input the adapter declines) only this
    draw is rejected (``hypothesis.reject()``), so that hypothesis goes on drawing: the record gets the reason
    as ``declined`` and the plugin counts the test's declined and supported draws."""
    if per_draw:
        from hypothesis import reject
        record({**info, "declined": reason})
        reject()
    record({**info, "outcome": "not provided", "reason": reason})
    pytest.skip(f"not provided: {reason}")


def check(adapter: Adapter, component: str, inputs64: Mapping[str, Any], config: Mapping[str, Any], profile: str, *,
          device: str, dtype: torch.dtype, fixture: Mapping | None = None, label: str = "",
          record: Callable[[dict], None] = lambda info: None, timeout: float | None = DEFAULT_TIMEOUT,
          autocast: torch.dtype | None = None, per_draw: bool = False) -> None:
    """Run the candidate on one input and raise :class:`ConformanceFailure` if it disagrees (or its call takes
    longer than ``timeout`` seconds: class *timeout*).

    With ``autocast`` (float32 inputs, the call inside ``torch.autocast``) the candidate also runs once without
    it: where autocast left every output and gradient bit-identical the check is judged as a float32 run,
    otherwise by the autocast policy of its dtype (tolerances.toml; docs/conformance.md, "Mixed precision").

    With ``per_draw`` (a hypothesis example): a component, profile, device or dtype the adapter does not provide
    at all skips the whole test as not provided; a variant (``config``) or an input it declines rejects this
    draw only (:func:`not_provided`)."""
    info = {"component": component, "case": label, "profile": profile}
    if autocast is not None:
        info["autocast"] = str(autocast).removeprefix("torch.")
    if per_draw:
        # Without the config: whether the adapter provides this component at all, whatever is drawn.
        support = adapter.supports(component, device, dtype, profile)
        if not support:
            not_provided(record, info, support.reason, per_draw=False)
    support = adapter.supports(component, device, dtype, profile, config)
    if not support and (per_draw or not support.generated_only):
        not_provided(record, info, support.reason, per_draw)
    try:
        actual, seen64 = run_candidate(adapter, component, inputs64, config, profile, dtype, device, timeout,
                                       autocast)
        judged, mixed = dtype, False
        if autocast is not None:
            plain, _ = run_candidate(adapter, component, inputs64, config, profile, dtype, device, timeout)
            mixed = not _bit_identical(actual, plain)
            judged = autocast if mixed else dtype
    except ConformanceFailure as err:
        record({**info, "class": err.kind})
        raise
    except NotProvided as err:  # the adapter declines this particular input (e.g. an unsupported rank)
        not_provided(record, info, str(err), per_draw)
    except Exception:  # the library raised where the reference computes: a failure, reported as such
        record({**info, "class": "raised"})
        raise
    expected = fixture if (fixture is not None and dtype == torch.float64) else \
        reference_outputs(component, seen64, config, profile)
    figures = Figures()
    if not adapter.differentiable and "grad" in expected:
        expected = {k: v for k, v in expected.items() if k != "grad"}
        figures.notes.append("gradients not compared: the implementation is not differentiable")
    if autocast is not None:
        figures.notes.append(f"autocast {str(autocast).removeprefix('torch.')}: " + (
            f"outputs changed, judged by the autocast-{str(autocast).removeprefix('torch.')} policy" if mixed else
            "every output bit-identical to the float32 run, judged as float32"))
    mismatches = judge_mismatches(component, actual, expected, seen64, config, profile, judged, figures,
                                  autocast=mixed)
    problems = [m.message for m in mismatches]
    paths = tuple(sorted({m.path for m in mismatches}))
    info.update(max_abs=figures.max_abs, max_rel=figures.max_rel, ulps=figures.ulps, norm_ulps=figures.norm_ulps,
                worst=figures.worst, notes=figures.notes)
    if not problems:
        record(info)
        return
    non_finite = non_finite_outputs(actual, expected)
    if non_finite:
        # NaN or infinity where the reference is finite: its own class, whatever a float64 run would do
        kind = "non-finite"
        problems.insert(0, f"non-finite where the reference is finite: {', '.join(non_finite[:8])}")
    else:
        kind = classify(adapter, component, inputs64, config, profile, device, judged, fixture, timeout,
                        autocast=mixed, actual=actual, expected=expected, seen64=seen64)
    info.update({"class": kind, "paths": list(paths)})
    record(info)
    header = (f"{component} disagrees with the reference [{kind}]: impl {adapter.name} {adapter.version}, "
              f"profile {profile}, {str(dtype).removeprefix('torch.')} on {device}"
              + (f" under autocast {str(autocast).removeprefix('torch.')}" if autocast is not None else ""))
    if label:
        header += f", case {label}"
    raise ConformanceFailure(header + "\n" + "\n".join(problems), kind, paths)


def _bit_identical(a: Mapping, b: Mapping) -> bool:
    flat_a, flat_b = flatten(dict(a), "out"), flatten(dict(b), "out")
    return flat_a.keys() == flat_b.keys() and all(
        flat_a[k].dtype == flat_b[k].dtype and flat_a[k].shape == flat_b[k].shape
        and torch.equal(torch.nan_to_num(flat_a[k].double(), nan=0.5), torch.nan_to_num(flat_b[k].double(), nan=0.5))
        for k in flat_a)


def non_finite_outputs(actual: Mapping, expected: Mapping) -> list[str]:
    """Output paths where the candidate has a NaN or an infinity and the reference a finite value."""
    flat_a, flat_e = flatten(dict(actual), "out"), flatten(dict(expected), "out")
    out = []
    for path in sorted(flat_a.keys() & flat_e.keys()):
        a, e = flat_a[path], flat_e[path]
        if a.dtype.is_floating_point and e.dtype.is_floating_point and a.shape == e.shape:
            if bool((~torch.isfinite(a.double()) & torch.isfinite(e.double())).any()):
                out.append(path.removeprefix("out."))
    return out


def classify(adapter: Adapter, component: str, inputs64: Mapping[str, Any], config: Mapping[str, Any], profile: str,
             device: str, dtype: torch.dtype, fixture: Mapping | None, timeout: float | None = DEFAULT_TIMEOUT, *,
             autocast: bool = False, actual: Mapping | None = None, expected: Mapping | None = None,
             seen64: Mapping | None = None) -> str:
    """precision: run in float64, the candidate meets the standard of the failing run's dtype (or autocast policy);
    semantic: it does not; unclassified: it cannot run in float64. (PyTorch's reference tests arbitrate the same way:
    rerun in a precise dtype and ask whether the disagreement goes away.) A failing float64 run (``actual`` against
    ``expected`` on inputs ``seen64``) is internal-precision where it meets the float32 standard: the candidate
    computes in float32 whatever its inputs' dtype (a lower-precision implementation, not another formula)."""
    if dtype == torch.float64:
        if actual is not None and not judge(component, actual, expected, seen64, config, profile, torch.float32,
                                            Figures()):
            return "internal-precision"
        return "semantic"
    support = adapter.supports(component, device, torch.float64, profile, config)
    if not support and not support.generated_only:  # generated_only: a golden case, which runs
        return "unclassified"
    try:
        actual, seen64 = run_candidate(adapter, component, inputs64, config, profile, torch.float64, device, timeout)
    except CallTimeout:
        return "timeout"
    except Exception:  # noqa: BLE001 - a float64 run that crashes cannot show the difference is precision
        return "semantic"
    expected = fixture if fixture is not None else reference_outputs(component, seen64, config, profile)
    if not adapter.differentiable:
        expected = {k: v for k, v in expected.items() if k != "grad"}
    problems = judge(component, actual, expected, seen64, config, profile, dtype, Figures(), autocast=autocast)
    return "semantic" if problems else "precision"


# --------------------------------------------------------------------------- several ranks

def check_ranked(adapter: Adapter, component: str, inputs64: Mapping[str, Any], config: Mapping[str, Any],
                 profile: str, *, pool, device: str, dtype: torch.dtype, label: str = "",
                 record: Callable[[dict], None] = lambda info: None, timeout: float | None = DEFAULT_TIMEOUT,
                 per_draw: bool = False) -> None:
    """:func:`check` across the ranks of a process group (``pool``: conformance.distributed.RankPool); ``per_draw``
    as for :func:`check`.

    The batch is split into one shard per rank (components/ranks.py); every rank runs the candidate on its
    shard, and each rank's outputs and gradients must agree with the reference on that shard given every
    rank's statistic (the all-reduced box count): what the rank computes in data-parallel training."""
    from components import ranks
    world = pool.world_size
    support = adapter.supports(component, device, dtype, profile, config)
    if support and component in adapter.single_process:
        support = Support(False, f"{adapter.name} runs {component} in one process only: "
                                 f"{adapter.single_process[component]}")
    info = {"component": component, "case": label, "profile": profile, "world_size": world}
    if not support:
        # Declined for the component, profile, dtype or device (never for a drawn config): the whole test.
        whole = not adapter.supports(component, device, dtype, profile) or component in adapter.single_process
        not_provided(record, info, support.reason, per_draw and not whole)
    header = (f"{component} across {world} ranks ({pool.backend}), impl {adapter.name} {adapter.version}, profile "
              f"{profile}, {str(dtype).removeprefix('torch.')} on {device}" + (f", case {label}" if label else ""))
    shards = ranks.split(component, inputs64, world)
    results = pool.run(component, shards, config, profile, dtype, timeout)
    declined = [r.not_provided for r in results if r.not_provided]
    if declined:
        not_provided(record, info, declined[0], per_draw)
    failed = [r for r in results if r.error]
    if failed:
        kind = "timeout" if any(r.kind == "timeout" for r in failed) else "raised"
        record({**info, "class": kind})
        pool.broken = True  # its peers may be left in a collective: the session starts a new group
        raise ConformanceFailure(f"{header}: the candidate failed [{kind}]\n" + "\n".join(
            f"rank {r.rank}: {r.error}" for r in failed), kind)
    figures = Figures()
    mismatches = _rank_problems(adapter, component, results, config, profile, dtype, figures)
    problems = [m.message for m in mismatches]
    paths = tuple(sorted({m.path for m in mismatches}))
    info.update(max_abs=figures.max_abs, max_rel=figures.max_rel, ulps=figures.ulps, norm_ulps=figures.norm_ulps,
                worst=figures.worst, notes=figures.notes)
    if not problems:
        record(info)
        return
    kind = "semantic"
    if dtype != torch.float64 and adapter.supports(component, device, torch.float64, profile, config):
        again = pool.run(component, shards, config, profile, torch.float64, timeout)
        if not any(r.error or r.not_provided for r in again) and not _rank_problems(
                adapter, component, again, config, profile, dtype, Figures()):
            kind = "precision"
    elif dtype != torch.float64:
        kind = "unclassified"
    info.update({"class": kind, "paths": list(paths)})
    record(info)
    raise ConformanceFailure(f"{component} disagrees with the reference across {world} ranks [{kind}]: "
                             f"{header.split(', ', 1)[1]}\n" + "\n".join(problems), kind, paths)


def _rank_problems(adapter: Adapter, component: str, results, config: Mapping[str, Any], profile: str,
                   dtype: torch.dtype, figures: Figures) -> list[Mismatch]:
    """Every rank's outputs against the reference on its shard, given every rank's statistic."""
    from components import ranks
    statistics = [ranks.local_statistic(component, r.seen64, config, profile) for r in results]
    figures.notes.append(f"per-rank statistics {statistics}")
    problems = []
    for r in results:
        seen = ranks.with_world(component, r.seen64, statistics, config, profile)
        expected = reference_outputs(component, seen, config, profile)
        if not adapter.differentiable:
            expected = {k: v for k, v in expected.items() if k != "grad"}
        problems += [Mismatch(m.path, f"rank {r.rank} of {len(results)}: {m.message}") for m in
                     judge_mismatches(component, r.outputs, expected, seen, config, profile, dtype, figures)]
    return problems


# --------------------------------------------------------------------------- failing examples

FAILURE_DIR = Path(".detconf") / "failures"


def _slug(text: str) -> str:
    """``text`` as one file-name component (letters, digits, ``-_.=``; anything else ``_``)."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("._")[:80] or "_"


def save_failure(test_name: str, component: str, inputs64: Mapping[str, Any], config: Mapping[str, Any],
                 profile: str, *, impl: str = "", dtype: torch.dtype = torch.float32, device: str = "cpu") -> Path:
    """Write a failing generated example as a fixture file; returns its path,
    ``.detconf/failures/<impl>/<dtype>-<device>/<component>/<test>-<example hash>.safetensors``.

    The name holds the example's own hash (of its inputs, config and profile), so another run, test or
    example never overwrites it; the file is written to a temporary name and renamed, so a reader never
    sees half of it."""
    tensors = flatten(_to_cpu(dict(inputs64)), "in")
    meta = {"name": f"replay/{test_name}", "component": component, "config": dict(config), "profile": profile}
    payload = encode(tensors, meta)
    digest = hashlib.sha256(payload).hexdigest()[:12]
    path = (FAILURE_DIR / _slug(impl or "impl") / f"{str(dtype).removeprefix('torch.')}-{_slug(str(device))}"
            / component / f"{_slug(test_name)}-{digest}.safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(payload)
    os.replace(partial, path)
    return path


def load_failure(path: Path) -> tuple[str, dict, dict, str]:
    """``(component, inputs, config, profile)`` of a file written by :func:`save_failure`."""
    from safetensors import safe_open
    from safetensors.torch import load_file
    # load_file maps the file: every tensor views one storage, and empty ones (an image without targets) sit at
    # its start under their own dtypes, which torch.save (the ranks' messages) refuses. Each gets its own.
    tensors = {name: tensor.clone() for name, tensor in load_file(str(path)).items()}
    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads((handle.metadata() or {})["case"])
    return meta["component"], unflatten(tensors, "in"), meta["config"], meta["profile"]


def check_generated(adapter: Adapter, component: str, inputs64: Mapping[str, Any], config: Mapping[str, Any],
                    profile: str, *, device: str, dtype: torch.dtype, test_name: str, impl: str,
                    record: Callable[[dict], None] = lambda info: None, timeout: float | None = DEFAULT_TIMEOUT,
                    replay_options: tuple[str, ...] = (), autocast: torch.dtype | None = None) -> None:
    """:func:`check` for a generated example (``per_draw``: an example the adapter declines is rejected, and
    hypothesis draws another); a failure is saved with a one-line replay command (the run's ``--impl``,
    ``--dtype``, ``--device`` and ``replay_options``: every other option that changes a call)."""
    try:
        check(adapter, component, inputs64, config, profile, device=device, dtype=dtype, label=test_name, record=record,
              timeout=timeout, autocast=autocast, per_draw=True)
    except ConformanceFailure as err:
        raise with_replay(err, test_name, component, inputs64, config, profile, impl=impl, dtype=dtype, device=device,
                          replay_options=replay_options) from None


def with_replay(err: ConformanceFailure, test_name: str, component: str, inputs64: Mapping[str, Any],
                config: Mapping[str, Any], profile: str, *, impl: str, dtype: torch.dtype, device: str,
                replay_options: tuple[str, ...] = ()) -> ConformanceFailure:
    """``err`` with its example saved (:func:`save_failure`) and the one-line command that replays it."""
    path = save_failure(test_name, component, inputs64, config, profile, impl=impl, dtype=dtype,
                        device=device).resolve()
    # Absolute paths: the command works from any directory (the suite's own, an installed wheel's).
    replay = shlex.join(["pytest", str(Path(__file__).resolve().parent), f"--impl={impl}",
                         f"--dtype={str(dtype).removeprefix('torch.')}", f"--device={device}", *replay_options,
                         f"--conformance-replay={path}"])
    return ConformanceFailure(f"{err}\nfailing example saved to {path}; replay: {replay}", err.kind, err.paths)


def check_invalid(adapter: Adapter, component: str, inputs64: Mapping[str, Any], config: Mapping[str, Any],
                  profile: str, *, why: str, error: str, device: str, dtype: torch.dtype, label: str = "",
                  record: Callable[[dict], None] = lambda info: None, timeout: float | None = DEFAULT_TIMEOUT) -> None:
    """An input the contract rejects (conformance/invalid_inputs.py): the reference raises
    :class:`~oracle.errors.OracleInputError` matching the regular expression ``error`` on it (verified first: otherwise
    the case itself is wrong), and the candidate must raise too (any exception). Returning outputs fails as
    *accepted-invalid-input*."""
    info = {"component": component, "case": label, "profile": profile}
    try:
        reference_outputs(component, inputs64, config, profile, with_grads=False)
    except OracleInputError as err:
        expected_error = f"{type(err).__name__}: {err}"
        if not re.search(error, str(err)):
            raise AssertionError(f"{label}: the reference rejects this input for another reason than {why} "
                                 f"({expected_error}); the invalid case is wrong") from err
    else:
        raise AssertionError(f"{label}: the reference accepts this input ({why}); the invalid case is wrong")
    support = adapter.supports(component, device, dtype, profile, config)
    if not support:
        not_provided(record, info, support.reason, per_draw=False)
    try:
        with time_limit(timeout, f"{adapter.name}'s {component} call"):
            with adapter.calling(dtype, device):
                outputs = adapter.run(component, cast(inputs64, dtype, device), config, profile)
    except NotProvided as err:
        not_provided(record, info, str(err), per_draw=False)
    except CallTimeout:
        record({**info, "class": "timeout"})
        raise
    except Exception as err:  # noqa: BLE001 -- any exception is the candidate refusing the input
        first_line = str(err).splitlines()[0][:200] if str(err) else ""
        record({**info, "notes": [f"raised {type(err).__name__}: {first_line}"]})
        return
    shown = ", ".join(sorted(outputs)) if isinstance(outputs, Mapping) else type(outputs).__name__
    record({**info, "class": "accepted-invalid-input"})
    raise ConformanceFailure(
        f"{component} accepted an invalid input [accepted-invalid-input]: impl {adapter.name} {adapter.version}, "
        f"profile {profile}, {str(dtype).removeprefix('torch.')} on {device}, case {label}\n"
        f"the input has {why}; the reference raises {expected_error}\n"
        f"the candidate returned outputs ({shown}) instead of raising", "accepted-invalid-input")
