"""The adapter example of docs/conformance.md works exactly as written."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"


def test_adapter_example_runs(pytester, monkeypatch):
    text = DOC.read_text()
    code = re.search(r"```python\n(# my_adapter.py\n.*?)```", text, re.S).group(1)
    command = re.search(r"```bash\n(PYTHONPATH=\. pytest conformance --impl=py:my_adapter:make_adapter .*?)\n```",
                        text, re.S).group(1)
    pytester.makepyfile(my_adapter=code)
    monkeypatch.syspath_prepend(str(pytester.path))
    args = command.split()[2:]  # drop "PYTHONPATH=." and "pytest"
    args = [str(Path(__file__).resolve().parents[2] / "conformance") if a == "conformance" else a for a in args]
    previous = settings.get_current_profile_name()
    try:
        result = pytester.runpytest_inprocess(*args, "-p", "no:cacheprovider", "--hypothesis-profile=dev",
                                              "--conformance-report=my.json")
    finally:
        settings.load_profile(previous)
    assert result.ret == 0, result.stdout.str()[-3000:]
    report = json.loads((pytester.path / "my.json").read_text())
    outcomes = {t["test"].split("::")[1]: t["outcome"] for t in report["tests"]}
    assert outcomes["test_golden[boxes.overlap/giou-detr-pairwise]"] == "passed"
    assert outcomes["test_overlap_generated[detr-giou]"] == "passed"
    assert outcomes["test_golden[boxes.overlap/iou-detr-pairwise]"] == "not provided"
    assert (pytester.path / "my.md").is_file()
