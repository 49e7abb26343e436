"""``report.html`` of a fleet run: one self-contained page (inline SVG timelines, base64 JPEG
thumbnails, a few lines of vanilla JS to sort and filter the fleet table; no network)."""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections import Counter
from pathlib import Path
from typing import Any

from hirqa_ros.bag.frames import read_frames_csv
from hirqa_ros.files import atomic_write_bytes

REPORT_FILE = "report.html"
MAX_BINS = 400  # timeline points per camera (longer cameras are binned: lowest score per bin)
THUMBS_PER_FAMILY = 8
OPEN_TIMELINES = 12  # bags whose timelines are shown expanded (the rest are one click away)
REJECTED = "#d62728"

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:20px;color:#222;max-width:1400px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.partial{background:#fde2e1;border:1px solid #d62728;padding:8px;margin:8px 0}
table{border-collapse:collapse}
td,th{padding:3px 6px;border-bottom:1px solid #eee;text-align:left;vertical-align:top} #fleet{font-size:13px}
td.nw{white-space:nowrap} td.note{min-width:180px;max-width:360px;font-size:12px;overflow-wrap:anywhere}
table.sortable th{cursor:pointer;background:#f4f4f4;position:sticky;top:0} th:hover{background:#e8e8e8}
td.n{text-align:right;font-variant-numeric:tabular-nums} tr.failed td{color:#a00} tr.left td{color:#888}
.chip{display:inline-block;padding:0 6px;margin:1px;border-radius:8px;color:#fff;font-size:12px;
white-space:nowrap}
.kv td:first-child{color:#666}
figure{display:inline-block;margin:4px;font-size:11px;width:200px;vertical-align:top}
figure img{width:192px;border:1px solid #ccc} details{margin:6px 0} summary{cursor:pointer;font-weight:600}
svg{background:#fafafa;border:1px solid #e4e4e4}
"""

_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, i) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var dir = th.dataset.dir === 'asc' ? -1 : 1;
      th.dataset.dir = dir === 1 ? 'asc' : 'desc';
      rows.sort(function (a, b) {
        var x = a.cells[i] ? a.cells[i].dataset.v : '', y = b.cells[i] ? b.cells[i].dataset.v : '';
        var nx = parseFloat(x), ny = parseFloat(y);
        if (isNaN(nx) || isNaN(ny)) { return String(x).localeCompare(String(y)) * dir; }
        return (nx - ny) * dir;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
var filter = document.getElementById('filter');
if (filter) {
  filter.addEventListener('input', function () {
    var q = filter.value.toLowerCase();
    document.querySelectorAll('#fleet tbody tr').forEach(function (r) {
      r.style.display = r.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none';
    });
  });
}
"""


def fault_color(fault: str | None) -> str:
    """Hex colour of a fault family, the same as the PNG timelines' (red: rejected without a class)."""
    from matplotlib.colors import to_hex

    from hirqa_ros.bag.plots import FAULT_COLORS

    c = FAULT_COLORS.get(fault or "")
    return to_hex(c) if c else REJECTED


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _num(v: Any, fmt: str = "{:.3f}") -> tuple[str, str]:
    """(sort value, text) of a number that may be missing."""
    return ("-1", "-") if v is None else (repr(float(v)), fmt.format(v))


def _cell(v: str, text: str, cls: str = "") -> str:
    return f'<td{f" class={cls}" if cls else ""} data-v="{_e(v)}">{text}</td>'


def _chips(counts: dict[str, int]) -> str:
    return "".join(f'<span class="chip" style="background:{fault_color(f)}">{_e(f)} {n}</span>'
                   for f, n in counts.items())


def fleet_table(bags: list[dict[str, Any]]) -> str:
    """The sortable table: one row per bag and camera (one row for a bag without a result)."""
    head = ["bag", "camera", "status", "frames", "scored", "rejected", "fault families", "dominant fault",
            "median score", "worst stretch", "AUROC", "notes"]
    rows = []
    for b in bags:
        link = f'<a href="#bag-{_e(b["name"])}">{_e(b["name"])}</a>'
        cams = b.get("cameras") or {}
        if not cams:
            empty = "".join(_cell("-1", "-", "n") for _ in range(8))
            err = b.get("error", "")
            short = err if len(err) <= 200 else err[:200] + "..."
            rows.append(f'<tr class="{_e(b["status"])}">{_cell(b["name"], link, "nw")}{_cell("", "-")}'
                        f'{_cell(b["status"], _e(b["status"]))}{empty}'
                        f'<td class="note" data-v="{_e(err)}" title="{_e(err)}">{_e(short)}</td></tr>')
            continue
        n_problems = len(b.get("problems") or [])
        notes = _cell(str(n_problems), f"{n_problems} problem(s)" if n_problems else "")
        for cam, c in cams.items():
            rej = c.get("rejected_fraction")
            ws = (c.get("worst_stretches") or [None])[0]
            ws_text = "-" if not ws else (f'{ws["frames"]} frames at {ws["start_s"]:.1f}-{ws["end_s"]:.1f} s'
                                          + (f' ({_e(ws["fault"])})' if ws.get("fault") else ""))
            auroc = (c.get("labels") or {}).get("auroc")
            faults = c.get("rejected_by_fault") or {}
            rows.append(
                f'<tr class="{_e(b["status"])}">{_cell(b["name"], link, "nw")}{_cell(cam, _e(cam))}'
                f'{_cell(b["status"], _e(b["status"]))}'
                f'{_cell(str(c.get("frames", 0)), str(c.get("frames", 0)), "n")}'
                f'{_cell(str(c.get("scored", 0)), str(c.get("scored", 0)), "n")}'
                f'{_cell(*_num(rej, "{:.1%}"), "n")}'
                f'{_cell(str(sum(faults.values())), _chips(faults))}'
                f'{_cell(c.get("dominant_fault") or "", _e(c.get("dominant_fault") or "-"))}'
                f'{_cell(*_num(c.get("score_p50")), "n")}'
                f'{_cell(str(ws["frames"] if ws else 0), ws_text)}{_cell(*_num(auroc), "n")}'
                f'{notes}</tr>')
    ths = "".join(f"<th>{_e(h)}</th>" for h in head)
    return (f'<p><input id="filter" placeholder="filter rows (bag, camera, fault...)" size="40"> '
            f'click a column to sort</p><table id="fleet" class="sortable"><thead><tr>{ths}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _bins(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows (one camera, bag order) grouped into at most :data:`MAX_BINS` time bins."""
    t0, t1 = rows[0]["bag_time_ns"], rows[-1]["bag_time_ns"]
    n = min(MAX_BINS, len(rows))
    span = max(t1 - t0, 1)
    bins: list[dict[str, Any]] = [{"scores": [], "faults": Counter(), "errors": 0} for _ in range(n)]
    for r in rows:
        b = bins[min(n - 1, int((r["bag_time_ns"] - t0) * n / (span + 1)))]
        if r["score"] is not None:
            b["scores"].append(r["score"])
        if r["verdict"] == "drop":
            b["faults"][r["fault"] or "rejected"] += 1
        elif r["verdict"] == "error":
            b["errors"] += 1
    return bins


def timeline_svg(rows: list[dict[str, Any]], thresholds: dict[str, Any] | None, w: int = 900,
                 h: int = 120) -> str:
    """Score over time of one camera: rejected frames shaded in their fault family's colour,
    unscorable frames as grey ticks, warn/error thresholds dashed."""
    if not rows:
        return "<p>no frames</p>"
    bins = _bins(rows)
    n = len(bins)
    x0, pw, ph, top = 34, w - 44, h - 26, 6
    dur = (rows[-1]["bag_time_ns"] - rows[0]["bag_time_ns"]) / 1e9
    bw = pw / n
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img">']
    for i, b in enumerate(bins):
        if b["faults"]:
            color = fault_color(b["faults"].most_common(1)[0][0])
            parts.append(f'<rect x="{x0 + i * bw:.1f}" y="{top}" width="{max(bw, 1):.1f}" height="{ph}" '
                         f'fill="{color}" fill-opacity="0.28"/>')
        if b["errors"]:
            parts.append(f'<rect x="{x0 + i * bw:.1f}" y="{top + ph - 6}" width="{max(bw, 1):.1f}" '
                         'height="6" fill="#777"/>')
    for name, color in (("warn", "#ff7f0e"), ("error", REJECTED)):
        v = (thresholds or {}).get(name)
        if v is not None:
            y = top + ph * (1 - v)
            parts.append(f'<line x1="{x0}" x2="{x0 + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="{color}" '
                         f'stroke-dasharray="4 3" stroke-width="1"/>')
    pts = [f"{x0 + (i + 0.5) * bw:.1f},{top + ph * (1 - min(b['scores'])):.1f}"
           for i, b in enumerate(bins) if b["scores"]]
    if pts:
        parts.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="#1f77b4" stroke-width="1.3"/>')
    parts.append(f'<line x1="{x0}" x2="{x0}" y1="{top}" y2="{top + ph}" stroke="#999"/>')
    for v in (0, 0.5, 1):
        parts.append(f'<text x="{x0 - 4}" y="{top + ph * (1 - v) + 4:.1f}" font-size="10" '
                     f'text-anchor="end">{v:g}</text>')
    parts.append(f'<text x="{x0}" y="{h - 4}" font-size="10">0 s</text>'
                 f'<text x="{x0 + pw}" y="{h - 4}" font-size="10" text-anchor="end">{dur:.1f} s</text>')
    parts.append("</svg>")
    return "".join(parts)


def _timelines(bags: list[dict[str, Any]]) -> str:
    out = []
    for i, b in enumerate(bags):
        head = (f'<summary id="bag-{_e(b["name"])}">{_e(b["name"])} '
                f'<small>({_e(b["status"])}, {_e(b["path"])})</small></summary>')
        body = []
        if b.get("dir") and Path(b["dir"], "frames.csv").is_file():
            rows = read_frames_csv(Path(b["dir"]) / "frames.csv")
            for cam in b.get("cameras") or {}:
                cam_rows = [r for r in rows if r["topic"] == cam]
                body.append(f"<div><b>{_e(cam)}</b><br>{timeline_svg(cam_rows, b.get('thresholds'))}</div>")
            for p in b.get("problems") or []:
                body.append(f"<div><small>problem: {_e(p)}</small></div>")
        elif b.get("error"):
            body.append(f"<p>{_e(b['error'])}</p>")
        out.append(f"<details{' open' if i < OPEN_TIMELINES else ''}>{head}{''.join(body)}</details>")
    return "".join(out)


def _thumbs(bags: list[dict[str, Any]]) -> str:
    fams: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for b in bags:
        for t in b.get("thumbs") or []:
            fams.setdefault(t["fault"], []).append((b, t))
    if not fams:
        return "<p>no rejected frames</p>"
    out = []
    for fam in sorted(fams):
        items = sorted(fams[fam], key=lambda bt: bt[1]["score"])[:THUMBS_PER_FAMILY]
        figs = []
        for b, t in items:
            f = Path(b["dir"]) / t["file"]
            if not f.is_file():
                continue
            data = base64.b64encode(f.read_bytes()).decode()
            conf = "" if t.get("fault_confidence") is None else f', p={t["fault_confidence"]:.2f}'
            figs.append(f'<figure><img alt="{_e(fam)}" src="data:image/jpeg;base64,{data}"><figcaption>'
                        f'{_e(b["name"])} {_e(t["topic"])}<br>score {t["score"]:.3f} ({_e(t["level"])}{conf})'
                        f"</figcaption></figure>")
        out.append(f'<h3><span class="chip" style="background:{fault_color(fam)}">{_e(fam)}</span> '
                   f'{len(fams[fam])} worst frames kept, lowest {len(figs)} shown</h3>{"".join(figs)}')
    return "".join(out)


def _kv(d: dict[str, Any]) -> str:
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in d.items())
    return f'<table class="kv">{rows}</table>'


def render(summary: dict[str, Any]) -> str:
    """The page for a ``fleet.json`` summary (its bags' result folders supply rows and thumbnails)."""
    bags = summary.get("bags", [])
    tot = summary.get("totals", {})
    run = summary.get("run", {})
    banner = ""
    left, failed = summary.get("left", []), summary.get("failed", [])
    if left:
        banner += (f'<div class="partial">PARTIAL: {len(left)} bag(s) not evaluated yet '
                   f'({_e(", ".join(left[:20]))}); run the same command again to finish them.</div>')
    if failed:
        banner += (f'<div class="partial">{len(failed)} bag(s) failed ({_e(", ".join(failed[:20]))}); '
                   "see the table.</div>")
    model = summary.get("model", {})
    rej = tot.get("rejected_fraction")
    by_status = ", ".join(f"{k} {v}" for k, v in (tot.get("by_status") or {}).items())
    overview = {"bags": f'{tot.get("bags", 0)} ({by_status})',
                "cameras": tot.get("cameras", 0), "frames": tot.get("frames", 0),
                "rejected": f'{tot.get("rejected", 0)} ({"-" if rej is None else f"{rej:.1%}"})',
                "recorded time": f'{tot.get("bag_duration_s", 0):.1f} s',
                "this run": f'{run.get("bags_evaluated", 0)} bag(s) evaluated in '
                            f'{run.get("wall_time_s", 0):.1f} s'}
    model_kv = {"model": model.get("name"), "model dir": model.get("dir"),
                "card sha256": model.get("card_sha256")}
    legend = _chips({f: 0 for f in (tot.get("rejected_by_fault") or {})}).replace(" 0<", "<")
    opts = {k: v for k, v in (summary.get("options") or {}).items() if v not in (None, [], "")}
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>hirqa fleet report</title>"
        f"<style>{_CSS}</style></head><body><h1>hirqa fleet report</h1>"
        f"<div>generated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC}</div>{banner}"
        f"<h2>Overview</h2>{_kv(overview)}<p>fault families: {legend or '-'}</p>"
        f"<h2>Fleet</h2>{fleet_table(bags)}"
        "<h2>Timelines</h2><p>score over time per camera (lowest score per time bin); shaded: rejected "
        f"frames, coloured by fault family ({legend or 'none'}); grey ticks: frames that could not be "
        f"scored; dashed: warn/error thresholds</p>{_timelines(bags)}"
        f"<h2>Worst frames per fault family</h2>{_thumbs(bags)}"
        f"<h2>Model and options</h2>{_kv(model_kv)}"
        f"{_kv(opts)}{_kv(summary.get('engine') or {})}"
        f"<script>{_JS}</script></body></html>\n")


def write_report(out: Path, summary: dict[str, Any]) -> Path:
    """Write ``out/report.html`` atomically."""
    path = out / REPORT_FILE
    atomic_write_bytes(path, render(summary).encode())
    return path
