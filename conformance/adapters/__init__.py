"""Adapters: how `--impl` finds the implementation under test.

`--impl=NAME` resolves, in order: a built-in adapter module ``conformance.adapters.<NAME>``; an
entry point named NAME in the group ``detconf.adapters``; or ``py:package.module:factory`` (a
callable returning an :class:`Adapter`).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from .base import YES, Adapter, NotProvided, Support

__all__ = ["Adapter", "BUILTIN", "NotProvided", "Support", "YES", "resolve"]

#: Built-in adapters available in this version.
BUILTIN = ("oracle", "torchvision", "transformers", "ultralytics", "mmdet", "onnx")


class AdapterError(Exception):
    """--impl does not name a usable adapter."""


def _call_factory(factory, origin: str) -> Adapter:
    adapter = factory() if callable(factory) and not isinstance(factory, Adapter) else factory
    if not isinstance(adapter, Adapter):
        raise AdapterError(f"{origin} returned {type(adapter).__name__}, expected a conformance.adapters.Adapter")
    return adapter


def resolve(impl: str) -> Adapter:
    """The adapter for an ``--impl`` value (see the module docstring)."""
    if impl.startswith("py:"):
        target = impl[3:]
        module_name, sep, attr = target.partition(":")
        if not sep or not module_name or not attr:
            raise AdapterError(f"--impl={impl}: expected py:package.module:factory")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise AdapterError(f"--impl={impl}: cannot import {module_name} ({err})") from None
        if not hasattr(module, attr):
            raise AdapterError(f"--impl={impl}: {module_name} has no attribute {attr!r}")
        return _call_factory(getattr(module, attr), impl)
    if impl in BUILTIN:
        return _call_factory(importlib.import_module(f"conformance.adapters.{impl}").make_adapter, impl)
    for ep in entry_points(group="detconf.adapters"):
        if ep.name == impl:
            return _call_factory(ep.load(), f"entry point {ep.value}")
    known = sorted(set(BUILTIN) | {ep.name for ep in entry_points(group="detconf.adapters")})
    raise AdapterError(f"--impl={impl}: unknown implementation; available: {', '.join(known)}, "
                       f"or py:package.module:factory")
