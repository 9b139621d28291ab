"""The scorecard as one self-contained HTML page (`lorawatch score --report`): the tables, the misses
and false positives to look at first, a timeline of labels against alerts per device, and the spread
of lead times and delays per category.

Self-contained because a report is mailed, attached to an issue or opened on a laptop in a depot:
plotly.js is inlined once, with the first figure, and nothing is fetched from the network. Every text
that came from a file (device ids, rule names, label extras) is escaped, in the page and in the
figures' hover text, which plotly renders as a subset of HTML.
"""

from __future__ import annotations

import html
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lorawatch.scorecard import COLUMNS, Match, Row, Scorecard, footer, row_cells

#: The timeline shows at most this many devices (those with the most labels and alerts).
TIMELINE_DEVICES = 60
#: The list of misses and false positives stops here.
PROBLEMS_LISTED = 500
#: Outcome colours: green caught, red missed or false, orange repeated, greys for the rest.
COLOURS: dict[str, str] = {
    "tp": "#2ca02c",
    "miss": "#d62728",
    "fp": "#d62728",
    "dup": "#ff7f0e",
    "explained": "#7f7f7f",
    "record": "#9467bd",
    "late": "#bcbd22",
    "expects nothing": "#9ecae1",
}
STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #555; }
"""


def write_report(
    path: str | os.PathLike[str],
    card: Scorecard,
    alerts: Sequence[Mapping[str, Any]],
    labels: Sequence[Mapping[str, Any]],
) -> None:
    """Write the report for `card`, scored from `alerts` and `labels`, to `path` as one HTML file."""
    figures = [_timeline(card, alerts, labels), _timing(card)]
    parts: list[str] = []
    for figure in (f for f in figures if f is not None):
        # plotly.js goes inline with the first figure only; never "cdn": the page must work offline.
        first = not parts
        parts.append(str(figure.to_html(full_html=False, include_plotlyjs=first, config={"displaylogo": False})))
    span = f"{_utc(card.first)} to {_utc(card.last)} UTC"
    body = [
        "<h1>lorawatch score</h1>",
        f"<p>{_e(span)}; storms expect a flood alert at &ge; {_e(f'{card.flood_fill_pct:g}')}% fill at peak.</p>",
        "<h2>By category</h2>",
        _table(("category", *COLUMNS), [[r.name, *row_cells(r)] for r in card.rows], 1),
        "<h2>By rule</h2>",
        _table(("rule", "category", *COLUMNS), [[r.name, r.category, *row_cells(r)] for r in card.by_rule], 2),
        "<ul class='note'>" + "".join(f"<li>{_e(line)}</li>" for line in footer(card)) + "</ul>",
        "<h2>Misses and false positives</h2>",
        _problems(card.matches),
        *(["<p class='note'>No figures: nothing was labelled or alerted.</p>"] if not parts else []),
        *parts,
    ]
    page = (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n<title>lorawatch score</title>\n"
        f"<style>{STYLE}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
    Path(path).write_text(page, encoding="utf-8")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _utc(at: datetime) -> str:
    """A time as plotly.js reads it (it ignores zone suffixes): plain UTC to the millisecond."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], left: int) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{_e(c)}</td>" if i < left else f"<td class='num'>{_e(c)}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _subject(alert: Mapping[str, Any]) -> str:
    if alert.get("device_id"):
        return str(alert["device_id"])
    if alert.get("gateway_id"):
        return f"gateway {alert['gateway_id']}"
    if alert.get("care_group"):
        return f"care group {alert['care_group']}"
    return "(no subject)"


def _problems(matches: Sequence[Match]) -> str:
    problems = [m for m in matches if m.outcome in ("miss", "fp")]
    if not problems:
        return "<p class='note'>None.</p>"
    rows = []
    for m in problems[:PROBLEMS_LISTED]:
        label, alert = m.label or {}, m.alert or {}
        subject = _subject(alert) if alert else str(label.get("gateway_id") or label.get("device_id", ""))
        rows.append(
            [
                m.outcome,
                m.category,
                m.rule or "",
                subject,
                str(label.get("label", "")),
                str(label.get("start", "")),
                str(alert.get("id", "")),
                str(alert.get("opened_at", "")),
            ]
        )
    more = len(problems) - PROBLEMS_LISTED
    note = f"<p class='note'>The first {PROBLEMS_LISTED} of {len(problems)} are listed.</p>" if more > 0 else ""
    header = ("outcome", "category", "rule", "subject", "label", "label start", "alert", "opened at")
    return _table(header, rows, len(header)) + note


