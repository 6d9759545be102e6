"""Re-run saved failing examples: `pytest conformance --impl=NAME --conformance-replay=PATH`.

Collected only when --conformance-replay is given (the plugin deselects it otherwise)."""

from __future__ import annotations

from pathlib import Path


def test_replay(detconf, request, replay_path):
    detconf.check_replay(Path(replay_path), request)
