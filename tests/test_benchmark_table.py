"""The README benchmark table (benchmarks/table.py) from a pytest-benchmark JSON: ratios as the issue defines them."""

from __future__ import annotations

from benchmarks.table import table


def _bench(group: str, impl: str, dtype: str, median: float) -> dict:
    return {"group": group, "stats": {"median": median},
            "extra_info": {"impl": impl, "version": "1.0" if impl != "oracle" else "-", "dtype": dtype}}


def test_ratios_against_the_fastest_float32_and_float64_implementation():
    results = {"benchmarks": [_bench("w", "oracle", "float64", 0.9), _bench("w", "mmdet", "float32", 0.3),
                              _bench("w", "ultralytics", "float32", 0.2), _bench("w", "mmdet", "float64", 0.6),
                              _bench("w", "ultralytics", "float64", 0.45)],
               "machine_info": {"cpu": {"brand_raw": "cpu", "count": 2}}}
    row = next(line for line in table(results).splitlines() if line.startswith("| `w`"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # reference, ultralytics (float32), mmdet (float32), ratio over the fastest float32 (ultralytics, 0.2 s),
    # the fastest float64 run (ultralytics, 0.45 s) and the ratio over it
    assert cells == ["`w`", "900 ms", "200 ms", "300 ms", "4.50", "450 ms (ultralytics)", "2.00"]


def test_without_float64_runs_the_table_keeps_its_columns():
    results = {"benchmarks": [_bench("w", "oracle", "float64", 0.9), _bench("w", "mmdet", "float32", 0.3)]}
    header = table(results).splitlines()[0]
    assert "float64" not in header.replace("reference (float64)", "")
