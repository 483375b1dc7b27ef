"""The Loki client against the stand-in and against Loki's documented answers: envelopes, tenant and
auth headers, retries only where they are safe, plain-text errors turned into clear messages, and a
stalled Loki reported within the deadline."""

from __future__ import annotations

import re
import socket
import time

import pytest
import requests
from logs_helpers import FixedAnswers

from bot.clients import loki as loki_module
from bot.clients.loki import LokiClient
from bot.core.errors import BackendError, BackendUnavailable, BotError, DeadlineExceeded, UserError
from sandbox.loki import LokiSandbox

STAGING_ORDERS = '{namespace="staging", app="orders"} | json'


def now_ns() -> int:
    return time.time_ns()


def client(url: str, sleeps: list[float] | None = None, **options: object) -> LokiClient:
    """A client whose backoff sleeps are recorded (and skipped) and whose jitter is the maximum."""
    recorded = sleeps if sleeps is not None else []
    options.setdefault("tenant", "ops")  # the stand-in requires X-Scope-OrgID, as Loki with auth_enabled does
    return LokiClient(url, sleep=recorded.append, jitter=lambda _low, high: high, **options)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestAnswers:
    def test_query_range_returns_streams_with_nanosecond_entries(self, loki: LokiSandbox) -> None:
        """A log query gives streams whose entries are (ns, line) pairs within the range."""
        end = now_ns()
        streams = client(loki.url).query_range(STAGING_ORDERS, start_ns=end - 3600 * 10**9, end_ns=end, limit=20)
        entries = [entry for stream in streams for entry in stream.entries]
        assert len(entries) == 20
        assert all(end - 3600 * 10**9 <= timestamp < end for timestamp, _ in entries)
        assert all(stream.labels["app"] == "orders" for stream in streams)

    def test_the_limit_counts_entries_across_streams(self, loki: LokiSandbox) -> None:
        """Loki's limit is a total over every stream of the answer, not a per-stream limit."""
        end = now_ns()
        streams = client(loki.url).query_range('{namespace="prod", app=~"gateway|orders"}', start_ns=end - 3600 * 10**9,
                                               end_ns=end, limit=7)
        assert len(streams) > 1
        assert sum(len(stream.entries) for stream in streams) == 7

    def test_the_query_travels_as_a_parameter_with_nanosecond_strings(self, loki: LokiSandbox) -> None:
        """start/end are nanosecond strings, the limit is clamped to 5000, direction is backward."""
        end = now_ns()
        client(loki.url).query_range(STAGING_ORDERS, start_ns=end - 60 * 10**9, end_ns=end, limit=9000)
        seen = loki.requests_to("/loki/api/v1/query_range")[-1]
        assert seen.params == {"query": STAGING_ORDERS, "start": str(end - 60 * 10**9), "end": str(end),
                               "limit": "5000", "direction": "backward"}

    def test_metric_range_returns_a_matrix(self, loki: LokiSandbox) -> None:
        """A `sum by (level) (count_over_time(...))` query answers one series per level."""
        end = now_ns()
        series = client(loki.url).metric_range(
            'sum by (level) (count_over_time({namespace="staging", app="orders"} | json | __error__="" [300s]))',
            start_ns=end - 3600 * 10**9, end_ns=end, step_seconds=300)
        levels = {item.labels["level"] for item in series}
        assert {"error", "warn"} <= levels
        assert all(value > 0 for item in series for _, value in item.points)

    def test_instant_query_returns_a_vector(self, loki: LokiSandbox) -> None:
        """/query answers a metric query with one point per series."""
        series = client(loki.url).query('sum(count_over_time({namespace="prod", app="inventory"} |= "panic" [1h]))')
        assert len(series) == 1
        assert series[0].points[0][1] > 0

    def test_labels_and_label_values(self, loki: LokiSandbox) -> None:
        """The label names and one label's values come back as lists of strings."""
        loki_client = client(loki.url)
        assert {"namespace", "app", "pod"} <= set(loki_client.labels())
        assert set(loki_client.label_values("app")) == {"payment", "orders", "gateway", "inventory"}
        assert loki_client.label_values("namespace", query='{app="orders"}') == ["dev", "prod", "staging"]

    def test_documented_streams_example_is_read(self, fixed: FixedAnswers) -> None:
        """The streams answer printed in Loki's HTTP API reference parses into streams and entries."""
        fixed.answer_json(
            '{"status": "success", "data": {"resultType": "streams", "result": [{"stream": {"filename": '
            '"/var/log/myproject.log", "job": "varlogs", "level": "info"}, "values": [["1569266497240578000", '
            '"foo"], ["1569266492548155000", "bar"]]}], "stats": {"summary": {"execTime": 0.1}}}}')
        streams = client(fixed.url).query_range("{job=\"varlogs\"}", start_ns=0, end_ns=1)
        assert streams[0].labels["job"] == "varlogs"
        assert list(streams[0].entries) == [(1569266497240578000, "foo"), (1569266492548155000, "bar")]

    def test_documented_matrix_example_is_read(self, fixed: FixedAnswers) -> None:
        """The matrix answer from the reference (seconds as numbers, values as strings) parses to floats."""
        fixed.answer_json(
            '{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"level":"info"},'
            '"values":[[1588889221,"137.95"],[1588889221,"467.115"],[1588889221,"658.8516666666667"]]}],'
            '"stats":{}}}')
        series = client(fixed.url).metric_range("sum(x)", start_ns=0, end_ns=1, step_seconds=1)
        assert series[0].labels == {"level": "info"}
        assert series[0].points[1] == (1588889221.0, 467.115)

    def test_an_answer_of_the_wrong_kind_is_a_backend_error(self, fixed: FixedAnswers) -> None:
        """A matrix where streams were expected is reported, not misread."""
        fixed.answer_json({"status": "success", "data": {"resultType": "matrix", "result": []}})
        with pytest.raises(BackendError, match="'matrix' result"):
            client(fixed.url).query_range("{a=\"b\"}", start_ns=0, end_ns=1)

    def test_an_answer_that_is_not_json_is_a_backend_error(self, fixed: FixedAnswers) -> None:
        """An HTML page from a proxy is reported as not JSON."""
        fixed.answers.append((200, "text/html", "<html>login</html>"))
        with pytest.raises(BackendError, match="not JSON"):
            client(fixed.url).labels()


