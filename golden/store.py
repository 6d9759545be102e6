"""Fixture files and the manifest (DESIGN §5).

One safetensors file per case, ``golden/data/<component>/<case>.safetensors``, holding tensors named
``in.<path>`` and ``out.<path>`` (nested mappings and lists flattened with dots:
``in.targets.0.boxes``) and, as its only metadata entry ``case``, the case's JSON. ``MANIFEST.json``
records, per case, the file, its sha256, component, profile, tags and every tensor's dtype and
shape, plus the versions that wrote it. Loading verifies all of these; a missing, truncated or
tampered file is a :class:`FixtureError` naming the file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

GOLDEN_DIR = Path(__file__).resolve().parent
DATA_DIR = GOLDEN_DIR / "data"
MANIFEST_PATH = GOLDEN_DIR / "MANIFEST.json"


class FixtureError(Exception):
    """A fixture file or the manifest is missing, damaged or inconsistent."""


@dataclass(frozen=True)
class CaseRecord:
    """A case's identity, as its JSON and the manifest record it."""

    name: str
    component: str
    profile: str
    config: Mapping[str, Any]
    seed: int
    tags: tuple[str, ...]


# --------------------------------------------------------------------------- nesting

def flatten(tree: Any, prefix: str) -> dict[str, torch.Tensor]:
    """Nested mappings/lists of tensors -> ``{"prefix.a.0.b": tensor}``. Keys may not contain dots."""
    out: dict[str, torch.Tensor] = {}
    if isinstance(tree, torch.Tensor):
        out[prefix] = tree.detach().contiguous()
    elif isinstance(tree, Mapping):
        for key, value in tree.items():
            if "." in str(key):
                raise ValueError(f"{prefix}: key {key!r} contains a dot")
            out.update(flatten(value, f"{prefix}.{key}"))
    elif isinstance(tree, (list, tuple)):
        for i, value in enumerate(tree):
            out.update(flatten(value, f"{prefix}.{i}"))
    else:
        raise TypeError(f"{prefix}: expected tensors, mappings or lists, got {type(tree).__name__}")
    return out


def unflatten(flat: Mapping[str, torch.Tensor], prefix: str) -> Any:
    """Inverse of :func:`flatten` for the names under ``prefix``; all-digit levels become lists."""
    root: dict = {}
    for name, tensor in flat.items():
        if not name.startswith(prefix + "."):
            continue
        parts = name[len(prefix) + 1:].split(".")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = tensor
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[str(i)] for i in range(len(converted))]
    return converted


# --------------------------------------------------------------------------- files

def encode(tensors: Mapping[str, torch.Tensor], case_json: Mapping[str, Any]) -> bytes:
    """The safetensors bytes of a case. Deterministic: sorted JSON, one metadata entry."""
    return st_save(dict(tensors), metadata={"case": json.dumps(case_json, sort_keys=True)})


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tensor_specs(tensors: Mapping[str, torch.Tensor]) -> dict[str, list]:
    """``{name: [dtype, shape]}`` as the manifest records it."""
    return {name: [str(t.dtype).removeprefix("torch."), list(t.shape)] for name, t in sorted(tensors.items())}


def read_case_file(path: Path, entry: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and case JSON of a fixture, verified against its manifest entry."""
    if not path.is_file():
        raise FixtureError(f"{path}: fixture file is missing (listed in MANIFEST.json); "
                           "run `python -m golden regenerate`")
    data = path.read_bytes()
    digest = sha256(data)
    if digest != entry["sha256"]:
        raise FixtureError(f"{path}: sha256 {digest} does not match MANIFEST.json ({entry['sha256']}); the file is "
                           f"damaged or was edited by hand")
    try:
        tensors = st_load(data)
        from safetensors import safe_open  # metadata needs the file API
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise FixtureError(f"{path}: not a readable safetensors file ({err})") from None
    if "case" not in metadata:
        raise FixtureError(f"{path}: no 'case' metadata")
    specs = tensor_specs(tensors)
    if specs != entry["tensors"]:
        raise FixtureError(f"{path}: tensor names, dtypes or shapes differ from MANIFEST.json")
    return tensors, json.loads(metadata["case"])


def read_manifest(path: Path = MANIFEST_PATH) -> dict[str, Any]:
    if not path.is_file():
        raise FixtureError(f"{path}: manifest is missing; run `python -m golden regenerate`")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise FixtureError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("cases"), dict):
        raise FixtureError(f"{path}: expected an object with a 'cases' mapping")
    return manifest


def write_manifest(manifest: Mapping[str, Any], path: Path = MANIFEST_PATH) -> None:
    path.write_text(json.dumps(manifest, sort_keys=True, indent=1) + "\n")
