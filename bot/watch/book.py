"""The watch's book in the store: channels' subscriptions, incidents, and what each incident's messages owe Slack.

Tables (migration 4, bot/deploys/store/migrations.py): `watches` (channel, service or `*`, env or `*`),
`incidents` (one row per incident; at most one `open` per service, environment and kind, enforced by a
partial unique index, so two replicas that both saw a crash loop open it once), `incident_pending` (migration 5:
trouble waiting for `group_wait`, from when it was first seen), `incident_posts` (one per
incident and subscribed channel: the message's ts once posted, the incident version it shows, the last
thread line sent) and `incident_lines` (the thread's lines). The posts table is the incidents' outbox: what
is owed is what a post has not shown yet, so a process that dies before Slack answered leaves it owed, and
whichever process leads next sends it (bot/slack/incidents.py).

Every change is one transaction; opening checks for an open incident of the same key inside it, and a
resolved one within the re-open window is re-opened (same id, same thread) instead of a new one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.errors import Conflict
from bot.deploys.store import Store, Transaction, new_id

ALL = "*"  # a subscription's service or env meaning "every one"
OPEN = "open"
RESOLVED = "resolved"
UNTIL_RESOLVED = 1e15  # silenced_until for "until resolved"
GIVEN_UP = 2**31 - 1  # shown_version and last_line of a post Slack will not take (fits INTEGER on both engines)
TERMINAL = "terminal:"  # a terminal session's "channel" (terminal:<user>): the shell prints, Slack never posts


def terminal_channel(user: str) -> str:
    return f"{TERMINAL}{user}"


@dataclass(frozen=True)
class Subscription:
    channel: str
    service: str  # a service name or ALL
    env: str  # an environment name or ALL
    created_by: str
    created_at: float

    def covers(self, service: str, env: str) -> bool:
        return self.service in (ALL, service) and self.env in (ALL, env)


@dataclass(frozen=True)
class Incident:
    id: str
    service: str
    env: str
    kind: str
    state: str
    facts: Mapping[str, Any]
    fingerprint: str
    opened_at: float
    updated_at: float
    resolved_at: float | None
    silenced_until: float | None
    silenced_by: str
    reopened: int
    version: int

    @property
    def open(self) -> bool:
        return self.state == OPEN

    def silenced(self, now: float) -> bool:
        return self.silenced_until is not None and now < self.silenced_until

    @property
    def duration(self) -> float | None:
        return None if self.resolved_at is None else max(0.0, self.resolved_at - self.opened_at)


@dataclass(frozen=True)
class Post:
    """One incident's message in one channel: what it shows and what it still owes."""

    incident_id: str
    channel: str
    ts: str  # empty until the top-level message is posted
    shown_version: int
    last_line: int
    shown_at: float | None


@dataclass(frozen=True)
class Line:
    id: int
    incident_id: str
    text: str
    at: float


