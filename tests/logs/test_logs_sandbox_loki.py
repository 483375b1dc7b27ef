"""The Loki stand-in answers like Loki: documented envelopes, the LogQL subset svcbot emits, and
plain-text errors with Loki's status codes. Spoken to with plain requests, as Loki's own docs do."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import pytest
import requests

from sandbox.loki import LokiSandbox, parse_timestamp
from sandbox.seed.logs import PROD_DECLINED_TRACE_ID, seed_streams

NS = 1_000_000_000
TENANT = {"X-Scope-OrgID": "ops"}  # the stand-in requires a tenant, as Loki with auth_enabled does


def get(loki: LokiSandbox, path: str, **params: str) -> requests.Response:
    return requests.get(loki.url + path, params=params, headers=TENANT, timeout=5)


def query_range(loki: LokiSandbox, query: str, **params: str) -> requests.Response:
    end = time.time_ns()
    params.setdefault("start", str(end - 3600 * NS))
    params.setdefault("end", str(end))
    return get(loki, "/loki/api/v1/query_range", query=query, **params)


def entries(answer: dict[str, Any]) -> list[tuple[int, str, dict[str, str]]]:
    return [(int(ts), line, item["stream"]) for item in answer["data"]["result"] for ts, line in item["values"]]


@pytest.fixture(name="fresh")
def _fresh() -> Any:
    with LokiSandbox() as loki:
        yield loki


class TestPush:
    def test_push_accepts_json_and_gzip(self, fresh: LokiSandbox) -> None:
        """Loki's JSON push format is accepted with 204, gzipped too."""
        body = {"streams": [{"stream": {"app": "a"}, "values": [[str(time.time_ns()), "one"]]}]}
        plain = requests.post(fresh.url + "/loki/api/v1/push", json=body, headers=TENANT, timeout=5)
        zipped = requests.post(fresh.url + "/loki/api/v1/push", data=gzip.compress(json.dumps(body).encode()),
                               headers={"Content-Type": "application/json", "Content-Encoding": "gzip", **TENANT},
                               timeout=5)
        assert (plain.status_code, zipped.status_code) == (204, 204)
        assert fresh.line_count() == 1  # the same entry twice is stored once, as Loki does

    def test_a_numeric_timestamp_is_refused(self, fresh: LokiSandbox) -> None:
        """Timestamps must be strings of nanoseconds: a number gets 400 with a plain-text reason."""
        body = {"streams": [{"stream": {"app": "a"}, "values": [[time.time_ns(), "one"]]}]}
        answer = requests.post(fresh.url + "/loki/api/v1/push", json=body, headers=TENANT, timeout=5)
        assert answer.status_code == 400
        assert answer.headers["Content-Type"].startswith("text/plain")
        assert "timestamp must be a string" in answer.text

    def test_too_old_and_too_new_entries_are_refused(self, fresh: LokiSandbox) -> None:
        """Entries older than 7 days or more than 10 minutes ahead are rejected."""
        for offset, word in ((-8 * 86_400, "too old"), (3600, "too new")):
            body = {"streams": [{"stream": {"app": "a"}, "values": [[str(time.time_ns() + offset * NS), "x"]]}]}
            answer = requests.post(fresh.url + "/loki/api/v1/push", json=body, headers=TENANT, timeout=5)
            assert (answer.status_code, word in answer.text) == (400, True)

    def test_the_seed_is_timestamped_relative_to_now(self) -> None:
        """Every seed line lies within the last two hours of the `now` it was made for."""
        now = time.time()
        streams = seed_streams(now)
        stamps = [int(ts) for stream in streams for ts, _ in stream["values"]]
        assert min(stamps) >= (now - 2 * 3600) * NS
        assert max(stamps) <= now * NS
        assert {stream["stream"]["namespace"] for stream in streams} == {"dev", "staging", "prod"}