class TestHeadersAndAuth:
    def test_the_tenant_goes_in_x_scope_orgid(self) -> None:
        """With auth enabled Loki needs the org id; the catalog's tenant is sent and keeps tenants apart."""
        with LokiSandbox(auth_enabled=True) as loki:
            loki.push([{"stream": {"app": "a"}, "values": [[str(now_ns() - 10**9), "hello ops"]]}], tenant="ops")
            end = now_ns()
            streams = client(loki.url, tenant="ops").query_range('{app="a"}', start_ns=end - 60 * 10**9, end_ns=end)
            other = client(loki.url, tenant="dev").query_range('{app="a"}', start_ns=end - 60 * 10**9, end_ns=end)
            assert streams[0].entries[0][1] == "hello ops"
            assert other == []
            assert loki.requests_to("/loki/api/v1/query_range")[0].tenant == "ops"

    def test_without_a_tenant_loki_with_auth_says_no_org_id(self) -> None:
        """Loki's plain-text 401 is turned into a message naming what to check."""
        with LokiSandbox(auth_enabled=True) as loki, pytest.raises(BackendError, match=r"loki\.tenant") as caught:
            client(loki.url, tenant=None).labels()
        assert "no org id" in caught.value.message

    def test_basic_auth_comes_from_the_environment(self) -> None:
        """SVCBOT_LOKI_USER and SVCBOT_LOKI_PASSWORD become basic auth; the password is never in a message."""
        with LokiSandbox(basic_auth=("svcbot", "s3cret-pass")) as loki:
            good = client(loki.url, environ={"SVCBOT_LOKI_USER": "svcbot", "SVCBOT_LOKI_PASSWORD": "s3cret-pass"})
            assert "app" not in good.labels()
            bad = client(loki.url, environ={"SVCBOT_LOKI_USER": "svcbot", "SVCBOT_LOKI_PASSWORD": "wrong-pass"})
            with pytest.raises(BackendError) as caught:
                bad.labels()
            assert "401" in caught.value.message
            assert "wrong-pass" not in caught.value.message
            assert loki.seen[0].auth == "basic"

    def test_a_token_alone_is_sent_as_bearer(self) -> None:
        """SVCBOT_LOKI_TOKEN without a user is a bearer token."""
        with LokiSandbox(bearer_token="tok-123") as loki:
            client(loki.url, environ={"SVCBOT_LOKI_TOKEN": "tok-123"}).labels()
            assert loki.seen[-1].auth == "bearer"

    def test_user_and_token_are_basic_auth_like_grafana_cloud(self) -> None:
        """SVCBOT_LOKI_USER with SVCBOT_LOKI_TOKEN is basic auth with the token as password."""
        with LokiSandbox(basic_auth=("12345", "glc_token")) as loki:
            client(loki.url, environ={"SVCBOT_LOKI_USER": "12345", "SVCBOT_LOKI_TOKEN": "glc_token"}).labels()
            assert loki.seen[-1].auth == "basic"


