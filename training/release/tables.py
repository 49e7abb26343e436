"""The one metrics table of the model cards: a metric per distortion group (and per type), one
column per model or cue, the best of each row in bold (Markdown)."""

from __future__ import annotations

# the three metrics every card reports, with their table titles
METRICS = (
    ("auroc", "AUROC keep (level 0-1) vs drop (level >= 3)"),
    ("ladder_srocc", "ladder SROCC"),
    ("srocc", "SROCC pooled across content"),
)


def _row(label: str, values: list[float]) -> str:
    best = max(values)
    cells = [f"**{v:.3f}**" if v == best else f"{v:.3f}" for v in values]
    return f"| {label} | " + " | ".join(cells) + " |"


def metric_table(columns: dict[str, dict], metric: str, title: str, per_type: bool = False,
                 level: int = 4) -> list[str]:
    """Lines of a Markdown table of ``metric`` from protocol summaries (``summarize``'s dicts), one
    column each: a row per group (``per_type``: each type of the group, then the group in bold), then
    pooled; a heading of ``level`` hashes above it and a blank line below."""
    names, srcs = list(columns), list(columns.values())
    lines = [
        f"{'#' * level} {title}",
        "",
        f"| {'type / group' if per_type else 'group'} | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for group, g in srcs[0]["per_group"].items():
        if per_type:
            lines += [_row(t, [s["per_type"][t][metric] for s in srcs]) for t in g["types"]]
        label = f"**[{group}]**" if per_type else group
        lines.append(_row(label, [s["per_group"][group][metric] for s in srcs]))
    lines.append(_row("**POOLED**" if per_type else "**pooled**", [s["pooled"][metric] for s in srcs]))
    return [*lines, ""]
