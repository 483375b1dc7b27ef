# syntax=docker/dockerfile:1
# svcbot: build the wheels in one stage, install them into a slim runtime without compilers or build tools.
#
#   docker build -t svcbot:0.1.0 --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) .
#   docker run --read-only --tmpfs /tmp -v svcbot-data:/data -e SLACK_BOT_TOKEN -e SLACK_APP_TOKEN \
#     -v "$PWD/catalog.yaml:/etc/svcbot/catalog.yaml:ro" -e SVCBOT_CATALOG=/etc/svcbot/catalog.yaml svcbot:0.1.0
#
# The root filesystem may be read-only: svcbot writes only to /data (the SQLite store; HOME) and TMPDIR.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY commands ./commands
COPY sandbox ./sandbox
# svcbot's own wheel plus a wheel of every dependency: the runtime installs offline from this folder.
# Every dependency ships a py3 or manylinux wheel, so nothing is compiled (and slim has no compiler).
RUN pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="svcbot" \
      org.opencontainers.image.description="Slack ChatOps for microservices on Kubernetes with Grafana Loki" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.documentation="docs/operations.md"

# HOME and the working directory are /data so nothing tries to write under / ; TMPDIR is /tmp, which the
# chart mounts as an emptyDir (with `docker run --read-only`, add --tmpfs /tmp; Python's tempfile falls
# back to the working directory otherwise).
ENV PATH=/opt/svcbot/bin:$PATH \
    HOME=/data \
    TMPDIR=/tmp \
    SVCBOT_DB=/data/svcbot.db \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# A fixed uid/gid (10001) that matches the chart's runAsUser, so runAsNonRoot can verify it numerically.
RUN groupadd --system --gid 10001 svcbot \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin svcbot \
 && mkdir -p /data \
 && chown 10001:10001 /data \
 && chmod 0750 /data

# Installed from the build stage's wheels, mounted for this step only, so they leave no layer behind.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/svcbot \
 && /opt/svcbot/bin/pip install --no-index --find-links=/wheels svcbot \
 && /opt/svcbot/bin/pip uninstall --yes pip \
 && /opt/svcbot/bin/svcbot --help > /dev/null

WORKDIR /data
USER 10001:10001
EXPOSE 3000 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
# `svcbot serve` by default; other subcommands with `docker run IMAGE check --catalog ...`.
# svcbot is PID 1 and handles SIGTERM itself (readiness goes false, running commands finish).
ENTRYPOINT ["svcbot"]
CMD ["serve"]
