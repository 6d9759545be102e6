"""Input validation shared by every public function of the reference.

Each check raises :class:`~oracle.errors.OracleInputError` with a message of the form
``"<argument>: expected <what>, got <what was found>"``. Checks run before any arithmetic, so
the reference never returns NaN or a number computed from malformed input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import torch

from .errors import OracleInputError

#: What the reference's public functions take where they need a tensor: a ``torch.Tensor`` or anything
#: ``torch.as_tensor`` accepts (nested lists, numpy arrays, numbers). Each function checks it up front and
#: raises :class:`OracleInputError` naming the argument otherwise; shapes and formats are in its docstring.
TensorLike: TypeAlias = object

_INDEX_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def fail(name: str, expected: str, found: str) -> OracleInputError:
    """The error for argument ``name``: expected ``expected``, got ``found``."""
    return OracleInputError(f"{name}: expected {expected}, got {found}")


def _describe(x: TensorLike) -> str:
    if isinstance(x, torch.Tensor):
        return f"tensor of dtype {x.dtype} and shape {tuple(x.shape)}"
    return f"{type(x).__name__}"


def as_float64(name: str, x: TensorLike) -> torch.Tensor:
    """``x`` (tensor, numpy array, nested list or number) as a float64 CPU tensor.

    Autograd is kept: a float64 CPU tensor is returned as is and other tensors are converted with
    ``.to``, so gradients of the reference can be taken with respect to its inputs.
    """
    if isinstance(x, torch.Tensor):
        t = x
    elif isinstance(x, (np.ndarray, list, tuple, int, float, np.number)):
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError) as err:
            raise fail(name, "a real-valued tensor, array or list", f"{type(x).__name__} ({err})") from None
    else:
        raise fail(name, "a real-valued tensor, array or list", _describe(x))
    if t.dtype == torch.bool or t.is_complex():
        raise fail(name, "a real-valued tensor", f"dtype {t.dtype}")
    if t.dtype == torch.float64 and t.device.type == "cpu":
        return t
    return t.to(device="cpu", dtype=torch.float64)


def as_index(name: str, x: TensorLike) -> torch.Tensor:
    """``x`` as an int64 CPU tensor; floating or boolean input is refused (an index must be integral)."""
    t = x if isinstance(x, torch.Tensor) else None
    if t is None:
        if isinstance(x, (np.ndarray, list, tuple)):
            try:
                arr = np.asarray(x)
                if arr.size == 0:
                    arr = arr.astype(np.int64)
                t = torch.as_tensor(arr)
            except (TypeError, ValueError) as err:
                raise fail(name, "an integer tensor, array or list", f"{type(x).__name__} ({err})") from None
        else:
            raise fail(name, "an integer tensor, array or list", _describe(x))
    if t.dtype not in _INDEX_DTYPES:
        raise fail(name, "an integer dtype (int64, int32, ...)", f"dtype {t.dtype}")
    return t.to(device="cpu", dtype=torch.int64)


def check_finite(name: str, t: torch.Tensor) -> None:
    """Refuse NaN and ±inf, naming how many and the first offending index."""
    t = t.detach()
    # A finite sum proves every element finite (NaN and ±inf propagate through addition: inf - inf is NaN),
    # in one read of the tensor; only a sum that is not finite (a bad value, or an overflow) needs the
    # element-wise test.
    if t.is_floating_point() and math.isfinite(float(t.sum())):
        return
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        first = tuple(int(i) for i in torch.nonzero(bad)[0])
        value = t.detach()[first].item()
        raise fail(name, "finite values", f"{int(bad.sum())} non-finite value(s), first {value} at index {first}")


def check_magnitude(name: str, t: torch.Tensor, bound: float, where: str, what: str = "values") -> None:
    """Refuse finite values of magnitude above ``bound``, the documented limit of a function whose formula would
    overflow float64 beyond it (``where``: the quantity that would overflow). Run after :func:`check_finite`."""
    d = t.detach()
    if d.numel() == 0:
        return
    top = float(d.abs().max())
    if top > bound:
        raise OracleInputError(f"{name}: {what} up to {top:.3g} overflow float64 in {where} "
                               f"(|{what.rstrip('s')}| must be at most {bound:.0e})")


def check_int(name: str, value: object, *, low: int | None = None, high: int | None = None) -> int:
    """An int (not a bool; numpy and 0-d integer tensors accepted) within the given bounds, returned as int."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dtype in _INDEX_DTYPES:
        value = int(value.item())
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise fail(name, "an int", repr(value))
    v = int(value)
    if low is not None and v < low:
        raise fail(name, f"an int >= {low}", str(v))
    if high is not None and v > high:
        raise fail(name, f"an int <= {high}", str(v))
    return v


