"""The conformance report as one self-contained HTML page (``--conformance-report=report.html``): no script,
no style sheet, font or image from elsewhere, so it opens from a CI artifact without a server or a network.

Sections, in this order: the run (implementation, dtype, device, versions, the golden manifest, outcomes);
the failures first, each with what differed; then per component its counts and two plots drawn as inline
SVG from the tests' worst figures: the worst absolute error against the magnitude it was measured at
(log-log, one mark per test, failures in red), and the distribution of the worst error in ULPs of the run's
dtype (log2 bins); then the expected failures with their reasons, and what was not provided and why.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from typing import Any

OUTCOME_COLOURS = {"passed": "#2b8a3e", "failed": "#c92a2a", "xfailed": "#e67700", "xpassed": "#862e9c"}
WIDTH, HEIGHT, MARGIN = 360, 200, 36


def _e(value: Any) -> str:
    return html.escape(str(value))


def _axes(title_x: str, title_y: str) -> list[str]:
    right, bottom = WIDTH - 8, HEIGHT - MARGIN
    return [f'<line x1="{MARGIN}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#444"/>',
            f'<line x1="{MARGIN}" y1="8" x2="{MARGIN}" y2="{bottom}" stroke="#444"/>',
            f'<text x="{(MARGIN + right) / 2}" y="{HEIGHT - 6}" font-size="11" text-anchor="middle">'
            f'{_e(title_x)}</text>',
            f'<text x="12" y="{(8 + bottom) / 2}" font-size="11" text-anchor="middle" '
            f'transform="rotate(-90 12 {(8 + bottom) / 2})">{_e(title_y)}</text>']


def _scale(values: list[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    return (lo - 0.5, hi + 0.5) if hi - lo < 1e-9 else (lo, hi)


def error_against_magnitude(tests: list[dict]) -> str:
    """SVG: log10 worst absolute error against log10 of the magnitude it was measured at, per test."""
    points = []
    for t in tests:
        max_abs, max_rel = t.get("max_abs", 0.0), t.get("max_rel", 0.0)
        if max_abs > 0 and max_rel > 0 and math.isfinite(max_abs) and math.isfinite(max_rel):
            points.append((math.log10(max_abs / max_rel), math.log10(max_abs), t["outcome"], t["test"]))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
             f'class="error-vs-magnitude">', *_axes("log10 magnitude", "log10 worst abs. error")]
    if points:
        (x0, x1), (y0, y1) = _scale([p[0] for p in points]), _scale([p[1] for p in points])
        for x, y, outcome, test in points:
            px = MARGIN + (x - x0) / (x1 - x0) * (WIDTH - 8 - MARGIN)
            py = HEIGHT - MARGIN - (y - y0) / (y1 - y0) * (HEIGHT - MARGIN - 8)
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{OUTCOME_COLOURS.get(outcome, "#868e96")}">'
                         f'<title>{_e(test)}: {outcome}, magnitude 1e{x:.2f}, error 1e{y:.2f}</title></circle>')
        parts.append(f'<text x="{MARGIN}" y="{HEIGHT - MARGIN + 12}" font-size="9">{x0:.1f}</text>')
        parts.append(f'<text x="{WIDTH - 8}" y="{HEIGHT - MARGIN + 12}" font-size="9" text-anchor="end">'
                     f'{x1:.1f}</text>')
    else:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" font-size="11" text-anchor="middle">'
                     'no nonzero error</text>')
    return "".join(parts) + "</svg>"


def ulps_histogram(tests: list[dict]) -> str:
    """SVG: how many tests had their worst error in each log2 bin of ULPs of the run's dtype (bin 0: exact)."""
    bins: dict[int, int] = defaultdict(int)
    for t in tests:
        ulps = t.get("ulps", 0.0)
        if not math.isfinite(ulps):
            bins[99] += 1
        else:
            bins[0 if ulps <= 0 else max(1, math.ceil(math.log2(ulps)) + 1)] += 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
             f'class="ulps-histogram">', *_axes("worst error, ULPs (log2 bins; 0 = exact)", "tests")]
    if bins:
        keys = sorted(bins)
        top, bar = max(bins.values()), (WIDTH - 8 - MARGIN) / len(keys)
        for i, k in enumerate(keys):
            h = bins[k] / top * (HEIGHT - MARGIN - 16)
            label = "0" if k == 0 else ("inf" if k == 99 else f"<=2^{k - 1}")
            x = MARGIN + i * bar
            parts.append(f'<rect x="{x + 1:.1f}" y="{HEIGHT - MARGIN - h:.1f}" width="{bar - 2:.1f}" height="{h:.1f}" '
                         f'fill="#1c7ed6"><title>{label} ULPs: {bins[k]} tests</title></rect>')
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{HEIGHT - MARGIN + 12}" font-size="9" '
                         f'text-anchor="middle">{label}</text>')
    return "".join(parts) + "</svg>"