class TestQueryRange:
    def test_streams_envelope_is_lokis(self, loki: LokiSandbox) -> None:
        """status, data.resultType, data.result[].stream/values as [ns string, line], and stats."""
        answer = query_range(loki, '{namespace="prod", app="payment"}', limit="3").json()
        assert answer["status"] == "success"
        assert answer["data"]["resultType"] == "streams"
        assert "stats" in answer["data"]
        value = answer["data"]["result"][0]["values"][0]
        assert isinstance(value[0], str)
        assert value[0].isdigit()

    def test_backward_gives_the_newest_and_forward_the_oldest(self, loki: LokiSandbox) -> None:
        """direction picks which end of the range the limit keeps."""
        newest = entries(query_range(loki, '{namespace="prod", app="gateway"}', limit="5").json())
        oldest = entries(query_range(loki, '{namespace="prod", app="gateway"}', limit="5",
                                     direction="forward").json())
        assert min(ts for ts, _, _ in newest) > max(ts for ts, _, _ in oldest)

    def test_json_extracts_labels_and_label_filters_use_them(self, loki: LokiSandbox) -> None:
        """After `| json` the line's fields are labels, and `level="error"` keeps only errors."""
        found = entries(query_range(loki, '{namespace="staging", app="orders"} | json | level="error"',
                                    limit="50").json())
        assert found
        assert {labels["level"] for _, _, labels in found} == {"error"}

    def test_lines_that_are_not_json_carry_error_and_can_be_kept(self, loki: LokiSandbox) -> None:
        """`| json` marks plain-text lines with __error__; `or __error__!=""` keeps them beside matches."""
        query = '{namespace="prod", app="inventory"} | json | level="fatal" or __error__!=""'
        found = entries(query_range(loki, query, limit="500").json())
        errors = {labels.get("__error__") for _, _, labels in found}
        assert errors == {None, "JSONParserErr"}

    def test_line_filters_are_substring_and_regex(self, loki: LokiSandbox) -> None:
        """|= is a case-sensitive substring test; |~ an unanchored regex; != and !~ negate them."""
        exact = entries(query_range(loki, f'{{namespace="prod", app="payment"}} |= "{PROD_DECLINED_TRACE_ID}"').json())
        upper = entries(query_range(loki, f'{{namespace="prod", app="payment"}} |= "{PROD_DECLINED_TRACE_ID.upper()}"')
                        .json())
        regex = entries(query_range(loki, '{namespace="prod", app="payment"} |~ "(?i)CHARGE DECLINED"').json())
        assert (len(exact), len(upper), len(regex)) == (2, 0, 1)

    def test_metric_queries_answer_a_matrix_without_empty_points(self, loki: LokiSandbox) -> None:
        """count_over_time summed by level answers one series per level; empty windows have no point."""
        answer = query_range(loki, 'sum by (level) (count_over_time({namespace="staging", app="orders"} | json '
                                   '| __error__="" [60s]))', step="60").json()
        assert answer["data"]["resultType"] == "matrix"
        series = {item["metric"]["level"]: item["values"] for item in answer["data"]["result"]}
        assert {"error", "warn"} <= set(series)
        assert all(float(value) > 0 for values in series.values() for _, value in values)

    def test_a_metric_query_over_plain_text_lines_is_a_pipeline_error(self, loki: LokiSandbox) -> None:
        """Without `| __error__=""` a metric query over lines that are not JSON fails, as in Loki."""
        answer = query_range(loki, 'sum by (level) (count_over_time({namespace="prod", app="inventory"} | json '
                                   "[60s]))", step="60")
        assert answer.status_code == 400
        assert answer.text.startswith("pipeline error: 'JSONParserErr'")

    def test_too_many_points_is_refused(self, loki: LokiSandbox) -> None:
        """More than 11,000 points per series is a 400."""
        answer = query_range(loki, 'count_over_time({app="orders"}[1s])', step="0.1")
        assert (answer.status_code, "11,000 points" in answer.text) == (400, True)


class TestErrors:
    @pytest.mark.parametrize(("query", "wording"), [
        ('{app="x" |= "a"', "parse error at line 1, col 10: syntax error: unexpected |="),
        ('{app="x"} |= "a\nb"', "parse error at line 1, col 14: literal not terminated"),
        ('{app="x"} |= "\\q"', "parse error at line 1, col 15: invalid char escape"),
        ('{app="x"} | line_format "{{.x}}"', "does not implement `line_format`"),
        ('{app=~".*"}', "queries require at least one regexp or equality matcher"),
    ])
    def test_bad_queries_get_400_with_lokis_wording(self, loki: LokiSandbox, query: str, wording: str) -> None:
        """Parse errors and selectors that match everything are plain-text 400s."""
        answer = query_range(loki, query)
        assert answer.status_code == 400
        assert wording in answer.text

    def test_limit_above_5000_is_refused(self, loki: LokiSandbox) -> None:
        """max_entries_limit_per_query is 5000 by default."""
        answer = query_range(loki, '{app="orders"}', limit="5001")
        assert answer.text.strip() == ("max entries limit per query exceeded, limit > max_entries_limit_per_query "
                                       "(5001 > 5000)")

    def test_a_range_longer_than_30d1h_is_refused(self, loki: LokiSandbox) -> None:
        """max_query_length is 721h."""
        end = time.time_ns()
        answer = query_range(loki, '{app="orders"}', start=str(end - 31 * 86_400 * NS), end=str(end))
        assert answer.status_code == 400
        assert "the query time range exceeds the limit (query length: 744h0m0s, limit: 30d1h)" in answer.text

    def test_a_log_query_is_not_an_instant_query(self, loki: LokiSandbox) -> None:
        """/query refuses log queries with Loki's message."""
        answer = get(loki, "/loki/api/v1/query", query='{app="orders"}')
        assert answer.status_code == 400
        assert "log queries are not supported as an instant query type" in answer.text

    @pytest.mark.parametrize(("status", "wording"), [(429, "too many outstanding requests"),
                                                     (504, "request timed out")])
    def test_fault_switches_answer_with_lokis_bodies(self, loki: LokiSandbox, status: int, wording: str) -> None:
        """fail_next makes the next read answer 429 or 504 in plain text; the one after is normal."""
        loki.fail_next(status)
        first = query_range(loki, '{app="orders"}')
        second = query_range(loki, '{app="orders"}')
        assert (first.status_code, wording in first.text, second.status_code) == (status, True, 200)

    def test_stall_holds_the_answer(self, loki: LokiSandbox) -> None:
        """A stalled stand-in does not answer within the client's timeout."""
        loki.stall(5)
        with pytest.raises(requests.ReadTimeout):
            requests.get(loki.url + "/loki/api/v1/labels", headers=TENANT, timeout=(1, 0.3))

    def test_ready(self, loki: LokiSandbox) -> None:
        """/ready answers 200 even while queries are stalled."""
        loki.stall(5)
        assert get(loki, "/ready").status_code == 200


def test_timestamps_are_read_as_loki_reads_them() -> None:
    """Up to 10 digits are seconds, longer integers nanoseconds, floats seconds, else RFC3339."""
    assert parse_timestamp("1700000000", 0) == 1_700_000_000 * NS
    assert parse_timestamp("1700000000123456789", 0) == 1_700_000_000_123_456_789
    assert parse_timestamp("1700000000.5", 0) == 1_700_000_000_500_000_000
    assert parse_timestamp("2023-11-14T22:13:20.25Z", 0) == 1_700_000_000_250_000_000
    assert parse_timestamp("", 42) == 42
