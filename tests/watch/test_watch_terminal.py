"""`watch` in the terminal shell: incidents print between prompts as they open and resolve, until `unwatch`."""

from __future__ import annotations

import io
import threading

from watch_world import WatchWorld, wait_until

from bot.cli import demo_banner
from bot.terminal.shell import Shell


class Screen(io.StringIO):
    """What the shell printed, readable while it prints from other threads."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            return super().write(text)

    def text(self) -> str:
        with self.lock:
            return self.getvalue()


def test_terminal_watch_prints_incidents_until_unwatch(world: WatchWorld) -> None:
    """`watch payment dev` in the shell; a crashing image set with kubectl prints the incident above the prompt;
    the rollback prints its resolution; `unwatch` stops the printing."""
    screen = Screen()
    shell = Shell(world.running.bot.runtime.dispatcher, "U0ALICE", out=screen)
    try:
        shell.handle("watch payment dev")
        assert "this terminal now watches payment in dev" in screen.text()
        assert shell.incidents.running
        world.wait_watching("payment", "dev")
        world.kubectl("-n", "dev", "set", "image", "deployment/payment-api", "app=registry.example.com/payment:1.5.0")
        wait_until(lambda: "incident: payment in dev: crash loop" in screen.text(), 60, "the incident printed")
        world.kubectl("-n", "dev", "rollout", "undo", "deployment/payment-api")
        wait_until(lambda: "payment in dev (crash-loop): resolved after" in screen.text(), 60, "the resolution")
        assert screen.text().count("incident: payment in dev: crash loop") == 1
        shell.handle("unwatch payment dev")
        assert "this terminal no longer watches payment in dev" in screen.text()
        assert not shell.incidents.running
    finally:
        shell.incidents.stop()


def test_the_demo_banner_flow(world: WatchWorld) -> None:
    """The demo's watch flow as its banner tells it: `watch payment staging` in the shell, the banner's kubectl
    command (run as printed, against this sandbox) prints the crash loop, and `rollback payment staging` in the
    shell prints its resolution."""
    banner = demo_banner("demo.log", world.directory / "sandbox")
    command = next(line.strip() for line in banner.splitlines() if line.strip().startswith("kubectl "))
    assert "payment:1.5.0" in command
    screen = Screen()
    shell = Shell(world.running.bot.runtime.dispatcher, "U0ALICE", out=screen)
    try:
        shell.handle("watch payment staging")
        assert "this terminal now watches payment in staging" in screen.text()
        world.wait_watching("payment", "staging")
        world.kubectl_as_printed(command)
        wait_until(lambda: "incident: payment in staging: crash loop" in screen.text(), 60, "the incident printed")
        shell.handle("rollback payment staging")
        wait_until(lambda: "payment in staging (crash-loop): resolved after" in screen.text(), 60,
                   "the resolution printed")
        assert screen.text().count("incident: payment in staging: crash loop") == 1
        requests = world.running.bot.runtime.deploys.store().requests(service="payment", env="staging")
        assert [request.kind for request in requests] == ["rollback"]
    finally:
        shell.handle("unwatch payment staging")
        shell.incidents.stop()
