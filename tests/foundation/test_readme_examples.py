"""Every example the README's command table and `/svc help` show gives a meaningful answer in the demo world:
exit 0, not empty, not "nothing found". The examples are read from README.md and from the registry, so the
documentation and the demo can never drift apart. Read-only examples share one world; each mutating example
gets a fresh one (an example with a request id runs after creating the request it decides)."""

from __future__ import annotations

import os
import re
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.runtime import Runtime, build_runtime
from bot.terminal.shell import render_reply
from commands import ALL
from sandbox.stack import SandboxStack

ROOT = Path(__file__).resolve().parents[2]
ALICE, CAROL = "U0ALICE", "U0CAROL"  # on-call (requests deploys), release manager (approves prod)
MUTATING = {command.name for command in ALL if command.mutates}
# What an answer that found nothing says in its headline (logs, trace, history).
NOTHING = re.compile(r"\bno lines|nothing found|no deploys recorded|no revisions|not found|\b0 lines", re.IGNORECASE)
TIME_SCALE = 0.05  # rollouts in the sandbox at 20x real time: a rollback example ends in a second or two


def readme_examples() -> list[str]:
    """The example column of README.md's command table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    examples = []
    for row in table.splitlines():
        cells = [cell.strip() for cell in row.replace("\\|", "/").strip().strip("|").split("|")]  # \| in a cell
        if len(cells) >= 3 and cells[1].startswith("`/svc "):
            examples.append(cells[1].strip("`").removeprefix("/svc "))
    return examples


def help_examples() -> list[str]:
    """The examples `/svc help <verb>` shows, from the registry."""
    return [example.removeprefix("/svc ") for command in ALL for example in command.examples]


EXAMPLES = sorted(set(readme_examples()) | set(help_examples()))


def test_the_readme_has_examples_for_every_verb() -> None:
    """The table names an example for each verb of the registry (approve/reject/cancel share one row)."""
    verbs = {shlex.split(example)[0] for example in readme_examples()}
    assert {command.name for command in ALL} - verbs <= {"reject", "cancel"}


class World:
    """A sandbox world (Kubernetes, Loki and Slack stand-ins with the demo's seed) and a runtime on it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.stack = SandboxStack.everything()
        self.stack.start(directory, time_scale=TIME_SCALE)
        self.runtime: Runtime = build_runtime(directory / "catalog.yaml")

    def run(self, text: str, user: str = ALICE) -> tuple[int, str]:
        # As the demo does: the world's kubeconfig and its own store (each test starts with a clean environment).
        os.environ["KUBECONFIG"] = str(self.directory / "kubeconfig")
        os.environ["SVCBOT_DB"] = str(self.directory / "svcbot.db")
        reply = self.runtime.dispatcher.execute(text, user, source="terminal", follow_runs=True,
                                                deadline=time.monotonic() + 60)
        return reply.outcome.exit_code, render_reply(reply)

    def close(self) -> None:
        self.runtime.close()
        self.stack.stop()


@pytest.fixture(name="world_at")
def _world_at() -> Iterator[type[World]]:
    worlds: list[World] = []

    class Tracked(World):
        def __init__(self, directory: Path) -> None:
            super().__init__(directory)
            worlds.append(self)

    yield Tracked
    for world in worlds:
        world.close()


@pytest.fixture(name="shared_world", scope="module")
def _shared_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    world = World(tmp_path_factory.mktemp("readme-world"))
    yield world
    world.close()


def assert_meaningful(example: str, code: int, text: str) -> None:
    assert code == 0, f"{example!r} exited {code}:\n{text}"
    assert text.strip(), f"{example!r} answered nothing"
    headline = "\n".join(text.strip().splitlines()[:3])
    assert not NOTHING.search(headline), f"{example!r} found nothing:\n{text}"


@pytest.mark.parametrize("example", [example for example in EXAMPLES if shlex.split(example)[0] not in MUTATING])
def test_read_only_example(example: str, shared_world: World) -> None:
    """A read-only example answers something useful in the demo world."""
    code, text = shared_world.run(example)
    assert_meaningful(example, code, text)


@pytest.mark.parametrize("example", [example for example in EXAMPLES if shlex.split(example)[0] in MUTATING])
def test_mutating_example(example: str, world_at: type[World], tmp_path: Path) -> None:
    """A mutating example, in a fresh world; one that decides a request runs after creating it."""
    world = world_at(tmp_path / "world")
    verb, *words = shlex.split(example)
    user = ALICE
    if verb in {"approve", "reject", "cancel"}:
        code, text = world.run("deploy payment prod 1.4.2")
        assert code == 0, text
        request_id = re.search(r"\b([0-9a-f]{8})\b", text)
        assert request_id is not None, text
        example = shlex.join([verb, request_id.group(1), *words[1:]])
        user = ALICE if verb == "cancel" else CAROL
    code, text = world.run(example, user)
    assert_meaningful(example, code, text)
