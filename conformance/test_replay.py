"""Re-run saved failing examples: `pytest conformance --impl=NAME --conformance-replay=PATH`.

Collected only when --conformance-replay is given (the plugin deselects it otherwise)."""

from __future__ import annotations

from pathlib import Path


def test_replay(detconf, request, replay_path):
    from conformance.runner import check, load_failure
    component, inputs, config, profile = load_failure(Path(replay_path))
    check(detconf.adapter, component, inputs, config, profile, device=detconf.device, dtype=detconf.dtype,
          label=f"replay {replay_path}", record=detconf.recorder(request))
