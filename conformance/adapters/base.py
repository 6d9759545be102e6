"""The adapter contract (DESIGN §7).

An adapter wraps one implementation under test. It declares its ``name``, ``version``, the
``profile`` it follows (``None``: it follows each case's profile, as the reference does), the
``install`` command shown when it is missing, and per component a callable with the canonical
signature of components/contract.py::

    call(inputs, config, profile) -> outputs

``inputs`` are nested dicts/lists of torch tensors on the requested device and dtype (floating
tensors in the run's dtype, integer tensors int64); ``outputs`` must have the canonical names and
shapes. During a call, ``adapter.call_dtype`` and ``adapter.call_device`` are the run's dtype and
device (for a call whose inputs carry no floating tensor, such as a bool mask). Floating outputs are
compared after upcasting to float64. If ``differentiable`` (the
default), gradients are taken with torch autograd through the call. A call may raise
``NotProvided(reason)`` for an input it cannot take (a rank, an optional tensor): that check is
reported as not provided (in a generated test, that draw is rejected and hypothesis draws another).
Any other exception, a library's own ``NotImplementedError`` included (such as torch's "not
implemented for 'Half'"), fails the check: the library raised where the reference computes. The
adapter calls its library; it never re-implements the math.

``NotProvided`` is for inputs the library has no way to take. When the library's own model produces an
input the component uses (two-stage encoder proposals, say) and its loss ignores it, the adapter runs
the library anyway, as that model calls it, and the comparison shows the terms it drops: a failure, or
a strict known difference with the reason. Declining would hide the gap as *not provided*.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

Call = Callable[[Mapping[str, Any], Mapping[str, Any], str], dict]


class NotProvided(NotImplementedError):
    """Raised by an adapter's call for an input its implementation has no way to express (reported as not
    provided, with the message as the reason). A ``NotImplementedError`` raised by the library itself is a
    failure, not this; nor is an input the library's own model produces and its loss drops (run the library:
    the comparison shows what it drops)."""


@dataclass(frozen=True)
class Support:
    """Whether something is supported, and why not. ``generated_only``: declined for generated draws only (whose
    verdict would depend on the draw sequence, e.g. a known upstream bug that only some draws show); a golden case,
    whose verdict is fixed, runs it and is judged with its known differences."""

    ok: bool
    reason: str = ""
    generated_only: bool = False

    def __bool__(self) -> bool:
        return self.ok


YES = Support(True)


@dataclass
class Adapter:
    """An implementation under test. Subclass it, or build one from a mapping of component callables.

    - ``components``: ``{component name: call}``; a component absent here is *not provided*.
    - ``profiles``: the profiles the adapter follows; ``None`` means every profile (the reference).
    - ``devices`` / ``dtypes``: what it runs on.
    - ``known_differences``: path of a TOML file of expected failures (see conformance/known.py).
    - ``single_process``: ``{component: reason}`` for rank-dependent components (components/ranks.py) that
      cannot run in a process group; under ``--world-size=N`` every other rank-dependent component it
      provides runs on N ranks of a real ``torch.distributed`` group, which the suite initialises in each
      rank's process before the first call (``torch.distributed.is_initialized()`` is then true; gloo on
      CPU, nccl for ``--device=cuda``), so the library's own all-reduce runs as in training.
    - ``runs_under_autocast``: whether its calls can run inside ``torch.autocast`` (``--autocast``); a
      ``Support(False, reason)`` makes ``--autocast`` a usage error with the reason (an ONNX graph runs on
      onnxruntime, outside torch).
    - ``slow_first_calls``: informational (a call may take seconds the first time for a given shape: an
      export, a compilation). The suite runs every adapter without hypothesis' per-example deadline and
      bounds each call by ``--conformance-timeout`` instead, so a slow but correct call never fails.
    """

    name: str
    version: str
    components: Mapping[str, Call]
    profiles: frozenset[str] | None = None
    devices: frozenset[str] = frozenset({"cpu", "cuda"})
    dtypes: frozenset[torch.dtype] = frozenset({torch.float64, torch.float32, torch.float16, torch.bfloat16})
    differentiable: bool = True
    install: str = ""
    known_differences: str | None = None
    slow_first_calls: bool = False
    single_process: Mapping[str, str] = field(default_factory=dict)
    runs_under_autocast: Support = YES
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def profile(self) -> str:
        return "each case's own" if self.profiles is None else ", ".join(sorted(self.profiles))

    def available(self) -> Support:
        """Whether the implementation can be imported here (override for third-party libraries)."""
        return YES

    def supports(self, component: str, device: str, dtype: torch.dtype, profile: str,
                 config: Mapping[str, Any] | None = None) -> Support:
        """Whether this adapter runs ``component`` for this profile, device and dtype; ``config`` (the case's)
        lets an adapter decline variants it lacks (e.g. ``op == "iof"``)."""
        if component not in self.components:
            return Support(False, f"{self.name} provides no {component}")
        from components.contract import COMPONENTS
        dependent = COMPONENTS[component].profile_dependent if component in COMPONENTS else True
        if dependent and self.profiles is not None and profile not in self.profiles:
            return Support(False, f"{self.name} follows profile(s) {self.profile}, not {profile!r}")
        if device not in self.devices:
            return Support(False, f"{self.name} does not run on {device}")
        if dtype not in self.dtypes:
            return Support(False, f"{self.name} does not run in {str(dtype).removeprefix('torch.')}")
        return YES

    call_dtype: torch.dtype = torch.float32
    call_device: str = "cpu"

    def run(self, component: str, inputs: Mapping[str, Any], config: Mapping[str, Any], profile: str) -> dict:
        return self.components[component](inputs, config, profile)

    @contextlib.contextmanager
    def calling(self, dtype: torch.dtype, device: str) -> Iterator[None]:
        """Set :attr:`call_dtype` and :attr:`call_device` for the duration of one call."""
        previous = self.call_dtype, self.call_device
        self.call_dtype, self.call_device = dtype, device
        try:
            yield
        finally:
            self.call_dtype, self.call_device = previous


class MissingAdapter(Adapter):
    """Stands for a library that cannot be imported here: the run is a usage error (exit status 4) naming the
    import error and the install command."""

    def __init__(self, name: str, install: str, reason: str):
        super().__init__(name=name, version="not installed", components={}, install=install)
        self.reason = reason

    def available(self) -> Support:
        return Support(False, self.reason)


def known_differences_file(name: str) -> str:
    """Path of a built-in adapter's known-differences file (conformance/adapters/known_differences/<name>.toml)."""
    from pathlib import Path
    return str(Path(__file__).with_name("known_differences") / f"{name}.toml")


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """torch's default dtype set to ``dtype`` for a call (float32 for the half types, which cannot be a
    default), restored afterwards: for libraries that allocate loss buffers in the default dtype."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype if dtype in (torch.float32, torch.float64) else torch.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)
