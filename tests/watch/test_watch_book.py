"""The watch's book in the store (migration 4): subscriptions, one open incident per service, environment and kind
however many writers try, re-opening in the same thread within the window, and what Slack is owed. The same
tests on SQLite and, when SVCBOT_TEST_DATABASE_URL is set, PostgreSQL; `svcbot db copy` carries the tables."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from postgres_support import postgres_schema

from bot.deploys.store import Store
from bot.terminal.db import copy_database
from bot.watch.book import ALL, Book, channels_for, terminal_channel

FACTS = {"summary": "1 pod crash-looping", "lines": ["p-1: CrashLoopBackOff"], "pods": ["p-1"], "since": None}


@pytest.fixture(name="store", params=["sqlite", "postgresql"])
def _store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        store = Store.open(f"sqlite:///{tmp_path}/watch.db")
        yield store
        store.close()
        return
    with postgres_schema() as url:
        store = Store.open(url)
        yield store
        store.close()


def open_one(book: Book, **overrides: object) -> object:
    arguments = {"facts": FACTS, "fingerprint": "p-1", "channels": ["C1"], "reopen_window": 60.0, "now": 1000.0}
    arguments.update(overrides)
    return book.open_incident("payment", "prod", "crash-loop", **arguments)  # type: ignore[arg-type]


def test_subscriptions_cover_and_unsubscribe(store: Store) -> None:
    """A channel's subscriptions say which service and env they cover; `all` and every env are `*`."""
    book = Book(store)
    assert book.subscribe("C1", "payment", ALL, "U1")
    assert not book.subscribe("C1", "payment", ALL, "U1")  # already
    assert book.subscribe("C2", ALL, "prod", "U2")
    subscriptions = book.subscriptions()
    assert channels_for(subscriptions, "payment", "prod") == ["C1", "C2"]
    assert channels_for(subscriptions, "orders", "prod") == ["C2"]
    assert channels_for(subscriptions, "orders", "dev") == []
    assert book.unsubscribe("C1", "payment", ALL) == 1
    assert [sub.channel for sub in book.subscriptions()] == ["C2"]


def test_one_open_incident_per_key_across_writers(store: Store) -> None:
    """Eight threads open the same incident at once: one succeeds, the others see it open."""
    results: list[object] = []
    barrier = threading.Barrier(8)

    def opener() -> None:
        barrier.wait()
        results.append(open_one(Book(store)))

    threads = [threading.Thread(target=opener) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    opened = [result for result in results if result is not None]
    assert len(opened) == 1
    assert len(Book(store).incidents()) == 1


def test_reopen_within_window_keeps_the_thread(store: Store) -> None:
    """Resolved, then back within the window: the same incident (same id, same posts), re-opened with a line;
    back after the window: a new incident."""
    book = Book(store)
    first = book.open_incident("payment", "prod", "crash-loop", facts=FACTS, fingerprint="p-1", channels=["C1"],
                               reopen_window=60.0, now=1000.0)
    assert first is not None
    book.posted(first.id, "C1", "111.1")
    assert book.resolve_incident(first.id, "resolved after 1m", now=1060.0)
    assert not book.resolve_incident(first.id, "again", now=1061.0)  # once
    again = open_one(book, now=1100.0)
    assert again is not None
    assert again.id == first.id  # type: ignore[attr-defined]
    assert [post.ts for post in book.posts(first.id)] == ["111.1"]
    assert [line.text for line in book.lines(first.id)][-1].startswith("re-opened")
    assert book.resolve_incident(first.id, "resolved", now=1200.0)
    later = open_one(book, now=1300.0)
    assert later is not None
    assert later.id != first.id  # type: ignore[attr-defined]


def test_owed_until_shown(store: Store) -> None:
    """A new incident owes its message; posted and shown, nothing is owed; a line or a new version is owed
    again. A terminal's posts are never Slack's."""
    book = Book(store)
    incident = book.open_incident("payment", "prod", "crash-loop", facts=FACTS, fingerprint="p-1",
                                  channels=["C1", terminal_channel("alice")], reopen_window=60.0, now=1000.0)
    assert incident is not None
    owed = book.owed()
    assert [(post.channel, post.ts) for post, _, _ in owed] == [("C1", "")]
    assert [post.channel for post, _, _ in book.owed(channel=terminal_channel("alice"))] == ["terminal:alice"]
    book.posted(incident.id, "C1", "222.2")
    book.shown(incident.id, "C1", version=incident.version, last_line=0)
    assert book.owed() == []
    assert book.update_incident(incident.id, {**FACTS, "summary": "2 pods"}, "p-1;p-2", "now: 2 pods", now=1010.0)
    [(post, current, lines)] = book.owed()
    assert (post.ts, current.version, [line.text for line in lines]) == ("222.2", 2, ["now: 2 pods"])
    assert book.incident_by_message("C1", "222.2") is not None


def test_db_copy_carries_the_watch_tables(tmp_path: Path) -> None:
    """`svcbot db copy` moves subscriptions, incidents, their posts and lines to another store."""
    source = Store.open(f"sqlite:///{tmp_path}/a.db")
    target = Store.open(f"sqlite:///{tmp_path}/b.db")
    try:
        book = Book(source)
        book.subscribe("C1", "payment", ALL, "U1")
        incident = open_one(book)
        assert incident is not None
        book.update_incident(incident.id, FACTS, "p-2", "now: p-2")  # type: ignore[attr-defined]
        counts = copy_database(source.database, target.database)
        assert (counts["watches"], counts["incidents"], counts["incident_posts"], counts["incident_lines"]) == \
            (1, 1, 1, 1)
        copied = Book(target)
        assert copied.incident(incident.id) == book.incident(incident.id)  # type: ignore[attr-defined]
        assert copied.lines(incident.id) == book.lines(incident.id)  # type: ignore[attr-defined]
    finally:
        source.close()
        target.close()


def test_abandoned_post_is_owed_nothing(store: Store) -> None:
    """A post Slack will not take (the bot left the channel) is given up: no longer owed, even after changes."""
    book = Book(store)
    incident = book.open_incident("payment", "prod", "crash-loop", facts=FACTS, fingerprint="p-1", channels=["C1"],
                                  reopen_window=60.0, now=1000.0)
    assert incident is not None
    book.abandon(incident.id, "C1")
    assert book.owed() == []
    book.update_incident(incident.id, {**FACTS, "summary": "2 pods"}, "p-1;p-2", "now: 2 pods", now=1010.0)
    assert book.owed() == []
