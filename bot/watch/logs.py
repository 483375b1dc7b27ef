"""The last error lines of an incident's pods, from Loki: what the incident message quotes under its diagnosis."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from bot.clients.loki import LokiClient
from bot.core.catalog import Catalog
from bot.insight import logql
from bot.insight.logs import log_line, loki_labels

LOOK_BACK = 900  # seconds of logs searched
MAX_LINES = 5
DEADLINE = 5.0  # seconds for the one Loki query (the incident is announced without its lines after that)
POD_LABEL = "pod"


ErrorLines = Callable[[str, str, Sequence[str]], tuple[str, ...]]


def error_lines(catalog: Catalog, loki: Callable[[], LokiClient]) -> ErrorLines:
    """A function (service, env, pods) -> the last few error-and-above lines, newest first, masked as /svc logs
    masks them; the affected pods' lines first when the streams say which pod wrote them."""

    def lines(service: str, env: str, pods: Sequence[str]) -> tuple[str, ...]:
        namespace_label, service_label = loki_labels(catalog)
        search = logql.LogSearch(namespace_label=namespace_label, namespace=catalog.environment(env).namespace,
                                 service_label=service_label, services=(service,), level="error")
        end_ns = time.time_ns()
        streams = loki().query_range(logql.log_query(search), start_ns=end_ns - LOOK_BACK * 1_000_000_000,
                                     end_ns=end_ns, limit=50, deadline=time.monotonic() + DEADLINE)
        entries = logql.merge_streams(streams, newest_first=True)
        wanted = set(pods)
        entries.sort(key=lambda entry: entry.labels.get(POD_LABEL, "") not in wanted)  # stable: newest first kept
        out: list[str] = []
        for entry in entries:
            if len(out) == MAX_LINES:
                break
            shown = log_line(entry.timestamp_ns, entry.line, entry.labels, service_label,
                             catalog.secrets.key_patterns)
            if not shown.message.strip():
                continue
            pod = entry.labels.get(POD_LABEL, "")
            out.append(" ".join(part for part in (pod and f"[{pod}]", shown.level.upper(), shown.message) if part))
        return tuple(out)

    return lines
