"""The project's own long commands, timed whole: ``python -m golden check`` and ``pytest conformance``
on the built-in reference with the ``ci`` hypothesis profile (what CI runs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import oracle

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "command: python -m golden check": [sys.executable, "-m", "golden", "check"],
    "command: pytest conformance (ci profile)": [sys.executable, "-m", "pytest", "conformance", "-q", "-p",
                                                 "no:cacheprovider", "--benchmark-disable"],
}


@pytest.mark.parametrize("name", COMMANDS)
def test_command(benchmark, name):
    env = {**os.environ, "CI": "1"}

    def run():
        proc = subprocess.run(COMMANDS[name], cwd=ROOT, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    benchmark.group = name
    benchmark.extra_info.update(impl="oracle", version=oracle.__version__, dtype="float64", device="cpu",
                                component="", doc=name)
    benchmark.pedantic(run, rounds=1, iterations=1)
