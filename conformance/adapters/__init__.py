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


def _one_line(err: BaseException) -> str:
    """An exception as one line: its type, message and, for a syntax error, where."""
    where = f" at {err.filename}:{err.lineno}" if isinstance(err, SyntaxError) and err.filename else ""
    text = " ".join(str(err).split()) or "no message"
    return f"{type(err).__name__}: {text}{where}"


def _call_factory(factory, origin: str) -> Adapter:
    try:
        adapter = factory() if callable(factory) and not isinstance(factory, Adapter) else factory
    except Exception as err:  # noqa: BLE001 - any error of the user's factory is a usage error of --impl
        raise AdapterError(f"{origin}: the adapter factory raised {_one_line(err)}") from None
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
        except Exception as err:  # noqa: BLE001 - a syntax or import-time error of the user's module included
            raise AdapterError(f"--impl={impl}: cannot import {module_name} ({_one_line(err)})") from None
        if not hasattr(module, attr):
            raise AdapterError(f"--impl={impl}: {module_name} has no attribute {attr!r}")
        return _call_factory(getattr(module, attr), f"--impl={impl}")
    if impl in BUILTIN:
        return _call_factory(importlib.import_module(f"conformance.adapters.{impl}").make_adapter, f"--impl={impl}")
    for ep in entry_points(group="detconf.adapters"):
        if ep.name == impl:
            try:
                factory = ep.load()
            except Exception as err:  # noqa: BLE001 - as for py:module:factory
                raise AdapterError(f"--impl={impl}: cannot load entry point {ep.value} ({_one_line(err)})") from None
            return _call_factory(factory, f"--impl={impl} (entry point {ep.value})")
    known = sorted(set(BUILTIN) | {ep.name for ep in entry_points(group="detconf.adapters")})
    raise AdapterError(f"--impl={impl}: unknown implementation; available: {', '.join(known)}, "
                       f"or py:package.module:factory")
