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


def test_memory_shows_the_reference_and_the_fastest_implementation_under_both_allocator_settings():
    results = {"benchmarks": [_bench("w", "oracle", "float64", 0.9), _bench("w", "mmdet", "float32", 0.3),
                              _bench("w", "ultralytics", "float32", 0.2)]}
    memory = {"w": {"oracle": {"peak_mib": 250.4, "peak_mib_default_malloc": 400.0},
                    "ultralytics": {"peak_mib": 100.0, "peak_mib_default_malloc": 120.0},
                    "mmdet": {"peak_mib": 50.0, "peak_mib_default_malloc": 60.0}}}
    row = next(line for line in table(results, memory).splitlines() if line.startswith("| `w`"))
    # against ultralytics, the fastest in time (not mmdet, the smallest in memory)
    assert row.strip("|").split("|")[-1].strip() == "250 / 100 MiB (400 / 120)"
    memory["w"]["oracle"].pop("peak_mib_default_malloc")
    row = next(line for line in table(results, memory).splitlines() if line.startswith("| `w`"))
    assert row.strip("|").split("|")[-1].strip() == "250 / 100 MiB"
