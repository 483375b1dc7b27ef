"""`watch` in the terminal shell: the incidents of what this terminal user watches, printed as they open, change
and resolve, between prompts (above the line being typed), until `unwatch`.

The subscription is the store's (channel `terminal:<os user>`, commands/watch.py), so it lasts across shell
sessions. A shell with a subscription runs a watcher of its own (bot/watch/watcher.py; nothing else may be
watching, as in `svcbot demo`), and prints what the store says its "channel" is owed: the incident's text
rendering when it opens, its thread lines as they come (changes, the resolution). Two watchers on one store
(a shell beside `svcbot serve`) open each incident once: the store's unique index decides.
"""

from __future__ import annotations

import threading
import time
from typing import TextIO

import structlog

from bot.core.errors import BotError
from bot.dispatch.dispatcher import Dispatcher
from bot.render import text as text_render
from bot.render.views import to_document
from bot.replies.watch import incident_reply
from bot.watch.book import Book, terminal_channel
from bot.watch.logs import error_lines
from bot.watch.watcher import Watcher

log = structlog.get_logger("svcbot.terminal")

POLL = 0.5
TERMINAL_TS = "terminal"  # the "message ts" of an incident printed in a terminal


class TerminalWatch:
    def __init__(self, dispatcher: Dispatcher, os_user: str, out: TextIO, *, prompt: str = "",
                 lock: threading.Lock | None = None, poll: float = POLL, interval: float = 1.0) -> None:
        self.dispatcher = dispatcher
        self.channel = terminal_channel(os_user)
        self.out = out
        self.prompt = prompt
        self.lock = lock or threading.Lock()
        self.poll = poll
        self.interval = interval
        self.printed = 0  # incidents and lines printed (tests)
        self._watcher: Watcher | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def book(self) -> Book:
        return Book(self.dispatcher.deploys.store())

    def sync(self) -> None:
        """Start when this terminal watches something, stop when it no longer does."""
        try:
            watching = bool(self.book().subscriptions(self.channel))
        except BotError as exc:
            log.warning("terminal.watch_unavailable", reason=exc.message)
            return
        if watching and not self.running:
            self.start()
        elif not watching and self.running:
            self.stop()

    def start(self) -> None:
        catalog = self.dispatcher.catalog
        backends = self.dispatcher.backends
        lines = error_lines(catalog, backends.loki) if catalog.loki is not None else None
        self._watcher = Watcher(catalog, self.dispatcher.deploys.store, backends.kube, error_lines=lines,
                                on_written=self.wake, interval=self.interval).start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="terminal-incidents", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        if self._thread is not None:
            self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._wake.set()
            self._thread.join(5)
        self._thread = None
        if self._watcher is not None:
            self._watcher.stop()
        self._watcher = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll)
            self._wake.clear()
            try:
                self.print_owed()
            except BotError as exc:
                log.warning("terminal.incidents_unreadable", reason=exc.message)
            except Exception:
                log.exception("terminal.incidents_failed")

    def print_owed(self) -> int:
        """Print what this terminal is owed; how many things were printed."""
        book = self.book()
        printed = 0
        for post, incident, lines in book.owed(channel=self.channel):
            text = ""
            if not post.ts:
                text = text_render.render(to_document(incident_reply(incident, time.time())))
                book.posted(incident.id, self.channel, TERMINAL_TS)
            elif lines:
                text = "".join(f"  ↳ {incident.service} in {incident.env} ({incident.kind}): {line.text}\n"
                               for line in lines)
            book.shown(incident.id, self.channel, version=incident.version,
                       last_line=lines[-1].id if lines else None)
            if text:
                self._print(text)
                printed += 1
        self.printed += printed
        return printed

    def _print(self, text: str) -> None:
        """Above the prompt: the line being typed is drawn again after it (readline's buffer)."""
        typed = ""
        try:
            import readline  # noqa: PLC0415 - optional

            typed = readline.get_line_buffer()
        except ImportError:
            pass
        with self.lock:
            self.out.write("\r" + text + (self.prompt + typed if self.prompt else ""))
            self.out.flush()
