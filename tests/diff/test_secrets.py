"""bot.insight.secrets: which keys and values count as secret, digests, and masking free text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.insight.secrets import MASK, digest, is_placeholder_only, is_secret_key, looks_secret_value, mask_text


class TestIsSecretKey:
    @pytest.mark.parametrize("key", ["db.password", "DB_PASSWORD", "payment.api-key", "apiKey", "api.key",
                                     "clientSecret", "sentry.dsn", "credentials.user", "private_key", "passwd"])
    def test_secret_keys(self, key: str) -> None:
        """Keys naming a password, secret, token, api key, credential, private key or DSN are secret."""
        assert is_secret_key(key)

    @pytest.mark.parametrize("key", ["payment.provider.timeout", "retries", "db.host", "feature.flag"])
    def test_plain_keys(self, key: str) -> None:
        """Ordinary configuration keys are not secret."""
        assert not is_secret_key(key)

    def test_catalog_patterns_replace_the_defaults(self) -> None:
        """The patterns given are the ones used: a custom pattern matches, a default one no longer does."""
        assert is_secret_key("stripe.signing", ["signing"])
        assert not is_secret_key("db.password", ["signing"])


class TestLooksSecretValue:
    @pytest.mark.parametrize("value", [
        "postgres://app:hunter2@db:5432/payment",
        "amqp://guest:${RABBIT_PASSWORD:guest}@rabbit/",  # a default is a literal
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
        "xoxb-1234567890-abcdefghijklmnop",
        "Bearer abcdefghijkl0123",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl",
        "AKIAIOSFODNN7EXAMPLE",
        "7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c2e",
        "mQ3x9ZpL2vR8kT4wY6bN1cJ5",
    ])
    def test_secret_values(self, value: str) -> None:
        """Credentials in URLs, PEM blocks, known token formats and random-looking strings are secret."""
        assert looks_secret_value(value)

    @pytest.mark.parametrize("value", [
        "https://psp.example.com/v2", "postgres://${DB_USER}:${DB_PASSWORD}@db/payment", "${DB_PASSWORD}",
        "30s", "payment-provider-endpoint-v2", "/var/lib/payment/data2/config", "HikariPool-1-connection-timeout",
        "registry.example.com/payment:v1.2.3", "SomeCamelCaseIdentifierName", "info",
    ])
    def test_plain_values(self, value: str) -> None:
        """URLs without credentials, placeholders, durations, identifiers and paths are not secret."""
        assert not looks_secret_value(value)

    def test_non_strings_are_not_secret_looking(self) -> None:
        """Numbers and booleans never look secret by themselves (their key may still make them secret)."""
        assert not looks_secret_value(12345678901234567890)


def test_placeholder_only() -> None:
    """Only values made of ${NAME} references without defaults count as placeholder-only."""
    assert is_placeholder_only("${A}${B}")
    assert not is_placeholder_only("${A:default}")
    assert not is_placeholder_only("x${A}")


class TestDigest:
    def test_equal_values_have_equal_digests(self) -> None:
        """The same value digests the same, so secrets compare without being kept."""
        assert digest("hunter2") == digest("hunter2")

    def test_types_are_part_of_the_digest(self) -> None:
        """3 and "3" differ, as do different strings."""
        assert digest(3) != digest("3")
        assert digest("a") != digest("b")

    def test_digest_does_not_contain_the_value(self) -> None:
        """A digest is a fixed-size hex string that does not carry the value."""
        value = "correct-horse-battery-staple"
        assert len(digest(value)) == 32
        assert "horse" not in digest(value)


class TestMaskText:
    def test_key_value_pairs(self) -> None:
        """Values of secret keys in key=value, key: value and JSON pairs are masked, keys kept."""
        line = 'login user=bob password=hunter2 token: abc123 {"api_key": "k-123", "level": "info"}'
        masked = mask_text(line)
        assert masked == f'login user=bob password={MASK} token: {MASK} {{"api_key": "{MASK}", "level": "info"}}'

    def test_escaped_json_inside_a_string(self) -> None:
        """A secret inside escaped JSON (a JSON log line holding JSON) is masked too."""
        assert "zzz" not in mask_text('msg="{\\"client_secret\\":\\"zzz\\"}"')

    def test_url_credentials_and_tokens(self) -> None:
        """URL passwords, bearer tokens, Slack tokens and PEM blocks are masked wherever they are."""
        text = ("connect postgres://app:hunter2@db/x auth=Bearer abcdefghijkl xoxb-123456789012-abcdefghij "
                "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----")
        masked = mask_text(text)
        for secret in ("hunter2", "abcdefghijkl", "xoxb-1234", "MIIB"):
            assert secret not in masked
        assert "postgres://" in masked

    def test_every_token_kind_is_masked_wherever_it_stands(self) -> None:
        """Each token format is masked inside a longer line as alone (masking skips the passes a line cannot
        need: this pins that none is skipped wrongly)."""
        tokens = ["xoxb-123456789012-abcdefghij", "xapp-1-A0123456789-abcdef", "bearer abcdefgh12345678",
                  "Basic dXNlcjpwYXNzd29yZA==", "Token 0123456789abcdef", "eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl",
                  "AKIAABCDEFGHIJKLMNOP", "ghp_" + "a1" * 18, "sk_live_0123456789abcdefXYZ"]
        for token in tokens:
            secret = token.split()[-1][-8:]
            for line in (token, f'{{"msg": "calling api with {token} now", "level": "info"}}'):
                assert secret not in mask_text(line), (token, mask_text(line))

    def test_anchored_catalog_patterns_still_mask(self) -> None:
        """A catalog pattern with an anchor (`^token$`) matches the key, not the whole line: still masked."""
        assert mask_text("retry=1 token=s3cr3tvalue level=info", ("^token$",)) == "retry=1 token=••• level=info"
        assert mask_text("tokenizer=fast", ("^token$",)) == "tokenizer=fast"

    def test_placeholders_and_trace_ids_stay(self) -> None:
        """Placeholders are references and trace ids are not secrets: both stay readable by default."""
        text = "password=${DB_PASSWORD} trace_id=4bf92f3577b34da6a3ce929d0e0e4736"
        assert mask_text(text) == text
        assert "4bf92f35" not in mask_text(text, high_entropy=True)


MATERIAL = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=6, max_size=20)
TEMPLATES = ("password={}", "db_password={}", "token={}", "apiKey={}", '"client_secret": "{}"', "'api_key': '{}'",
             "credential: {}", "sentry_dsn={}", "postgres://app:{}@db/x", "Authorization: Bearer {}")
PLAIN_FRAGMENTS = st.sampled_from(["GET /orders", "status=200", "level=info", "user=bob", "took 12ms", "retry=1"])


@given(parts=st.lists(st.tuples(st.sampled_from(TEMPLATES), MATERIAL, PLAIN_FRAGMENTS), min_size=1, max_size=6))
def test_mask_text_leaves_no_piece_of_a_secret(parts: list[tuple[str, str, str]]) -> None:
    """In a line of secret and plain fragments, no four characters of any secret survive masking."""
    line = " ".join(f"{template.format(material)} {plain}" for template, material, plain in parts)
    masked = mask_text(line)
    for _, material, _ in parts:
        for start in range(len(material) - 3):
            assert material[start:start + 4] not in masked, (material, masked)
