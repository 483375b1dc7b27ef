"""`svcbot db upgrade` and `svcbot db copy`: a SQLite store moves to PostgreSQL (and back) whole, with its
ids, states, runs, steps, votes and audit trail; a copy refuses a non-empty target or an old source."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from postgres_support import postgres_schema
from replica_world import pending_request

from bot.deploys.store import SCHEMA_VERSION, Owner, Snapshot, State, StepSpec, StepState, Store

STEPS = [StepSpec("deploy", "set_image", "set image"), StepSpec("deploy", "wait_rollout", "wait")]


def fill(store: Store) -> list[str]:
    """Requests in many states, with a run, steps, votes and audit events; their ids."""
    finished = pending_request(store)
    store.add_vote(finished, "U0CAROL", "approve")
    store.transition(finished, State.APPROVED, actor="U0CAROL")
    store.claim_run(finished, STEPS, actor="U0CAROL", to_image="pay:2", from_image="pay:1")
    store.step_started(finished, 0)
    store.step_finished(finished, 0, StepState.SUCCEEDED, output="patched")
    store.set_run_facts(finished, from_revision=3, to_revision=4)
    store.finish_run(finished, State.SUCCEEDED)
    rejected = pending_request(store)
    store.add_vote(rejected, "U0DAVE", "reject", "not on a Friday")
    store.transition(rejected, State.REJECTED, actor="U0DAVE", reason="not on a Friday")
    waiting = pending_request(store, expires_at=time.time() + 3600)
    dead = Store(store.database, owner=Owner("old-pod", 7, "old-pod-7"), recover=False)
    running = pending_request(store)
    store.transition(running, State.APPROVED, actor="U0CAROL")
    dead.claim_run(running, STEPS, actor="U0CAROL")
    store.record("U0ALICE", "deploy.refused", detail={"reason": "lock held"})
    return [finished, rejected, waiting, running]


def contents(store: Store, ids: list[str]) -> tuple[list[Snapshot], list[object], list[object]]:
    return ([store.snapshot(i) for i in ids], [store.votes(i) for i in ids], list(store.audit(limit=1000)))


@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str


def svcbot(*args: str, env: dict[str, str] | None = None) -> Done:
    """`svcbot db ...` as its own process, as an operator runs it."""
    done = subprocess.run([sys.executable, "-m", "bot.cli", "db", *args], capture_output=True, text=True,
                          timeout=60, check=False, env={**os.environ, **(env or {})})
    return Done(done.returncode, done.stdout, done.stderr)


def test_upgrade_migrates_once_and_says_so(tmp_path: Path) -> None:
    """`db upgrade` brings a new store to the current schema and says so; a second run has nothing to do."""
    location = f"sqlite:///{tmp_path}/new.db"
    first = svcbot("upgrade", "--db", location)
    assert (first.code, first.err) == (0, "")
    assert first.out == f"SQLite at {tmp_path}/new.db: schema version 0 -> {SCHEMA_VERSION}\n"
    assert "up to date" in svcbot("upgrade", "--db", location).out


def test_upgrade_on_postgres_uses_svcbot_db() -> None:
    """Without --db, `db upgrade` takes SVCBOT_DB, here a PostgreSQL URL; the password never shows."""
    with postgres_schema() as url:
        done = svcbot("upgrade", env={"SVCBOT_DB": url})
        assert done.code == 0, done.err
        assert "PostgreSQL at" in done.out
        assert f"schema version 0 -> {SCHEMA_VERSION}" in done.out
        password = url.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
        assert not password or password not in done.out + done.err


def test_sqlite_store_moves_to_postgres_and_back_unchanged(tmp_path: Path) -> None:
    """SQLite -> PostgreSQL -> SQLite: every request, run, step, vote and audit event as it was, and the
    PostgreSQL store goes on numbering audit events after the copied ones."""
    source = Store.open(str(tmp_path / "old.db"))
    ids = fill(source)
    before = contents(source, ids)
    source.close()
    with postgres_schema() as url:
        done = svcbot("copy", "--from", f"sqlite:///{tmp_path}/old.db", "--to", url)
        assert done.code == 0, done.err
        assert "copied 4 requests, 2 runs, 4 steps, 2 votes" in done.out
        moved = Store.open(url, recover=False)
        assert contents(moved, ids) == before
        last = before[2][-1].id  # type: ignore[attr-defined]
        moved.record("U0ALICE", "after.copy")
        assert moved.audit(limit=1)[-1].id == last + 1
        assert moved.claim_run(ids[0], STEPS, actor="x") is False  # states keep their meaning
        moved.close()
        assert svcbot("copy", "--from", url, "--to", str(tmp_path / "back.db")).code == 0
    back = Store.open(str(tmp_path / "back.db"), recover=False)
    assert contents(back, ids)[:2] == before[:2]
    back.close()


def test_copy_refuses_a_target_that_holds_data(tmp_path: Path) -> None:
    """Copying into a store that already has requests is refused (exit 1), and the target is unchanged."""
    for name in ("a.db", "b.db"):
        store = Store.open(str(tmp_path / name))
        pending_request(store)
        store.close()
    done = svcbot("copy", "--from", str(tmp_path / "a.db"), "--to", str(tmp_path / "b.db"))
    assert done.code == 1
    assert "already holds 1 requests" in done.err
    assert len(Store.open(str(tmp_path / "b.db")).requests()) == 1


def test_copy_refuses_a_source_that_is_not_a_store(tmp_path: Path) -> None:
    """A SQLite file without svcbot's schema is refused with the command that would fix it."""
    sqlite3.connect(tmp_path / "empty.db").close()
    done = svcbot("copy", "--from", str(tmp_path / "empty.db"), "--to", str(tmp_path / "b.db"))
    assert done.code == 1
    assert "svcbot db upgrade" in done.err


def test_copy_to_an_unreachable_store_exits_2(tmp_path: Path) -> None:
    """A target nobody listens for: exit 2 with where it tried, never the password."""
    Store.open(str(tmp_path / "a.db")).close()
    done = svcbot("copy", "--from", str(tmp_path / "a.db"),
                  "--to", "postgresql://svcbot:hunter2@127.0.0.1:1/svcbot?connect_timeout=2")
    assert done.code == 2
    assert "127.0.0.1:1/svcbot" in done.err or "psycopg" in done.err
    assert "hunter2" not in done.out + done.err
