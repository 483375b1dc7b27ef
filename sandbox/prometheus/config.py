"""DIR/prometheus.yml: a scrape configuration with which a REAL Prometheus (2.x) scrapes the sandbox's pods
the way the stand-in does, through each cluster's API server pod proxy
(https://127.0.0.1:<port>/api/v1/namespaces/<ns>/pods/<pod>:<port>/proxy/metrics) as the sandbox admin
(bearer token from DIR/prometheus/admin.token, mode 0600) trusting the sandbox CA (DIR/prometheus/ca.pem),
its targets discovered from the stand-in's /sandbox/http_sd (refreshed often, so a rollout's new pods are
found), labelled job, instance, cluster, namespace, pod and app as the stand-in labels them.

    prometheus --config.file DIR/prometheus.yml --storage.tsdb.path /tmp/x --web.listen-address 127.0.0.1:9099
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sandbox.prometheus.scraper import JOB

if TYPE_CHECKING:
    from sandbox.kube import KubeSandbox


def _duration(seconds: float) -> str:
    """Prometheus' duration syntax: whole milliseconds ('1s', '500ms')."""
    ms = max(round(seconds * 1000), 1)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def config(sd_url: str, ca_file: Path, token_file: Path, interval: float) -> dict[str, Any]:
    every = _duration(interval)
    return {
        "global": {"scrape_interval": every, "evaluation_interval": every},
        "scrape_configs": [{
            "job_name": JOB,
            "scrape_interval": every,
            "scrape_timeout": every,
            "scheme": "https",  # each target's __scheme__ says so too
            "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
            "tls_config": {"ca_file": str(ca_file)},
            "http_sd_configs": [{"url": sd_url, "refresh_interval": _duration(max(interval, 1.0))}],
        }],
    }


def write_config(directory: Path, kube: KubeSandbox, sd_url: str, interval: float) -> Path:
    directory = Path(directory)
    secrets = directory / "prometheus"
    secrets.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_file = kube.auth.write_ca(secrets / "ca.pem")
    token_file = secrets / "admin.token"
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(kube.auth.admin_token)
    token_file.chmod(0o600)
    path = directory / "prometheus.yml"
    header = ("# A scrape configuration for a real Prometheus (2.x) over the sandbox's pods, written by\n"
              "# svcbot sandbox at each start (edits are lost). Run: prometheus --config.file THIS \\\n"
              "#   --storage.tsdb.path /tmp/prom --web.listen-address 127.0.0.1:9099   (sandbox/seed/README.md)\n")
    path.write_text(header + yaml.safe_dump(config(sd_url, ca_file.resolve(), token_file.resolve(), interval),
                                            sort_keys=False), encoding="utf-8")
    return path