class Book:
    """The watch's tables on a store (its Database seam)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.database = store.database

    # --- subscriptions ------------------------------------------------------------------------------

    def subscribe(self, channel: str, service: str, env: str, user: str, *, now: float | None = None) -> bool:
        """True when the channel was not subscribed to exactly this yet."""
        with self.database.transaction() as tx:
            changed = tx.execute("INSERT INTO watches (channel, service, env, created_by, created_at) "
                                 "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                                 (channel, service, env, user, time.time() if now is None else now))
        return changed > 0

    def unsubscribe(self, channel: str, service: str, env: str) -> int:
        """Drop the channel's subscription (env ALL: every env of that service); how many went."""
        with self.database.transaction() as tx:
            if env == ALL:
                return tx.execute("DELETE FROM watches WHERE channel = ? AND service = ?", (channel, service))
            return tx.execute("DELETE FROM watches WHERE channel = ? AND service = ? AND env = ?",
                              (channel, service, env))

    def subscriptions(self, channel: str | None = None) -> list[Subscription]:
        sql = "SELECT * FROM watches" + (" WHERE channel = ?" if channel is not None else "")  # noqa: S608 - fixed
        with self.database.transaction(write=False) as tx:
            rows = tx.query(sql + " ORDER BY channel, service, env", (channel,) if channel is not None else ())
        return [Subscription(channel=str(row["channel"]), service=str(row["service"]), env=str(row["env"]),
                             created_by=str(row["created_by"]), created_at=float(row["created_at"]))
                for row in rows]

    # --- incidents ----------------------------------------------------------------------------------

    def open_incident(self, service: str, env: str, kind: str, *, facts: Mapping[str, Any], fingerprint: str,
                      channels: Sequence[str], reopen_window: float, now: float | None = None) -> Incident | None:
        """Open an incident (or re-open the same key's, resolved less than `reopen_window` ago); None when one
        is open already (another replica, or an earlier pass, opened it). Each channel gets a post owed."""
        now = time.time() if now is None else now
        try:
            with self.database.transaction() as tx:
                if tx.query("SELECT id FROM incidents WHERE service = ? AND env = ? AND kind = ? AND state = ?",
                            (service, env, kind, OPEN)):
                    return None
                recent = tx.query("SELECT * FROM incidents WHERE service = ? AND env = ? AND kind = ? "
                                  "AND state = ? AND resolved_at >= ? ORDER BY resolved_at DESC",
                                  (service, env, kind, RESOLVED, now - reopen_window))
                if recent:
                    incident_id = str(recent[0]["id"])
                    tx.execute("UPDATE incidents SET state = ?, facts = ?, fingerprint = ?, updated_at = ?, "
                               "resolved_at = NULL, reopened = reopened + 1, version = version + 1 WHERE id = ?",
                               (OPEN, json.dumps(dict(facts)), fingerprint, now, incident_id))
                    silenced_until = recent[0]["silenced_until"]
                    # Silenced (an hour, or until it resolves for good: a flap within the re-open window is the
                    # same incident): the message shows it open again, the thread stays quiet.
                    if silenced_until is None or now >= float(silenced_until):
                        self._line(tx, incident_id, "re-opened: " + str(facts.get("summary", "")), now)
                else:
                    incident_id = new_id()
                    tx.execute("INSERT INTO incidents (id, service, env, kind, state, facts, fingerprint, opened_at, "
                               "updated_at, resolved_at, silenced_until, silenced_by, reopened, version) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, '', 0, 1)",
                               (incident_id, service, env, kind, OPEN, json.dumps(dict(facts)), fingerprint, now, now))
                for channel in channels:
                    tx.execute("INSERT INTO incident_posts (incident_id, channel, ts, shown_version, last_line, "
                               "shown_at) VALUES (?, ?, '', 0, 0, NULL) ON CONFLICT DO NOTHING",
                               (incident_id, channel))
                rows = tx.query("SELECT * FROM incidents WHERE id = ?", (incident_id,))
        except Conflict:
            return None  # another replica opened it between our look and our insert (the unique index)
        return _incident(rows[0])

    def update_incident(self, incident_id: str, facts: Mapping[str, Any], fingerprint: str, line: str = "", *,
                        channels: Sequence[str] = (), now: float | None = None) -> bool:
        """New facts for an open incident (its message is updated in place); `line` also goes to its thread;
        `channels` not posted to yet (a storm's late member watched elsewhere) get the message owed."""
        now = time.time() if now is None else now
        with self.database.transaction() as tx:
            changed = tx.execute("UPDATE incidents SET facts = ?, fingerprint = ?, updated_at = ?, "
                                 "version = version + 1 WHERE id = ? AND state = ?",
                                 (json.dumps(dict(facts)), fingerprint, now, incident_id, OPEN))
            if changed and line:
                self._line(tx, incident_id, line, now)
            if changed:
                for channel in channels:
                    tx.execute("INSERT INTO incident_posts (incident_id, channel, ts, shown_version, last_line, "
                               "shown_at) VALUES (?, ?, '', 0, 0, NULL) ON CONFLICT DO NOTHING",
                               (incident_id, channel))
        return changed > 0

    def resolve_incident(self, incident_id: str, line: str, *, now: float | None = None) -> bool:
        """Mark an open incident resolved (once: the UPDATE is conditional); `line` goes to its thread."""
        now = time.time() if now is None else now
        with self.database.transaction() as tx:
            changed = tx.execute("UPDATE incidents SET state = ?, resolved_at = ?, updated_at = ?, "
                                 "version = version + 1 WHERE id = ? AND state = ?",
                                 (RESOLVED, now, now, incident_id, OPEN))
            if changed:
                self._line(tx, incident_id, line, now)
        return changed > 0

    def silence(self, incident_id: str, until: float, user: str, *, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        with self.database.transaction() as tx:
            changed = tx.execute("UPDATE incidents SET silenced_until = ?, silenced_by = ?, version = version + 1, "
                                 "updated_at = ? WHERE id = ?", (until, user, now, incident_id))
        return changed > 0

    def incident(self, incident_id: str) -> Incident | None:
        with self.database.transaction(write=False) as tx:
            rows = tx.query("SELECT * FROM incidents WHERE id = ?", (incident_id,))
        return _incident(rows[0]) if rows else None

    def incidents(self, *, state: str | None = OPEN, limit: int = 500) -> list[Incident]:
        where = " WHERE state = ?" if state else ""
        sql = f"SELECT * FROM incidents{where} ORDER BY opened_at DESC LIMIT ?"  # noqa: S608 - fixed text
        with self.database.transaction(write=False) as tx:
            rows = tx.query(sql, (state, limit) if state else (limit,))
        return [_incident(row) for row in rows]

    # --- trouble waiting for `group_wait` -------------------------------------------------------------

    def pending(self) -> dict[tuple[str, str, str], float]:
        """(service, env, kind) -> when it was first seen, of trouble not announced yet."""
        with self.database.transaction(write=False) as tx:
            rows = tx.query("SELECT * FROM incident_pending")
        return {(str(row["service"]), str(row["env"]), str(row["kind"])): float(row["first_seen"]) for row in rows}

    def note_pending(self, seen: Mapping[tuple[str, str, str], float], gone: Iterable[tuple[str, str, str]]) -> None:
        """Trouble first seen now (a key already noted keeps its time), and trouble no longer waiting."""
        with self.database.transaction() as tx:
            for (service, env, kind), at in seen.items():
                tx.execute("INSERT INTO incident_pending (service, env, kind, first_seen) VALUES (?, ?, ?, ?) "
                           "ON CONFLICT DO NOTHING", (service, env, kind, at))
            for service, env, kind in gone:
                tx.execute("DELETE FROM incident_pending WHERE service = ? AND env = ? AND kind = ?",
                           (service, env, kind))

    @staticmethod
    def _line(tx: Transaction, incident_id: str, text: str, now: float) -> None:
        tx.execute("INSERT INTO incident_lines (incident_id, text, at) VALUES (?, ?, ?)", (incident_id, text, now))

    # --- what Slack is owed -------------------------------------------------------------------------

    def owed(self, limit: int = 200, *, channel: str | None = None) -> list[tuple[Post, Incident, list[Line]]]:
        """Posts whose message is not posted, shows an older version, or whose thread lacks lines: Slack's (the
        channel not given: every channel but terminals'), or one channel's (a terminal's)."""
        one = " AND p.channel = ?" if channel is not None else ""
        params: tuple[object, ...] = (channel, limit) if channel is not None else (limit,)
        # Fixed text and ? marks only.
        sql = (
            "SELECT p.incident_id AS p_incident_id, p.channel AS p_channel, p.ts AS p_ts, "  # noqa: S608
            "p.shown_version AS p_shown_version, p.last_line AS p_last_line, p.shown_at AS p_shown_at, i.* "
            "FROM incident_posts p JOIN incidents i ON i.id = p.incident_id "
            "WHERE (p.ts = '' OR p.shown_version < i.version OR p.last_line < "
            "(SELECT COALESCE(MAX(l.id), 0) FROM incident_lines l WHERE l.incident_id = p.incident_id)) "
            f"{one} ORDER BY i.opened_at LIMIT ?")
        with self.database.transaction(write=False) as tx:
            rows = tx.query(sql, params)
            out = []
            for row in rows:
                if channel is None and str(row["p_channel"]).startswith(TERMINAL):
                    continue
                lines = tx.query("SELECT * FROM incident_lines WHERE incident_id = ? AND id > ? ORDER BY id",
                                 (row["id"], row["p_last_line"]))
                post = Post(incident_id=str(row["p_incident_id"]), channel=str(row["p_channel"]), ts=str(row["p_ts"]),
                            shown_version=int(row["p_shown_version"]), last_line=int(row["p_last_line"]),
                            shown_at=None if row["p_shown_at"] is None else float(row["p_shown_at"]))
                out.append((post, _incident(row), [Line(id=int(line["id"]), incident_id=str(line["incident_id"]),
                                                        text=str(line["text"]), at=float(line["at"]))
                                                   for line in lines]))
        return out

    def posted(self, incident_id: str, channel: str, ts: str) -> None:
        """The top-level message exists (set once: a second poster's ts is not taken)."""
        with self.database.transaction() as tx:
            tx.execute("UPDATE incident_posts SET ts = ? WHERE incident_id = ? AND channel = ? AND ts = ''",
                       (ts, incident_id, channel))

    def shown(self, incident_id: str, channel: str, *, version: int | None = None, last_line: int | None = None,
              now: float | None = None) -> None:
        sets, params = [], []
        if version is not None:
            sets += ["shown_version = ?", "shown_at = ?"]
            params += [version, time.time() if now is None else now]
        if last_line is not None:
            sets.append("last_line = ?")
            params.append(last_line)
        if not sets:
            return
        with self.database.transaction() as tx:
            tx.execute(f"UPDATE incident_posts SET {', '.join(sets)} "  # noqa: S608 - fixed column names
                       "WHERE incident_id = ? AND channel = ?", (*params, incident_id, channel))

    def abandon(self, incident_id: str, channel: str) -> None:
        """Slack will not take this post (the bot left the channel): nothing more is owed to it."""
        with self.database.transaction() as tx:
            tx.execute("UPDATE incident_posts SET ts = CASE WHEN ts = '' THEN '-' ELSE ts END, shown_version = ?, "
                       "last_line = ? WHERE incident_id = ? AND channel = ?",
                       (GIVEN_UP, GIVEN_UP, incident_id, channel))

    def posts(self, incident_id: str) -> list[Post]:
        with self.database.transaction(write=False) as tx:
            rows = tx.query("SELECT * FROM incident_posts WHERE incident_id = ? ORDER BY channel", (incident_id,))
        return [Post(incident_id=str(row["incident_id"]), channel=str(row["channel"]), ts=str(row["ts"]),
                     shown_version=int(row["shown_version"]), last_line=int(row["last_line"]),
                     shown_at=None if row["shown_at"] is None else float(row["shown_at"])) for row in rows]

    def lines(self, incident_id: str) -> list[Line]:
        with self.database.transaction(write=False) as tx:
            rows = tx.query("SELECT * FROM incident_lines WHERE incident_id = ? ORDER BY id", (incident_id,))
        return [Line(id=int(row["id"]), incident_id=str(row["incident_id"]), text=str(row["text"]),
                     at=float(row["at"])) for row in rows]

    def incident_by_message(self, channel: str, ts: str) -> Incident | None:
        with self.database.transaction(write=False) as tx:
            rows = tx.query("SELECT i.* FROM incident_posts p JOIN incidents i ON i.id = p.incident_id "
                            "WHERE p.channel = ? AND p.ts = ?", (channel, ts))
        return _incident(rows[0]) if rows else None


def channels_for(subscriptions: Iterable[Subscription], service: str, env: str) -> list[str]:
    return sorted({sub.channel for sub in subscriptions if sub.covers(service, env)})


def _incident(row: Mapping[str, Any]) -> Incident:
    return Incident(
        id=str(row["id"]), service=str(row["service"]), env=str(row["env"]), kind=str(row["kind"]),
        state=str(row["state"]), facts=json.loads(str(row["facts"])), fingerprint=str(row["fingerprint"]),
        opened_at=float(row["opened_at"]), updated_at=float(row["updated_at"]),
        resolved_at=None if row["resolved_at"] is None else float(row["resolved_at"]),
        silenced_until=None if row["silenced_until"] is None else float(row["silenced_until"]),
        silenced_by=str(row["silenced_by"]), reopened=int(row["reopened"]), version=int(row["version"]))
