"""``python -m golden diff [REF]``: which fixtures moved between a git revision and the working tree, and by
how much, as the text a reviewer reads beside a change of the reference.

A fixture file is binary, so ``git diff`` says only that it changed. This compares, per case, every stored
tensor of the revision's file with the working tree's: inputs bit for bit, outputs with the figures of
``python -m golden check`` (the largest absolute and relative change, ULPs of the tensor's scale, or of the
gradient's for ``out.grad.*``, and ULPs of the element), integer outputs by how many values changed. Cases
added or removed, and a changed case record (component, profile, config, seed, tags), are listed too.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path
from typing import Any

from safetensors.torch import load as st_load

from .compare import Difference, compare_exact, compare_outputs
from .store import FixtureError


class DiffError(Exception):
    """The revision or the fixtures could not be read (not a git checkout, an unknown ref)."""


def _git(root: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        raise DiffError(f"git {' '.join(args)}: {err}") from None
    if done.returncode != 0:
        raise DiffError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _at_ref(root: Path, ref: str, relative: str) -> bytes | None:
    """A file of the fixture directory at ``ref`` (None where it did not exist)."""
    top = Path(_git(root, "rev-parse", "--show-toplevel").decode().strip())
    path = (root.resolve() / relative).relative_to(top.resolve()).as_posix()
    try:
        return _git(root, "show", f"{ref}:{path}")
    except DiffError as err:
        if "exists on disk, but not in" in str(err) or "does not exist in" in str(err):
            return None
        raise


def _case_json(data: bytes) -> dict[str, Any]:
    """The case record in a safetensors file's metadata: an 8-byte little-endian header length, then the
    JSON header, whose ``__metadata__`` holds it (the safetensors format)."""
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + length])
    return json.loads(header.get("__metadata__", {}).get("case", "{}"))


def fixture_diff(root: Path, ref: str = "HEAD") -> list[Difference]:
    """Every difference between the fixtures at ``ref`` and those in ``root`` (module docstring)."""
    _git(root, "rev-parse", "--verify", f"{ref}^{{commit}}")
    old_manifest_bytes = _at_ref(root, ref, "MANIFEST.json")
    old = json.loads(old_manifest_bytes)["cases"] if old_manifest_bytes else {}
    try:
        new = json.loads((root / "MANIFEST.json").read_text())["cases"]
    except (OSError, json.JSONDecodeError, KeyError) as err:
        raise DiffError(f"{root / 'MANIFEST.json'}: {err}") from None
    out: list[Difference] = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            out.append(Difference(name, "", "removed", detail=f"at {ref}, not in the working tree"))
            continue
        if name not in old:
            out.append(Difference(name, "", "added", detail=f"not at {ref}"))
            continue
        if old[name].get("sha256") == new[name].get("sha256"):
            continue
        before = _at_ref(root, ref, old[name]["file"])
        path = root / new[name]["file"]
        if before is None or not path.is_file():
            out.append(Difference(name, "", "missing", detail="a fixture file listed in a manifest is absent"))
            continue
        after = path.read_bytes()
        try:
            old_t, new_t = st_load(before), st_load(after)
        except Exception as err:  # noqa: BLE001 - safetensors raises its own error types for damaged files
            raise FixtureError(f"{name}: a fixture file cannot be read: {err}") from None
        old_json, new_json = _case_json(before), _case_json(after)
        for field in ("component", "profile", "config", "seed", "tags"):
            if old_json.get(field) != new_json.get(field):
                out.append(Difference(name, "", "metadata",
                                      detail=f"{field}: {old_json.get(field)!r} -> {new_json.get(field)!r}"))
        out += compare_exact(name, {k: v for k, v in new_t.items() if k.startswith("in.")},
                             {k: v for k, v in old_t.items() if k.startswith("in.")})
        component = new_json.get("component", "")
        moved = compare_outputs(name, component, {k: v for k, v in new_t.items() if k.startswith("out.")},
                                {k: v for k, v in old_t.items() if k.startswith("out.")}, normwise_ulps=0.0)
        # compare_outputs words its detail as a budget; here every change is listed, so only the scale is said.
        out += [dataclasses.replace(d, detail=d.detail.replace("budget 0 ULPs of ", "")) for d in moved]
    return out
