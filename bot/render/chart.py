"""The PNG chart of /svc metrics, drawn with matplotlib's object API (Figure + the Agg canvas).

pyplot keeps global state and is not thread-safe; commands run on worker threads, so each chart is its own
Figure on its own canvas. matplotlib is imported on the first chart only (start-up stays as it is), with
MPLCONFIGDIR pointed at a private temporary directory when it is not set: under a read-only root
filesystem matplotlib would otherwise warn and rebuild its font cache on every import.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import tempfile
import threading
from typing import Any

from bot.replies.metrics import MetricsReply

_import_lock = threading.Lock()
_modules: tuple[Any, Any] | None = None
DPI = 100
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def _matplotlib() -> tuple[Any, Any]:
    """(Figure, FigureCanvasAgg), imported once."""
    global _modules  # noqa: PLW0603 - a one-time lazy import
    with _import_lock:
        if _modules is None:
            if not os.environ.get("MPLCONFIGDIR"):
                os.environ["MPLCONFIGDIR"] = tempfile.mkdtemp(prefix="svcbot-matplotlib-")
            from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 - lazy, see above
            from matplotlib.figure import Figure  # noqa: PLC0415

            _modules = (Figure, FigureCanvasAgg)
        return _modules


def _scale(unit: str, values: list[float]) -> tuple[float, str]:
    if unit == "bytes":
        peak = max(values, default=0.0)
        for factor, name in ((1024.0 ** 3, "GiB"), (1024.0 ** 2, "MiB"), (1024.0, "KiB")):
            if peak >= factor:
                return factor, name
        return 1.0, "B"
    if unit == "s":
        return 0.001, "ms"
    return 1.0, unit


def render_png(reply: MetricsReply) -> bytes:
    """The reply's panels, two columns, deploys as dashed vertical lines, limits as dotted lines."""
    figure_class, canvas_class = _matplotlib()
    panels = reply.panels
    rows = max(1, (len(panels) + 1) // 2)
    figure = figure_class(figsize=(11, 2.6 * rows + 0.6), dpi=DPI)
    canvas_class(figure)
    figure.suptitle(f"{reply.service} in {reply.env}, last {reply.since}", fontsize=12)
    start = dt.datetime.fromtimestamp(reply.start, dt.UTC)
    end = dt.datetime.fromtimestamp(reply.end, dt.UTC)
    for index, panel in enumerate(panels):
        axes = figure.add_subplot(rows, 2, index + 1)
        values = [value for series in panel.series for _t, value in series.points] + [v for _n, v in panel.limits]
        factor, unit = _scale(panel.unit, values)
        axes.set_title(f"{panel.title} ({unit})" if unit else panel.title, fontsize=9, loc="left")
        axes.set_xlim(start, end)
        axes.tick_params(labelsize=7)
        axes.grid(True, alpha=0.3)
        for number, series in enumerate(panel.series):
            times = [dt.datetime.fromtimestamp(t, dt.UTC) for t, _v in series.points]
            axes.plot(times, [v / factor for _t, v in series.points], label=series.name,
                      color=COLOURS[number % len(COLOURS)], linewidth=1.2)
        for label, value in panel.limits:
            axes.axhline(value / factor, linestyle=":", color="#555555", linewidth=1, label=label)
        for mark in reply.deploys:
            axes.axvline(dt.datetime.fromtimestamp(mark.at, dt.UTC), linestyle="--", color="#ff7f0e", linewidth=1)
        if not panel.series:
            axes.text(0.5, 0.5, "no data", transform=axes.transAxes, ha="center", va="center", color="#888888")
        if len(panel.series) + len(panel.limits) > 1:
            axes.legend(fontsize=7, loc="upper left")
        axes.set_ylim(bottom=0)
        axes.xaxis.set_major_formatter(_time_format(reply.end - reply.start))
    if reply.deploys:
        figure.text(0.01, 0.005, "deploys (dashed): " + "; ".join(
            f"{dt.datetime.fromtimestamp(m.at, dt.UTC):%H:%M} {m.label}" for m in reply.deploys[:4]), fontsize=7)
    # Fixed margins, not tight_layout (which measured every tick label: more than half the render time).
    figure.subplots_adjust(left=0.055, right=0.985, top=1 - 0.75 / (2.6 * rows + 0.6),
                           bottom=0.45 / (2.6 * rows + 0.6), hspace=0.45, wspace=0.14)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def _time_format(span: float) -> Any:
    from matplotlib.dates import DateFormatter  # noqa: PLC0415 - matplotlib is already imported here

    return DateFormatter("%H:%M" if span <= 2 * 86400 else "%m-%d %H:%M", tz=dt.UTC)  # type: ignore[no-untyped-call]
