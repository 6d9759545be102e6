"""Comparing a candidate's outputs with the reference (DESIGN §6).

- Values: asymmetric ``|a - e| <= atol + rtol |e|`` per element (conformance/tolerances.py), after
  upcasting the candidate to float64; names, shapes and integer outputs must match exactly, and integer
  and boolean outputs must have the contract's dtype (int64 indices and labels, bool masks).
- Messages diagnose: the output path, shape, how many elements mismatch, the greatest absolute and
  relative error with their index, and the error in ULPs of the candidate's dtype.
- Matchings, tie-aware: (1) valid, (2) total cost optimal under the reference cost matrix, (3) every
  decision whose margin exceeds the tie threshold identical to the reference's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from golden.store import flatten
from oracle.assign.hungarian import evaluate_matching, poisoned_entries

from .tolerances import Tolerance, tie_threshold, tolerance


@dataclass
class Mismatch:
    """One output that does not agree."""

    path: str
    message: str
    max_abs: float = 0.0
    max_rel: float = 0.0
    ulps: float = 0.0


@dataclass
class Figures:
    """Worst agreement figures over the outputs of one check (for reports)."""

    max_abs: float = 0.0
    max_rel: float = 0.0
    ulps: float = 0.0
    worst: str = ""
    notes: list[str] = field(default_factory=list)
    #: The greatest error in ULPs of the candidate's dtype at its tensor's largest |expected| (normwise).
    norm_ulps: float = 0.0

    def update(self, path: str, abs_err: float, rel_err: float, ulps: float) -> None:
        if rel_err > self.max_rel or (rel_err == self.max_rel and abs_err > self.max_abs):
            self.worst = path
        self.max_abs = max(self.max_abs, abs_err)
        self.max_rel = max(self.max_rel, rel_err)
        self.ulps = max(self.ulps, ulps)


def _ulp(x: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    """Spacing of ``dtype`` at |x| (its epsilon times |x|, floored at its smallest normal)."""
    info = torch.finfo(dtype)
    return np.maximum(np.abs(x) * info.eps, info.tiny)


def _index(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


def compare_values(path: str, actual: torch.Tensor, expected: torch.Tensor, tol: Tolerance, dtype: torch.dtype,
                   figures: Figures, scale: float | None = None) -> Mismatch | None:
    """One tensor of the candidate against the reference. ``scale``: the magnitude of the normwise term
    (default: the tensor's largest finite |expected|)."""
    if tuple(actual.shape) != tuple(expected.shape):
        return Mismatch(path, f"{path}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
    if not expected.dtype.is_floating_point:
        if actual.dtype.is_floating_point:
            return Mismatch(path, f"{path}: floating {actual.dtype}, expected integer values ({expected.dtype})")
        bad = actual.cpu().to(torch.int64) != expected.to(torch.int64)
        if bool(bad.any()):
            where = _index(int(torch.nonzero(bad.flatten())[0]), tuple(bad.shape))
            return Mismatch(path, f"{path}: {int(bad.sum())} of {bad.numel()} integer values differ, first at "
                                  f"{where}: {actual.cpu()[where].item()} vs {expected[where].item()}",
                            float("inf"), float("inf"), float("inf"))
        return None
    a = actual.detach().cpu().to(torch.float64).numpy()
    e = expected.detach().cpu().to(torch.float64).numpy()
    if a.size == 0:
        return None
    finite = np.isfinite(a) & np.isfinite(e)
    same_special = ~finite & ((a == e) | (np.isnan(a) & np.isnan(e)))
    diff = np.where(finite, np.abs(a - e), np.where(same_special, 0.0, np.inf))
    if scale is None:
        scale = _scale(e)
    allowed = tol.atol + tol.rtol * np.abs(e) + tol.norm_ulps * torch.finfo(dtype).eps * scale
    bad = diff > allowed
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff == 0, 0.0, diff / np.abs(e))
    ulps = diff / _ulp(e, dtype)
    # Report figures where the expected magnitude exceeds atol: relative errors and ULPs of values that
    # are (almost) zero say nothing and would read as 1e308.
    if scale:
        figures.norm_ulps = max(figures.norm_ulps, float(diff.max()) / (torch.finfo(dtype).eps * scale))
    meaningful = np.abs(e) > tol.atol
    if bool(meaningful.any()):
        figures.update(path, float(diff.max()), float(np.nan_to_num(rel[meaningful], nan=np.inf).max()),
                       float(ulps[meaningful].max()))
    else:
        figures.update(path, float(diff.max()), 0.0, 0.0)
    if not bool(bad.any()):
        return None
    n_bad = int(bad.sum())
    i_abs = int(np.argmax(np.where(bad, diff, -1.0)))
    i_rel = int(np.argmax(np.where(bad, np.nan_to_num(rel, nan=np.inf), -1.0)))
    shape = e.shape
    flat_a, flat_e = a.reshape(-1), e.reshape(-1)
    msg = (f"{path}: tensors are not close ({str(dtype).removeprefix('torch.')} run vs the float64 reference)\n"
           f"  shape {shape}, mismatched elements {n_bad} / {e.size} ({n_bad / e.size:.1%})\n"
           f"  greatest absolute difference {diff.reshape(-1)[i_abs]:.6g} at index {_index(i_abs, shape)} "
           f"(got {flat_a[i_abs]:.17g}, expected {flat_e[i_abs]:.17g}; allowed {allowed.reshape(-1)[i_abs]:.3g})\n"
           f"  greatest relative difference {rel.reshape(-1)[i_rel]:.6g} at index {_index(i_rel, shape)}\n"
           f"  that is {ulps.reshape(-1)[i_abs]:.4g} ULPs of {str(dtype).removeprefix('torch.')}"
           f" ({diff.reshape(-1)[i_abs] / (torch.finfo(dtype).eps * scale) if scale else float('inf'):.4g} ULPs of the "
           f"{'gradient' if path.startswith('grad.') else 'tensor'}'s largest value {scale:.3g}); "
           f"tolerance rtol {tol.rtol:.3g}, atol {tol.atol:.3g} ({tol.reason})")
    return Mismatch(path, msg, float(diff.max()), float(np.nan_to_num(rel, nan=np.inf).max()), float(ulps.max()))


def _scale(e: np.ndarray) -> float:
    """The largest finite |value| (0 for none)."""
    return float(np.abs(e[np.isfinite(e)]).max(initial=0.0))


def reduction_terms(inputs: Mapping[str, Any], output: torch.Tensor) -> int:
    """How many input elements an output element sums (1 for element-wise outputs)."""
    sizes = [t.numel() for t in flatten(dict(inputs), "in").values() if t.dtype.is_floating_point]
    largest = max(sizes, default=1)
    return max(1, largest // max(output.numel(), 1))


def compare_trees(component: str, actual: Mapping[str, Any], expected: Mapping[str, Any], inputs: Mapping[str, Any],
                  dtype: torch.dtype, figures: Figures, *, skip: tuple[str, ...] = (),
                  optional: tuple[str, ...] = (), autocast: bool = False, profile: str | None = None) -> list[Mismatch]:
    """Every mismatch between two output trees (paths like ``losses.loss_ce``, ``grad.outputs.pred_boxes``),
    with the tolerances of ``dtype`` (with ``autocast``: of a float32 run inside ``torch.autocast(dtype)``).
    A name the reference does not give is a mismatch unless a rule of the component's ``extra_outputs`` for
    ``profile`` accepts it (components/contract.py); accepted names are listed in ``figures.notes``."""
    flat_a = {k[4:]: v for k, v in flatten(dict(actual), "out").items()}
    flat_e = {k[4:]: v for k, v in flatten(dict(expected), "out").items()}
    out = []
    for path in sorted(set(flat_e) - set(flat_a)):
        if not path.startswith(skip) and not (optional and path.startswith(optional)):
            out.append(Mismatch(path, f"{path}: missing from the candidate's outputs"))
    accepted = []
    for path in sorted(set(flat_a) - set(flat_e)):
        if not path.startswith(skip):
            problem = _extra_output_problem(component, path, flat_a[path], profile)
            if problem is None:
                accepted.append(path)
            else:
                out.append(Mismatch(path, f"{path}: not an output of {component} ({problem})"))
    if accepted:
        figures.notes.append(f"{len(accepted)} extra output(s) accepted by the contract's rules for profile "
                             f"{profile!r}: {', '.join(accepted)}")
    # The gradient of the objective with respect to all inputs is one vector: its normwise error is measured
    # against its largest component, whichever input that belongs to (a small gradient block, such as that of
    # positional encodings, is a cancellation of terms of the size of the others).
    grad_scale = max((_scale(v.detach().cpu().to(torch.float64).numpy()) for k, v in flat_e.items()
                      if k.startswith("grad.") and v.dtype.is_floating_point), default=0.0)
    for path in sorted(set(flat_a) & set(flat_e)):
        if path.startswith(skip):
            continue
        n = 1 if path.startswith("grad.") else reduction_terms(inputs, flat_e[path])
        tol = tolerance(component, path, dtype, n, autocast=autocast)
        mismatch = compare_values(path, flat_a[path], flat_e[path], tol, dtype, figures,
                                  scale=grad_scale if path.startswith("grad.") else None)
        if mismatch is not None:
            out.append(mismatch)
    return out


def _extra_output_problem(component: str, path: str, value: Any, profile: str | None) -> str | None:
    """Why the extra output ``path`` is not accepted (None: a rule of the component's contract accepts it)."""
    from components.contract import COMPONENTS
    comp = COMPONENTS.get(component)
    if comp is None:
        return "unexpected name"
    if profile is None:
        return "unexpected name" + ("" if not comp.extra_outputs else ": no profile given to judge it by")
    return comp.extra_output_problem(path, value, profile)


def dtype_mismatches(component: str, actual: Mapping[str, Any]) -> list[Mismatch]:
    """Every integer or boolean output of the candidate whose dtype is not the contract's
    (components/contract.py ``exact_dtypes``: indices and labels int64, masks bool). Values are compared
    separately; floating outputs are compared by value at the run's dtype, whatever their dtype."""
    from components.contract import COMPONENTS
    comp = COMPONENTS[component]
    out = []
    for path, tensor in sorted((k[4:], v) for k, v in flatten(dict(actual), "out").items()):
        want = comp.exact_dtype(path)
        if want is not None and tensor.dtype != want:
            got, expected = (str(d).removeprefix("torch.") for d in (tensor.dtype, want))
            out.append(Mismatch(path, f"{path}: dtype {got}, the contract's is {expected} (components/contract.py "
                                      f"exact_dtypes; values are compared separately)"))
    return out


# --------------------------------------------------------------------------- matchings

def _optimal(cost: np.ndarray) -> float:
    if cost.size == 0:
        return 0.0
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].sum())


