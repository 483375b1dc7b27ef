"""Property over the wire: for any --grep/--trace text, the stand-in Loki parses svcbot's query and the
text works as exactly one filter, finding a line that contains it."""

from __future__ import annotations

import itertools
import time

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.clients.loki import LokiClient
from bot.insight import logql
from sandbox.loki import LokiSandbox

_counter = itertools.count()


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(min_size=1, max_size=40), level=st.none() | st.sampled_from(logql.LEVEL_CHOICES))
@example(text='" } | line_format "pwned', level="error")
@example(text="\\\"`\n\t\u2028\ufeff😀", level=None)
def test_any_text_is_one_filter_that_finds_its_line(loki: LokiSandbox, text: str, level: str | None) -> None:
    """The query parses (HTTP 200) and returns the pushed line holding the text, and only lines holding it."""
    marker = f"prop-{next(_counter)}"
    line = f"{marker} <<{text}>>"
    loki.push([{"stream": {"namespace": "property", "app": "payment"},
                "values": [[str(time.time_ns() - 1_000_000_000), line]]}])
    search = logql.LogSearch(namespace_label="namespace", namespace="property", service_label="app",
                             services=("payment",), grep=text, trace_id=text, level=level)
    end = time.time_ns()
    client = LokiClient(loki.url, tenant="ops")
    try:
        streams = client.query_range(logql.log_query(search), start_ns=end - 60_000_000_000, end_ns=end, limit=5000)
    finally:
        client.close()
    found = [entry.line for entry in logql.merge_streams(streams)]
    assert line in found
    assert all(text in entry for entry in found)
