"""Prometheus metrics, served on the health port's /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

COMMANDS = Counter("svcbot_commands", "Commands answered, by verb and outcome", ["verb", "outcome"])
COMMAND_SECONDS = Histogram(
    "svcbot_command_duration_seconds", "Time from dispatch to reply, by verb", ["verb"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60),
)
WORKERS_BUSY = Gauge("svcbot_workers_busy", "Worker threads running a command")
QUEUE_DEPTH = Gauge("svcbot_queue_depth", "Commands waiting for a worker")
COMMANDS_REJECTED = Counter("svcbot_commands_rejected", "Commands refused because the queue was full")
SLACK_CONNECTED = Gauge("svcbot_slack_connected", "1 when the Slack connection (Socket Mode) or listener is up")
CIRCUIT_STATE = Gauge("svcbot_circuit_state", "Circuit breaker per backend: 0 closed, 1 half-open, 2 open",
                      ["backend"])
CIRCUIT_REJECTED = Counter("svcbot_circuit_rejected", "Calls failed fast by an open circuit breaker", ["backend"])
