"""docs/ci-gate.md works as written: its loss package, built from the doc's blocks in a temporary directory
and installed, is found by its entry point, and the doc's gate command passes with its reports; the
workflow and the tox env run that same command."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

DOC = Path(__file__).resolve().parents[2] / "docs" / "ci-gate.md"


def _block(text: str, language: str, first_line: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", text, re.S)
    found = [b for b in blocks if b.startswith(first_line)]
    assert len(found) == 1, f"{DOC}: one ```{language} block starting with {first_line!r}"
    return found[0]


def _gate_command(text: str) -> str:
    [command] = [line for line in _block(text, "bash", "CI=1 pytest --pyargs conformance").splitlines() if line]
    return command


def test_the_gate_passes_on_the_documented_package(tmp_path):
    text = DOC.read_text()
    package = tmp_path / "mylosses-src"
    (package / "mylosses").mkdir(parents=True)
    (package / "mylosses" / "__init__.py").write_text("")
    for name in ("mylosses/giou.py", "mylosses/detconf_adapter.py"):
        (package / name).write_text(_block(text, "python", f"# {name}"))
    (package / "pyproject.toml").write_text(_block(text, "toml", "# pyproject.toml"))
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                              "--target", str(site), str(package)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-3000:]
    command = _gate_command(text)
    env_assignments, args = command.split(" pytest ", 1)
    env = {**os.environ, **dict(a.split("=", 1) for a in env_assignments.split()),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    workdir = tmp_path / "project"
    workdir.mkdir()
    done = subprocess.run([sys.executable, "-m", "pytest", *shlex.split(args), "-k", "overlap"], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    report = json.loads((workdir / "reports" / "conformance.json").read_text())
    assert report["header"]["impl"] == "mylosses"
    outcomes = {t["test"].split("::")[1]: t["outcome"] for t in report["tests"]}
    assert outcomes["test_golden[boxes.overlap/giou-detr-pairwise]"] == "passed"
    assert outcomes["test_golden[boxes.overlap/iou-detr-pairwise]"] == "not provided"
    assert (workdir / "reports" / "conformance.md").is_file()


def test_the_workflow_and_the_tox_env_run_the_same_gate():
    text = DOC.read_text()
    command = _gate_command(text).removeprefix("CI=1 ")
    workflow = yaml.safe_load(_block(text, "yaml", "# .github/workflows/detconf.yml"))
    runs = [step["run"] for step in workflow["jobs"]["conformance"]["steps"] if "run" in step]
    assert f"CI=1 {command}" in runs
    uploads = [s for s in workflow["jobs"]["conformance"]["steps"] if s.get("uses", "").startswith("actions/upload")]
    assert uploads and uploads[0]["with"]["path"] == "reports/" and uploads[0]["if"] == "always()"
    tox = _block(text, "ini", "# tox.ini")
    assert "set_env = CI = 1" in tox
    assert command.replace("reports/", "{tox_root}/reports/") in tox
