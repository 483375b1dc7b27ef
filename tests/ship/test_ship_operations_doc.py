"""docs/operations.md stays current: it names every metric svcbot exports and every alert the chart ships,
and the files it points to exist."""

from __future__ import annotations

import re

import pytest
from prometheus_client import Counter
from prometheus_client.metrics import MetricWrapperBase
from ship_chart import CHART, ROOT

from bot.core import metrics

DOC = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")


def exported_metric_names() -> list[str]:
    names = []
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            name = value._name  # the registered name; prometheus_client has no public getter
            names.append(f"{name}_total" if isinstance(value, Counter) else name)
    return sorted(names)


def test_every_metric_is_documented() -> None:
    """Each metric bot/core/metrics.py defines appears in the metrics table under its exported name."""
    names = exported_metric_names()
    assert names, "bot/core/metrics.py defines no metric"
    assert [name for name in names if f"`{name}" not in DOC] == []


def test_every_alert_is_documented() -> None:
    """Each alert in the chart's PrometheusRule template has a row in the alerts table."""
    template = (CHART / "templates" / "prometheusrule.yaml").read_text(encoding="utf-8")
    alerts = re.findall(r"alert: (\w+)", template)
    assert alerts
    assert [alert for alert in alerts if alert not in DOC] == []


@pytest.mark.parametrize("path", sorted(set(re.findall(r"`((?:examples|slack|helm|docs|scripts)/[\w./*-]+)`", DOC))))
def test_referenced_files_exist(path: str) -> None:
    """Every repository path the guide mentions exists (a wildcard matches at least one file)."""
    matches = list(ROOT.glob(path)) if "*" in path else [ROOT / path]
    assert any(match.exists() for match in matches), path
