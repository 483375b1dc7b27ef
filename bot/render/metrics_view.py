"""/svc metrics as a Document: a table (now, trend, range, sparkline per series), restarts, deploys in the
window, and the PNG chart as the attachment (uploaded in Slack, written to a file in the terminal)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

from bot.core.tone import Tone
from bot.insight.metrics import Panel, trend
from bot.render.document import Attachment, Document, Element, Lines, Note, Paragraph, Table
from bot.render.views import view
from bot.replies.metrics import MetricsReply

BLOCKS = "▁▂▃▄▅▆▇█"
SPARK_POINTS = 24
ARROWS = {"rising": "↑ rising", "falling": "↓ falling", "steady": "→ steady"}


def amount(value: float, unit: str) -> str:
    """12.3 req/s, 0.42 %, 180 ms, 0.25 cores, 96 MiB."""
    if not math.isfinite(value):
        return "n/a"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"
    if unit == "bytes":
        for factor, name in ((1024.0 ** 3, "GiB"), (1024.0 ** 2, "MiB"), (1024.0, "KiB")):
            if value >= factor:
                return f"{value / factor:.1f} {name}"
        return f"{value:.0f} B"
    if unit == "%":
        return f"{value:.2f} %"
    if unit == "cores":
        return f"{value:.3f} cores"
    if unit == "req/s":
        return f"{value:.1f} req/s"
    return f"{value:.0f}"


def sparkline(values: Sequence[float], width: int = SPARK_POINTS) -> str:
    """The values resampled to `width` bars, scaled from the lowest to the highest."""
    if not values:
        return ""
    if len(values) > width:
        size = len(values) / width
        values = [max(values[int(i * size): max(int((i + 1) * size), int(i * size) + 1)]) for i in range(width)]
    low, high = min(values), max(values)
    if high - low <= abs(high) * 1e-9:
        return BLOCKS[3] * len(values)
    return "".join(BLOCKS[round((value - low) / (high - low) * (len(BLOCKS) - 1))] for value in values)


def _rows(panel: Panel) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for series in panel.series:
        values = [value for _t, value in series.points]
        name = series.name if len(panel.series) > 1 else panel.title.split(",")[0].lower()
        compared = ""
        if panel.limits and series.name not in {label for label, _v in panel.limits}:
            compared = ", ".join(f"{label} {amount(limit, panel.unit)} ({values[-1] / limit:.0%})"
                                 for label, limit in panel.limits if limit > 0)
        rows.append((name, amount(values[-1], panel.unit), ARROWS[trend(series.points)],
                     f"{amount(min(values), panel.unit)} – {amount(max(values), panel.unit)}",
                     sparkline(values), compared))
    return rows


def chart_filename(reply: MetricsReply) -> str:
    return f"{reply.service}-{reply.env}-metrics.png"


@view(MetricsReply)
def metrics_view(reply: MetricsReply) -> Document:
    start = dt.datetime.fromtimestamp(reply.start, dt.UTC)
    end = dt.datetime.fromtimestamp(reply.end, dt.UTC)
    title = f"{reply.service} in {reply.env}: the last {reply.since} ({start:%H:%M} – {end:%H:%M} UTC)"
    rows: list[tuple[str, ...]] = []
    missing: list[tuple[Tone | None, str]] = []
    for panel in reply.panels:
        if panel.series:
            rows.extend(_rows(panel))
        else:
            missing.append((Tone.WARN, f"{panel.title}: {panel.missing}"))
    elements: list[Element] = [Paragraph(title, strong=True)]
    if rows:
        elements.append(Table(columns=("metric", "now", "trend", "range", "over time", "against"),
                              rows=tuple(rows), right_align=(1,), optional=(5, 4, 3)))
    facts: list[tuple[Tone | None, str]] = []
    if reply.restarts is not None:
        facts.append((Tone.WARN if reply.restarts else None,
                      f"container restarts of the deployment's pods: {reply.restarts}"))
    for mark in reply.deploys:
        facts.append((None, f"deploy at {dt.datetime.fromtimestamp(mark.at, dt.UTC):%H:%M:%S} UTC: {mark.label}"))
    if facts or missing:
        elements.append(Lines(tuple(facts + missing)))
    notes = list(reply.notes)
    has_data = any(panel.series for panel in reply.panels)
    if has_data and not reply.public:
        notes.append("The chart is posted in the channel as a file: an ephemeral answer cannot carry an upload.")
    if reply.prometheus:
        notes.append(f"from Prometheus at {reply.prometheus}")
    for note in notes:
        elements.append(Note(note))
    attachment = None
    if has_data:
        from bot.render.chart import render_png  # noqa: PLC0415 - matplotlib loads on the first chart only

        attachment = Attachment(filename=chart_filename(reply), content=render_png(reply),
                                title=f"{reply.service} in {reply.env}, last {reply.since}")
    tone = Tone.WARN if missing else Tone.INFO
    return Document(summary=title, elements=tuple(elements), attachment=attachment, public=reply.public, tone=tone)
