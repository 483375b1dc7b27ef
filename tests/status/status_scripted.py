"""A scripted HTTP answerer standing in for an API server, for the kube client's error-mapping tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class ScriptedApi:
    """A tiny HTTP server answering each request with the next scripted answer (or the default)."""

    url: str
    requests: list[str] = field(default_factory=list)
    answers: list[Answer | Callable[[str], Answer]] = field(default_factory=list)
    default: Answer = (200, {"Content-Type": "application/json"}, b"{}")

    def answer_json(self, obj: Any, status: int = 200, **headers: str) -> None:
        self.answers.append((status, {"Content-Type": "application/json", **headers}, json.dumps(obj).encode()))

    def answer_status(self, code: int, reason: str, message: str, **headers: str) -> None:
        self.answer_json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": message, "reason": reason, "code": code}, status=code, **headers)

    def next_answer(self, path: str) -> Answer:
        self.requests.append(path)
        if not self.answers:
            return self.default
        answer = self.answers.pop(0)
        return answer(path) if callable(answer) else answer