def html_report(report: dict[str, Any]) -> str:
    """The report as a self-contained HTML page (module docstring)."""
    h = report["header"]
    tests = report["tests"]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>detconf conformance: {_e(h['impl'])} {_e(h['version'])}</title>",
           "<style>body { font-family: sans-serif; max-width: 80em; } pre { white-space: pre-wrap; "
           "background: #f8f9fa; padding: 0.5em; } .component svg { margin-right: 1em; }</style></head><body>",
           f"<h1>detconf conformance report: {_e(h['impl'])} {_e(h['version'])}</h1>",
           '<section id="run"><h2>The run</h2><ul>',
           f"<li>profile {_e(h['profile'])}, {_e(h['dtype'])} on {_e(h['device'])}, TF32 "
           f"{'on' if h.get('tf32') else 'off'}, {h.get('world_size', 1)} rank(s)"
           f"{', autocast ' + _e(h['autocast']) if h.get('autocast') else ''}</li>",
           f"<li>torch {_e(h['torch'])} (CUDA {_e(h['cuda'])}), numpy {_e(h['numpy'])}, scipy {_e(h['scipy'])}, "
           f"python {_e(h['python'])}</li>",
           f"<li>detconf {_e(h.get('detconf'))} (commit {_e(h.get('commit'))}), golden manifest sha256 "
           f"{_e(h.get('manifest_sha256'))}, run at {_e(h.get('timestamp'))}</li>",
           "<li>outcomes: " + _e(", ".join(f"{n} {k}" for k, n in report.get("outcomes", {}).items()) or "none")
           + "</li></ul></section>"]
    failures = [t for t in tests if t["outcome"] in ("failed", "xpassed")]
    out.append(f'<section id="failures"><h2>Failures ({len(failures)})</h2>')
    for t in failures:
        out.append(f"<h3>{_e(t['test'])} [{_e(t.get('class', t['outcome']))}]</h3>"
                   f"<pre>{_e(t.get('message', t.get('reason', '')))}</pre>")
    out.append("</section>" if failures else "<p>None.</p></section>")
    out.append('<section id="components"><h2>Components</h2>')
    by_component: dict[str, list[dict]] = defaultdict(list)
    for t in tests:
        by_component[t.get("component", "?")].append(t)
    for component, row in report["components"].items():
        ran = [t for t in by_component.get(component, []) if t["outcome"] in ("passed", "failed", "xfailed", "xpassed")]
        counts = ", ".join(f"{row.get(k, 0)} {k}" for k in ("passed", "failed", "xfailed", "xpassed", "not provided"))
        out.append(f'<div class="component" id="{_e(component)}"><h3>{_e(component)}</h3><p>{_e(counts)}; worst '
                   f"relative error {row['worst_rel']:.3g} ({row['worst_ulps']:.3g} ULPs) in "
                   f"{_e(row['worst_case'])}</p>{error_against_magnitude(ran)}{ulps_histogram(ran)}</div>")
    out.append("</section>")
    expected = [t for t in tests if t["outcome"] == "xfailed"]
    out.append(f'<section id="expected"><h2>Expected failures ({len(expected)})</h2><ul>')
    out += [f"<li>{_e(t['test'])}: {_e(t.get('reason', ''))}</li>" for t in expected]
    out.append("</ul></section>")
    reasons = sorted({t.get("reason", "") for t in tests if t["outcome"] == "not provided"})
    out.append(f'<section id="not-provided"><h2>Not provided ({len(reasons)} reasons)</h2><ul>')
    out += [f"<li>{_e(r)}</li>" for r in reasons]
    out.append("</ul></section></body></html>")
    return "\n".join(out) + "\n"
