"""`http`: one request to an external system (trigger a CI job) that must answer with the expected status.

Not retried: a POST that triggers a build must not trigger two. Header values are never shown (they
usually carry a token); a failure shows the status and the start of the answer.
"""

from __future__ import annotations

import requests

from bot.deploys.steps.base import Args, StepCancelled, StepContext, StepFailed, Workload, duration_text, seconds

BODY_SHOWN = 256  # characters of an unexpected answer kept in the failure


def execute(args: Args, ctx: StepContext) -> str:
    if ctx.cancelled():
        raise StepCancelled
    method = str(args.get("method") or "POST")
    url = str(args["url"])
    expected = int(args.get("expect_status") or 200)
    timeout = seconds(args.get("timeout"), 30.0)
    headers = {str(key): str(value) for key, value in (args.get("headers") or {}).items()}
    body = args.get("body")
    try:
        response = requests.request(method, url, headers=headers, json=body, timeout=(min(5.0, timeout), timeout),
                                    allow_redirects=False)
    except requests.Timeout as exc:
        raise StepFailed(f"{method} {url}: no answer within {duration_text(timeout)}") from exc
    except requests.RequestException as exc:
        raise StepFailed(f"{method} {url}: {type(exc).__name__}: {_short(str(exc))}") from exc
    text = response.text
    ctx.output.extend(text[-2000:])
    if response.status_code != expected:
        shown = f": {_short(text)}" if text.strip() else ""
        raise StepFailed(f"{method} {url} answered {response.status_code}, expected {expected}{shown}")
    return f"{method} {url} answered {response.status_code}"


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= BODY_SHOWN else text[: BODY_SHOWN - 1] + "…"


def describe(args: Args, _workload: Workload) -> str:
    method = str(args.get("method") or "POST")
    return f"{method} {args['url']} (expect {int(args.get('expect_status') or 200)})"
