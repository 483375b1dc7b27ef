"""Property: whatever two profiles hold, no secret reaches either rendering, not even four characters of it."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from diff_world import World, make_world
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.insight.configdiff import compare, flatten
from bot.insight.secrets import looks_secret_value
from bot.render.slack import render as render_slack
from bot.render.text import render as render_text
from bot.render.views import to_document
from bot.replies.diff import DiffReply, Drift

# Secret material uses upper case and digits; everything else the profiles hold is lower case and
# short numbers, so a four-character piece of a secret can only appear in the output if it leaked.
SECRET_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
WORDS = ("alpha", "bravo", "cache", "delta", "flag", "gamma", "host", "index", "level", "mode", "node",
         "queue", "route", "size", "timeout", "limit", "region", "zone", "retries", "pool")
SECRET_KEYS = ("password", "db_password", "api_key", "apiKey", "client_secret", "auth_token", "private_key",
               "sentry_dsn", "credentials", "passwd", "smtp-password")
WINDOW = 4

material = st.text(alphabet=SECRET_ALPHABET, min_size=WINDOW, max_size=24)
plain_values = st.one_of(st.sampled_from(WORDS), st.integers(0, 99), st.booleans(), st.none())
values_under_secret_keys = st.one_of(material, st.integers(10_000, 10**12))
secret_looking_values = st.one_of(
    st.builds(lambda scheme, user, password, host: f"{scheme}://{user}:{password}@{host}:5432/APP",
              st.sampled_from(["POSTGRES", "AMQP", "REDIS"]), material, material, material),
    st.builds(lambda body: f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----",
              st.text(alphabet=SECRET_ALPHABET, min_size=24, max_size=64)),
    st.builds(lambda a, b: f"xoxb-{a}-{b}", st.text(alphabet="0123456789", min_size=6, max_size=12),
              st.text(alphabet=SECRET_ALPHABET, min_size=12, max_size=24)),
    st.builds(lambda token: f"Bearer {token}", st.text(alphabet=SECRET_ALPHABET, min_size=12, max_size=40)),
    st.text(alphabet=SECRET_ALPHABET, min_size=24, max_size=48).filter(looks_secret_value),
)


KINDS = {
    # kind: (leaf key names, value strategy, secret?)
    "plain": (st.sampled_from(WORDS), plain_values, False),
    "secret key": (st.sampled_from(SECRET_KEYS), values_under_secret_keys, True),
    "secret value": (st.sampled_from(WORDS), secret_looking_values, True),
}


Pair = tuple[dict[str, Any], dict[str, Any], list[str]]


@st.composite
def profile_pair(draw: st.DrawFn) -> Pair:
    """Two nested profiles sharing some keys (same or different values) and the secrets they hold."""
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    secrets: list[str] = []
    for _ in range(draw(st.integers(1, 12))):
        group = draw(st.sampled_from(WORDS))
        names, values, secret = KINDS[draw(st.sampled_from(sorted(KINDS)))]
        name = draw(names)
        if name in a.get(group, {}) or name in b.get(group, {}):
            continue
        presence = draw(st.sampled_from(["same", "different", "only a", "only b"]))
        value_a = draw(values)
        value_b = draw(values) if presence == "different" else value_a
        if presence != "only b":
            a.setdefault(group, {})[name] = value_a
        if presence != "only a":
            b.setdefault(group, {})[name] = value_b
        if secret:
            secrets.extend({str(value_a), str(value_b)})
    return a, b, secrets


@pytest.fixture(name="shared_world", scope="module")
def _shared_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("diff-property")
    previous = tempfile.tempdir
    tempfile.tempdir = str(root)  # files of full lists, when a group is cut, land here
    try:
        yield make_world(root)
    finally:
        tempfile.tempdir = previous


def _windows(secret: str) -> set[str]:
    return {secret[start:start + WINDOW] for start in range(len(secret) - WINDOW + 1)}


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None)
@given(pair=profile_pair())
def test_no_secret_appears_in_any_rendering(shared_world: World, pair: Pair) -> None:
    """No value under a secret key and no secret-looking value shows in the Slack JSON or the text."""
    a, b, secrets = pair
    shared_world.write("staging", yaml.safe_dump(a, sort_keys=False))
    shared_world.write("prod", yaml.safe_dump(b, sort_keys=False))
    answer = shared_world.run("diff payment staging prod")
    assert isinstance(answer.reply, DiffReply), answer.text
    for secret in secrets:
        for window in _windows(secret):
            assert window not in answer.text, (window, secret, answer.text)
            assert window not in answer.slack, (window, secret, answer.slack)


@given(pair=profile_pair())
def test_no_secret_appears_in_live_and_drift_renderings(pair: Pair) -> None:
    """The --live layout (untyped comparison, drift tables) shows no secret either."""
    a, b, secrets = pair
    flat_a, flat_b = flatten(a), flatten(b)
    reply = DiffReply(service="payment", env_a="staging", env_b="prod", source_a="deployment x",
                      source_b="deployment y",
                      diff=compare(flat_a, flat_b, typed=False), live=True,
                      drift=(Drift(env="prod", diff=compare(flat_a, flat_b, typed=False, a_is_template=True)),))
    message = render_slack(to_document(reply))
    slack = json.dumps([message.text, message.blocks, message.attachment.content if message.attachment else ""],
                       ensure_ascii=False)
    text = render_text(to_document(reply))
    for secret in secrets:
        for window in _windows(secret):
            assert window not in text, (window, secret, text)
            assert window not in slack, (window, secret, slack)
