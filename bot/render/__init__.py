"""Rendering: Reply -> Document (views) -> Block Kit (slack.py) or plain text (text.py).

Importing this package registers every verb's view; each view module is listed here.
"""

from bot.render import (  # noqa: F401 - imported for their @view registrations
    approvals_view,
    deploy_view,
    diff_view,
    logs_view,
    metrics_view,
    probe_view,
    status_view,
    views,
    watch_view,
)
