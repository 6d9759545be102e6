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

    def load(self, dtype: torch.dtype | None = None, device: str | torch.device = "cpu",
             verify: bool = False) -> tuple[Any, Any]:
        """``(inputs, outputs)`` as nested dicts/lists of tensors, verified against the manifest: the file's
        sha256, tensor names, dtypes and shapes, and the case's identity (name, component, profile, config,
        seed, tags: the manifest's against the file's own JSON, which the sha256 covers). With ``verify``,
        also the stored outputs against the reference run on the stored inputs (the drift policy): a fixture
        whose outputs were replaced is a :class:`FixtureError`, not a verdict on an implementation.

        Floating tensors are cast to ``dtype`` when given (integer and boolean tensors keep theirs)
        and every tensor is moved to ``device``.
        """
        tensors, case_json = read_case_file(self.path, self.entry)
        if case_json.get("name") != self.name:
            raise FixtureError(f"{self.path}: its metadata names case {case_json.get('name')!r}, not {self.name!r}")
        for name in IDENTITY:
            listed = list(getattr(self, name)) if name == "tags" else getattr(self, name)
            if case_json.get(name) != listed:
                raise FixtureError(f"case {self.name!r}: MANIFEST.json's {name} {listed!r} is not the fixture's own "
                                   f"{case_json.get(name)!r} ({self.path}); the manifest was edited by hand")
        if verify:
            from .compare import format_table, reference_differences
            moved = reference_differences(self.name, self.component, self.config, self.profile, tensors)
            if moved:
                raise FixtureError(f"case {self.name!r}: its stored outputs are not the reference's on its stored "
                                   f"inputs ({self.path}; python -m golden check):\n{format_table(moved)}")

        def convert(t: torch.Tensor) -> torch.Tensor:
            if dtype is not None and t.dtype.is_floating_point:
                t = t.to(dtype)
            return t.to(device)
        converted = {k: convert(v) for k, v in tensors.items()}
        return unflatten(converted, "in"), unflatten(converted, "out")


#: The fields of a case's identity, in the manifest and in the fixture's own JSON.
IDENTITY = ("component", "profile", "config", "seed", "tags")
_ENTRY_FIELDS = ("file", "sha256", "tensors", *IDENTITY)


def cases(component: str | None = None, *, profile: str | None = None, tag: str | None = None,
          pattern: str | None = None, root: Path = GOLDEN_DIR) -> list[GoldenCase]:
    """The fixtures of the manifest, optionally filtered by component, profile, tag and a name glob."""
    manifest = read_manifest(root / "MANIFEST.json")
    out = []
    for name, entry in sorted(manifest["cases"].items()):
        missing = [f for f in _ENTRY_FIELDS if f not in entry] if isinstance(entry, dict) else list(_ENTRY_FIELDS)
        if missing:
            raise FixtureError(f"{root / 'MANIFEST.json'}: case {name!r} lacks {', '.join(missing)}; run "
                               "`python -m golden check`, then `python -m golden regenerate --only` the case")
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
