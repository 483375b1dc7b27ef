"""Signed Slack requests already seen, so a replay of the same signed bytes is refused across replicas.

Slack signs a timestamp and the body together, and a signature older than 5 minutes is refused anyway
(bot/slack/serving.py), so remembering each signature for REPLAY_WINDOW is enough: the same bytes re-sent
inside the window find their signature here and are not run again. One INSERT per remembered request (the
primary key decides, on SQLite and PostgreSQL alike); rows older than the window are deleted now and then
in the same transaction.
"""

from __future__ import annotations

import random
import time

from bot.deploys.store.database import Database

REPLAY_WINDOW = 300.0  # seconds: Slack's own limit on a signed request's age (reference/slack.md section 3)
KEEP = REPLAY_WINDOW + 60.0  # a little longer, for clocks that disagree by up to a minute
PRUNE_EVERY = 50  # on average, one remembered request in this many also deletes the expired rows

_prune = random.Random()  # noqa: S311 - when to prune, not a secret


def first_sight(database: Database, signature: str, *, now: float | None = None) -> bool:
    """Remember `signature`; True the first time it is seen (within KEEP seconds), False for a replay."""
    now = time.time() if now is None else now
    with database.transaction() as tx:
        added = tx.execute("INSERT INTO seen_requests (signature, seen_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                           (signature, now))
        if _prune.randrange(PRUNE_EVERY) == 0:
            tx.execute("DELETE FROM seen_requests WHERE seen_at < ?", (now - KEEP,))
    return added == 1


def forget_expired(database: Database, *, now: float | None = None) -> int:
    """Delete signatures older than KEEP seconds; how many went."""
    now = time.time() if now is None else now
    with database.transaction() as tx:
        return tx.execute("DELETE FROM seen_requests WHERE seen_at < ?", (now - KEEP,))