def decision_margins(cost: torch.Tensor, pred: torch.Tensor, gt: torch.Tensor) -> list[tuple[int, int, float]]:
    """For each pair (i, j) of an optimal matching, how much the optimal total cost rises when i may not
    take j: the margin by which the decision is determined."""
    c = cost.detach().cpu().to(torch.float64).numpy()
    if c.size == 0:
        return []
    base = _optimal(c)
    big = 1.0 + 4.0 * (np.abs(c).max() + 1.0) * max(c.shape)
    margins = []
    for i, j in zip(pred.tolist(), gt.tolist()):
        forbidden = c.copy()
        forbidden[i, j] = big
        margins.append((i, j, _optimal(forbidden) - base))
    return margins


def check_matching(path: str, cost: torch.Tensor, ref_pred: torch.Tensor, ref_gt: torch.Tensor,
                   cand_pred: torch.Tensor, cand_gt: torch.Tensor, dtype: torch.dtype, *,
                   big_m: bool = False) -> tuple[list[str], int]:
    """Tie-aware check of one image's matching: ``(problems, number of decisions that are ties)``. With ``big_m``
    (the ``"max"`` non-finite policy) the tie threshold scales with the finite entries only: the big-M entries
    (oracle.assign.hungarian.poisoned_entries) are not computed by the candidate, they only count."""
    ev = evaluate_matching(cost, cand_pred.cpu().to(torch.int64), cand_gt.cpu().to(torch.int64))
    if not ev.valid:
        return [f"{path}: not a valid matching: {'; '.join(ev.problems)}"], 0
    threshold = tie_threshold(cost.masked_fill(poisoned_entries(cost), 0.0) if big_m else cost, dtype)
    problems = []
    if ev.gap > threshold:
        problems.append(f"{path}: total cost {ev.total_cost:.17g} exceeds the optimum {ev.optimal_cost:.17g} by "
                        f"{ev.gap:.3g} (tie threshold {threshold:.3g}): the matching is not optimal")
    cand = dict(zip(cand_pred.tolist(), cand_gt.tolist()))
    ties = 0
    for i, j, margin in decision_margins(cost, ref_pred, ref_gt):
        if margin <= threshold:
            ties += 1
            continue
        if cand.get(i) != j:
            problems.append(f"{path}: query {i} must match target {j} (margin {margin:.3g} > tie threshold "
                            f"{threshold:.3g}) but was matched to {cand.get(i, 'nothing')}")
    return problems, ties


def same_matching(a: Any, b: Any) -> bool:
    """Whether two ``[{"pred", "gt"}, ...]`` (per image) or ``{layer: [...]}`` matchings are identical as sets."""
    if isinstance(a, Mapping):
        return isinstance(b, Mapping) and a.keys() == b.keys() and all(same_matching(a[k], b[k]) for k in a)
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if set(zip(x["pred"].tolist(), x["gt"].tolist())) != set(zip(y["pred"].tolist(), y["gt"].tolist())):
            return False
    return True
