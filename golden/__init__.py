"""Golden fixtures (DESIGN §5): the case catalogue, the fixture files, and the loader the conformance
suite uses.

    import golden
    for case in golden.cases(component="boxes.overlap", profile="torchvision"):
        inputs, outputs = case.load(dtype=torch.float32)

``python -m golden regenerate | check | list`` maintains the files (see ``python -m golden --help``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .store import GOLDEN_DIR, CaseRecord, FixtureError, read_case_file, read_manifest, unflatten

__all__ = ["FixtureError", "GoldenCase", "cases", "load"]


@dataclass(frozen=True)
class GoldenCase(CaseRecord):
    """A fixture as the manifest lists it."""

    path: Path
    entry: Mapping[str, Any]

    def load(self, dtype: torch.dtype | None = None, device: str | torch.device = "cpu") -> tuple[Any, Any]:
        """``(inputs, outputs)`` as nested dicts/lists of tensors, verified against the manifest.

        Floating tensors are cast to ``dtype`` when given (integer and boolean tensors keep theirs)
        and every tensor is moved to ``device``.
        """
        tensors, case_json = read_case_file(self.path, self.entry)
        if case_json.get("name") != self.name:
            raise FixtureError(f"{self.path}: its metadata names case {case_json.get('name')!r}, not {self.name!r}")

        def convert(t: torch.Tensor) -> torch.Tensor:
            if dtype is not None and t.dtype.is_floating_point:
                t = t.to(dtype)
            return t.to(device)
        converted = {k: convert(v) for k, v in tensors.items()}
        return unflatten(converted, "in"), unflatten(converted, "out")


def cases(component: str | None = None, *, profile: str | None = None, tag: str | None = None,
          pattern: str | None = None, root: Path = GOLDEN_DIR) -> list[GoldenCase]:
    """The fixtures of the manifest, optionally filtered by component, profile, tag and a name glob."""
    manifest = read_manifest(root / "MANIFEST.json")
    out = []
    for name, entry in sorted(manifest["cases"].items()):
        if component is not None and entry["component"] != component:
            continue
        if profile is not None and entry["profile"] != profile:
            continue
        if tag is not None and tag not in entry["tags"]:
            continue
        if pattern is not None and not fnmatch.fnmatchcase(name, pattern):
            continue
        out.append(GoldenCase(name, entry["component"], entry["profile"], entry["config"], entry["seed"],
                              tuple(entry["tags"]), root / entry["file"], entry))
    return out


def load(name: str, dtype: torch.dtype | None = None, device: str | torch.device = "cpu",
         root: Path = GOLDEN_DIR) -> tuple[Any, Any]:
    """``(inputs, outputs)`` of the named fixture (see :meth:`GoldenCase.load`)."""
    found = [c for c in cases(root=root) if c.name == name]
    if not found:
        raise FixtureError(f"{root / 'MANIFEST.json'}: no fixture named {name!r}")
    return found[0].load(dtype=dtype, device=device)