def check_rank(name: str, t: torch.Tensor, rank: int, shape_doc: str) -> None:
    if t.dim() != rank:
        raise fail(name, f"rank {rank} {shape_doc}", f"shape {tuple(t.shape)}")


def check_last_dim(name: str, t: torch.Tensor, size: int, shape_doc: str) -> None:
    if t.dim() == 0 or t.shape[-1] != size:
        raise fail(name, f"last dimension {size} {shape_doc}", f"shape {tuple(t.shape)}")


def check_same_shape(name: str, t: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    if t.shape != ref.shape:
        raise fail(name, f"the shape of {ref_name} {tuple(ref.shape)}", f"shape {tuple(t.shape)}")


def check_broadcasts(name: str, t: torch.Tensor, shape: Sequence[int], expected: str) -> None:
    """``t`` broadcasts to ``shape`` without enlarging it."""
    try:
        ok = torch.broadcast_shapes(t.shape, torch.Size(shape)) == torch.Size(shape)
    except RuntimeError:
        ok = False
    if not ok:
        raise fail(name, expected, f"shape {tuple(t.shape)}")


def check_range(name: str, t: torch.Tensor, low: float | None, high: float | None) -> None:
    """Every element in ``[low, high]`` (either bound may be None); NaN is in no range and is refused."""
    d = t.detach()
    if d.is_floating_point() and bool(torch.isnan(d).any()):
        idx = tuple(int(i) for i in torch.nonzero(torch.isnan(d))[0])
        raise fail(name, f"values in [{low}, {high}]", f"nan at index {idx}")
    if low is not None and bool((d < low).any()):
        idx = tuple(int(i) for i in torch.nonzero(d < low)[0])
        raise fail(name, f"values >= {low}", f"{d[idx].item()} at index {idx}")
    if high is not None and bool((d > high).any()):
        idx = tuple(int(i) for i in torch.nonzero(d > high)[0])
        raise fail(name, f"values <= {high}", f"{d[idx].item()} at index {idx}")


def check_labels(name: str, labels: torch.Tensor, num_classes: int, ignore_index: int | None = None) -> None:
    """Class labels in ``[0, num_classes)``, or equal to ``ignore_index`` where one is given."""
    valid = (labels >= 0) & (labels < num_classes)
    if ignore_index is not None:
        valid |= labels == ignore_index
    if not bool(valid.all()):
        idx = tuple(int(i) for i in torch.nonzero(~valid)[0])
        allowed = f"labels in [0, {num_classes})"
        if ignore_index is not None:
            allowed += f" or {ignore_index} (ignore_index)"
        raise fail(name, allowed, f"{int(labels[idx])} at index {idx}")


def check_scalar(name: str, value: object, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False) -> float:
    """A finite real number within the given bounds, returned as float."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise fail(name, "a scalar", _describe(value))
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise fail(name, "a real number", type(value).__name__)
    v = float(value)
    if not math.isfinite(v):
        raise fail(name, "a finite number", str(v))
    if low is not None and (v <= low if low_open else v < low):
        raise fail(name, f"a number {'>' if low_open else '>='} {low}", str(v))
    if high is not None and v > high:
        raise fail(name, f"a number <= {high}", str(v))
    return v


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    if value not in choices:
        raise fail(name, f"one of {', '.join(repr(c) for c in choices)}", repr(value))
    return value  # type: ignore[return-value]
