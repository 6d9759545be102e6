"""The benchmark suite's own option: ``--device`` of the implementations (the reference stays on the CPU).

The conformance plugin registers its options only in sessions that run the conformance suite, so
``pytest benchmarks --device=cuda`` needs its own; a session that runs both shares the plugin's."""

from __future__ import annotations

import pytest

from conformance.plugin import SUITE_OPTIONS


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    if not pluginmanager.has_plugin(SUITE_OPTIONS):
        parser.addoption("--device", default="cpu", choices=("cpu", "cuda"),
                         help="device of the implementations under benchmark (default cpu)")