class TestRetries:
    def test_429_is_retried_then_succeeds(self, loki: LokiSandbox) -> None:
        """Too many outstanding requests: backoff, try again, and the answer arrives."""
        loki.fail_next(429, times=2)
        sleeps: list[float] = []
        before = len(loki.requests_to("/loki/api/v1/labels"))
        names = client(loki.url, sleeps).labels(deadline=time.monotonic() + 10)
        assert "app" in names
        assert len(loki.requests_to("/loki/api/v1/labels")) - before == 3
        assert sleeps == [loki_module.BACKOFF_BASE * 2, loki_module.BACKOFF_BASE * 4]

    @pytest.mark.parametrize("status", [502, 503, 504])
    def test_gateway_errors_are_retried(self, loki: LokiSandbox, status: int) -> None:
        """502, 503 and 504 are retried like 429."""
        loki.fail_next(status)
        assert "app" in client(loki.url).labels()

    def test_a_client_error_is_not_retried(self, loki: LokiSandbox) -> None:
        """A 400 is final: one request, and the parse error becomes a UserError."""
        before = len(loki.requests_to("/loki/api/v1/query_range"))
        with pytest.raises(UserError, match="could not parse the query: parse error at line 1"):
            client(loki.url).query_range('{app="x" |= "unterminated', start_ns=0, end_ns=1)
        assert len(loki.requests_to("/loki/api/v1/query_range")) - before == 1

    def test_persistent_429_gives_a_clear_busy_message(self, loki: LokiSandbox) -> None:
        """After the last attempt the user reads that Loki is busy, and when to try again."""
        loki.fail_next(429, times=loki_module.MAX_ATTEMPTS)
        with pytest.raises(BackendUnavailable, match="Loki is busy \\(too many outstanding requests\\)"):
            client(loki.url).labels()

    def test_persistent_504_says_how_to_narrow_the_query(self, loki: LokiSandbox) -> None:
        """Loki's query timeout is reported with the flags that make the query cheaper."""
        loki.fail_next(504, times=loki_module.MAX_ATTEMPTS)
        with pytest.raises(BackendUnavailable, match=r"timed out running the query.*shorter --since"):
            client(loki.url).labels()

    def test_retries_stop_when_the_deadline_leaves_no_room(self, loki: LokiSandbox) -> None:
        """With half a second left, the backoff would overrun it: the error comes at once."""
        loki.fail_next(429, times=loki_module.MAX_ATTEMPTS)
        sleeps: list[float] = []
        with pytest.raises(BackendUnavailable):
            client(loki.url, sleeps).labels(deadline=time.monotonic() + 0.8)
        assert sleeps == []

    def test_connection_refused_is_retried_then_reported_by_address(self) -> None:
        """A Loki that is down: every attempt fails to connect, and the message names the address."""
        sleeps: list[float] = []
        port = free_port()
        with pytest.raises(BackendUnavailable, match=f"cannot reach Loki at http://127.0.0.1:{port} "
                                                     r"\(connection refused\)"):
            client(f"http://127.0.0.1:{port}", sleeps).labels()
        assert len(sleeps) == loki_module.MAX_ATTEMPTS - 1

    def test_credentials_in_the_url_are_never_shown(self) -> None:
        """A loki.url with user:password in it is shown without them."""
        port = free_port()
        with pytest.raises(BackendUnavailable) as caught:
            client(f"http://admin:pw-in-url@127.0.0.1:{port}").labels()
        assert "pw-in-url" not in caught.value.message
        assert "admin" not in caught.value.message


class TestDeadlines:
    def test_a_stalled_loki_is_reported_before_the_deadline(self, loki: LokiSandbox) -> None:
        """A query Loki takes and never answers fails by name, a little before the deadline."""
        loki.stall(30)
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="did not answer within") as caught:
            client(loki.url).labels(deadline=started + 1.5)
        elapsed = time.monotonic() - started
        waited = re.search(r"did not answer within ([0-9.]+)s", caught.value.message)
        assert waited is not None
        assert float(waited.group(1)) < 1.5  # the wait it gave Loki ends before the deadline
        assert elapsed < 1.5 + 3.0  # and it gave up then: room for a busy machine, far from the 30 s stall

    def test_no_time_left_means_no_request(self, loki: LokiSandbox) -> None:
        """With the deadline (almost) passed, the client does not start a request it cannot finish."""
        before = len(loki.seen)
        with pytest.raises(DeadlineExceeded):
            client(loki.url).labels(deadline=time.monotonic() + 0.1)
        assert len(loki.seen) == before

    def test_ready_is_false_for_a_down_loki_and_never_raises(self) -> None:
        """/ready on a closed port is simply not ready."""
        assert client(f"http://127.0.0.1:{free_port()}").ready() is False

    def test_ready_is_true_for_the_stand_in(self, loki: LokiSandbox) -> None:
        """/ready answers 200."""
        assert client(loki.url).ready() is True


def test_requests_exceptions_are_not_project_errors() -> None:
    """The client's errors are the project's; no requests exception class is one of them."""
    assert not issubclass(BotError, requests.RequestException)
    assert not issubclass(requests.RequestException, BotError)