def _label_key(label: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """A label's identity across the scorecard's copy and the file's: a gateway outage by its gateway,
    so the outcome of the grouped outage reaches every device label in it."""
    kind = str(label.get("label"))
    who = label.get("gateway_id") if kind == "gateway_outage" else label.get("device_id")
    return kind, str(who), str(label.get("start")), str(label.get("end"))


def _timeline(card: Scorecard, alerts: Sequence[Mapping[str, Any]], labels: Sequence[Mapping[str, Any]]) -> Any:
    """Labels as bars from start to end (a diamond when instantaneous) and alerts as a marker at
    opened_at with a line to resolved_at, one row per device, coloured by outcome."""
    label_outcome: dict[tuple[str, str, str, str], str] = {}
    alert_outcome: dict[str, str] = {}
    for m in card.matches:
        if m.alert is not None:
            alert_outcome[str(m.alert.get("id"))] = m.outcome
        elif m.label is not None:
            label_outcome[_label_key(m.label)] = "miss"
        if m.outcome == "tp" and m.label is not None:
            label_outcome[_label_key(m.label)] = "tp"
    items: list[tuple[str, Mapping[str, Any]]] = [(str(lb.get("device_id")), lb) for lb in labels]
    # A gateway outage also on its gateway's row, where its gateway_offline alert is.
    outages = {_label_key(lb): lb for lb in labels if lb.get("label") == "gateway_outage"}
    items += [(f"gateway {lb.get('gateway_id')}", lb) for lb in outages.values()]
    alert_rows = [(_subject(a), a) for a in alerts]
    counts = Counter(row for row, _ in items) + Counter(row for row, _ in alert_rows)
    if not counts:
        return None
    shown = sorted(counts, key=lambda r: (-counts[r], r))[:TIMELINE_DEVICES]
    keep = set(shown)
    fig = go.Figure()
    bars: dict[str, tuple[list[str], list[str], list[float], list[str]]] = {}
    instants: dict[str, tuple[list[str], list[str], list[str]]] = {}
    for row, lb in items:
        start, end = _time(lb.get("start")), _time(lb.get("end"))
        if row not in keep or start is None or end is None:
            continue
        outcome = label_outcome.get(_label_key(lb), "expects nothing")
        text = _e(", ".join(f"{k}={v}" for k, v in lb.items()))
        if end > start:
            ys, bases, widths, texts = bars.setdefault(outcome, ([], [], [], []))
            ys.append(_e(row))
            bases.append(_utc(start))
            widths.append((end - start).total_seconds() * 1000.0)
            texts.append(text)
        else:
            ys, xs, texts = instants.setdefault(outcome, ([], [], []))
            ys.append(_e(row))
            xs.append(_utc(start))
            texts.append(text)
    for outcome, (ys, bases, widths, texts) in sorted(bars.items()):
        fig.add_trace(
            go.Bar(
                y=ys,
                base=bases,
                x=widths,
                orientation="h",
                name=f"label: {outcome}",
                hovertext=texts,
                hoverinfo="text",
                marker={"color": COLOURS[outcome], "opacity": 0.45},
                legendgroup=f"label {outcome}",
            )
        )
    for outcome, (ys, xs, texts) in sorted(instants.items()):
        fig.add_trace(
            go.Scatter(
                y=ys,
                x=xs,
                mode="markers",
                name=f"label: {outcome} (instant)",
                hovertext=texts,
                hoverinfo="text",
                marker={"color": COLOURS[outcome], "symbol": "diamond-open", "size": 9},
                legendgroup=f"label {outcome}",
            )
        )
    marks: dict[str, tuple[list[str], list[str], list[str], list[str | None], list[str | None]]] = {}
    for row, alert in alert_rows:
        opened = _time(alert.get("opened_at"))
        if row not in keep or opened is None:
            continue
        resolved = _time(alert.get("resolved_at")) or card.last
        outcome = alert_outcome.get(str(alert.get("id")), "late")
        ys, xs, texts, line_x, line_y = marks.setdefault(outcome, ([], [], [], [], []))
        ys.append(_e(row))
        xs.append(_utc(opened))
        texts.append(_e(f"{outcome}: {alert.get('rule')} ({alert.get('category')}) #{alert.get('id')}"))
        line_x += [_utc(opened), _utc(max(resolved, opened)), None]
        line_y += [_e(row), _e(row), None]
    for outcome, (ys, xs, texts, line_x, line_y) in sorted(marks.items()):
        colour = COLOURS[outcome]
        fig.add_trace(
            go.Scatter(
                x=line_x,
                y=line_y,
                mode="lines",
                line={"color": colour, "width": 3},
                hoverinfo="skip",
                showlegend=False,
                legendgroup=f"alert {outcome}",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers",
                name=f"alert: {outcome}",
                hovertext=texts,
                hoverinfo="text",
                marker={"color": colour, "symbol": "circle", "size": 8},
                legendgroup=f"alert {outcome}",
            )
        )
    title = f"Labels (bars) and alerts (markers, lines to resolved) per device: {len(shown)} of {len(counts)}"
    if len(counts) > len(shown):
        title += f", the {TIMELINE_DEVICES} with the most labels and alerts"
    fig.update_layout(
        title=_e(title),
        barmode="overlay",
        height=160 + 24 * len(shown),
        xaxis={"type": "date", "title": "UTC"},
        yaxis={"type": "category", "categoryorder": "array", "categoryarray": [_e(r) for r in reversed(shown)]},
        legend={"orientation": "h", "y": -0.15},
        margin={"l": 160},
    )
    return fig


def _timing(card: Scorecard) -> Any:
    """One histogram per category of its TPs' lead times (flood) or delays, in minutes."""
    rows: list[tuple[Row, list[float]]] = []
    for row in card.rows:
        minutes = [m.minutes for m in card.matches if m.outcome == "tp" and m.category == row.category]
        values = [x for x in minutes if x is not None]
        if values:
            rows.append((row, values))
    if not rows:
        return None
    titles = [
        _e(f"{r.category}: " + ("lead time before the peak, min" if r.timing == "lead" else "delay after start, min"))
        for r, _ in rows
    ]
    fig = make_subplots(rows=len(rows), cols=1, subplot_titles=titles, vertical_spacing=min(0.3, 0.5 / len(rows)))
    for i, (r, values) in enumerate(rows, 1):
        fig.add_trace(go.Histogram(x=values, name=_e(r.category), showlegend=False), row=i, col=1)
    fig.update_layout(title="Lead time (flood) and delay (the rest) of true positives", height=140 + 220 * len(rows))
    return fig
