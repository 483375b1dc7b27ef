"""bot.insight.configdiff: flattening, comparing, masking and relaxed binding, as pure functions."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from bot.core.errors import UserError
from bot.insight.configdiff import Reference, bind_env, compare, env_var_name, flatten


class TestFlatten:
    def test_nested_mappings_become_dotted_keys(self) -> None:
        """Nested mappings flatten to dotted keys with their leaves."""
        assert flatten({"a": {"b": {"c": 1}, "d": "x"}}) == {"a.b.c": 1, "a.d": "x"}

    def test_lists_without_names_use_indexes(self) -> None:
        """List items without a name or id are addressed by index."""
        assert flatten({"hosts": ["a", "b"]}) == {"hosts[0]": "a", "hosts[1]": "b"}

    def test_lists_of_named_items_use_the_name(self) -> None:
        """Items that all have a distinct name are addressed by it."""
        data = {"routes": [{"name": "orders", "timeout": "2s"}, {"name": "refunds", "timeout": "5s"}]}
        assert flatten(data) == {"routes[name=orders].name": "orders", "routes[name=orders].timeout": "2s",
                                 "routes[name=refunds].name": "refunds", "routes[name=refunds].timeout": "5s"}

    def test_duplicate_names_fall_back_to_id_then_index(self) -> None:
        """When names repeat, a distinct id is used; with neither, the index."""
        by_id = flatten({"x": [{"name": "a", "id": 1}, {"name": "a", "id": 2}]})
        assert "x[id=2].name" in by_id
        assert "x[1].name" in flatten({"x": [{"name": "a"}, {"name": "a"}]})

    def test_empty_containers_are_leaves(self) -> None:
        """An empty mapping or list is kept as a value, so `{}` against a filled mapping shows."""
        assert flatten({"a": {}, "b": []}) == {"a": {}, "b": []}

    def test_alias_bomb_is_refused(self) -> None:
        """YAML aliases that expand beyond the key limit are refused instead of eating memory."""
        text = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n" \
               "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        with pytest.raises(UserError, match="more than 1000 keys"):
            flatten(yaml.safe_load(text), limit=1000)


class TestCompare:
    def test_groups_and_counts(self) -> None:
        """Keys sort into only-in-A, only-in-B, changed, and an unchanged count."""
        diff = compare({"a": 1, "b": 2, "c": 3}, {"b": 2, "c": 4, "d": 5})
        assert [item.key for item in diff.only_a] == ["a"]
        assert [item.key for item in diff.only_b] == ["d"]
        assert [(c.key, c.a.text, c.b.text) for c in diff.changed] == [("c", "3", "4")]
        assert diff.unchanged == 1

    def test_type_change_is_flagged(self) -> None:
        """3 against "3", and true against "true", are changes flagged as type changes."""
        diff = compare({"retries": 3, "on": True}, {"retries": "3", "on": "true"})
        assert [(c.key, c.a.kind, c.b.kind, c.type_changed) for c in diff.changed] == [
            ("on", "bool", "string", True), ("retries", "int", "string", True)]

    def test_type_change_with_a_new_value_is_flagged_but_null_is_not(self) -> None:
        """30 against "30s" is a type change too; a value appearing where there was null is not."""
        diff = compare({"timeout": 30, "limit": None}, {"timeout": "30s", "limit": 5})
        assert [(c.key, c.type_changed) for c in diff.changed] == [("limit", False), ("timeout", True)]

    def test_untyped_comparison_ignores_types(self) -> None:
        """For live values (strings in an environment) 3 and "3" are the same."""
        assert not compare({"retries": 3}, {"retries": "3"}, typed=False).differs

    def test_secret_keys_are_masked_on_both_sides(self) -> None:
        """A changed password comes out without either value."""
        diff = compare({"db.password": "one"}, {"db.password": "two"})
        change = diff.changed[0]
        assert (change.a.text, change.b.text, change.secret) == (None, None, True)

    def test_a_plain_value_beside_a_secret_one_is_masked(self) -> None:
        """When one side looks secret, the other side is masked too (it may be the same secret in another form)."""
        diff = compare({"db.url": "postgres://app:hunter2@db/x"}, {"db.url": "hunter2"})
        assert (diff.changed[0].a.text, diff.changed[0].b.text) == (None, None)

    def test_placeholder_beside_a_literal_secret_is_shown(self) -> None:
        """A ${VAR} on one side is shown while the literal secret on the other is masked."""
        change = compare({"db.password": "${DB_PASSWORD}"}, {"db.password": "hunter2"}).changed[0]
        assert (change.a.text, change.b.text) == ("${DB_PASSWORD}", None)

    def test_same_secrets_are_listed_by_key(self) -> None:
        """Equal secret values count as unchanged and are listed as same (secret)."""
        diff = compare({"api_token": "t0k3n", "x": 1}, {"api_token": "t0k3n", "x": 1})
        assert (diff.same_secrets, diff.unchanged) == (("api_token",), 2)

    def test_secret_inside_a_value_is_masked(self) -> None:
        """A password inside a JDBC URL's query string masks the whole value."""
        diff = compare({"datasource.url": "jdbc:postgresql://db/app?user=app&password=hunter2"}, {})
        assert diff.only_a[0].value.text is None

    def test_variables_each_side_needs(self) -> None:
        """The ${VAR} names of each side are collected and the differences are exposed."""
        diff = compare({"a": "${HOST}:${PORT}", "b": "${X:default}"}, {"a": "${HOST}"})
        assert (diff.variables_a, diff.variables_b) == (("HOST", "PORT", "X"), ("HOST",))
        assert (diff.variables_only_a, diff.variables_only_b) == (("PORT", "X"), ())

    def test_template_matches_the_rendered_value(self) -> None:
        """With A as a template, http://${HOST}:8080 matches any host at port 8080 and nothing else."""
        assert not compare({"u": "http://${HOST}:8080"}, {"u": "http://db.prod:8080"}, a_is_template=True).differs
        assert compare({"u": "http://${HOST}:8080"}, {"u": "http://db.prod:9090"}, a_is_template=True).differs

    def test_references_compare_by_what_they_name(self) -> None:
        """Two Secret references are the same when they name the same secret and key; never resolved."""
        same = compare({"p": Reference("secret db, key pw")}, {"p": Reference("secret db, key pw")})
        other = compare({"p": Reference("secret db, key pw")}, {"p": Reference("secret db-prod, key pw")})
        assert not same.differs
        assert other.changed[0].b.text == "secret db-prod, key pw"

    def test_dates_and_nulls_display_as_yaml_writes_them(self) -> None:
        """A date shows in ISO form and null as null."""
        change = compare({"d": dt.date(2024, 1, 2)}, {"d": None}).changed[0]
        assert (change.a.text, change.b.text) == ("2024-01-02", "null")

    def test_index_keys_sort_numerically(self) -> None:
        """hosts[2] comes before hosts[10]."""
        diff = compare({f"hosts[{index}]": index for index in range(12)}, {})
        assert [item.key for item in diff.only_a][:3] == ["hosts[0]", "hosts[1]", "hosts[2]"]


class TestRelaxedBinding:
    def test_env_var_name(self) -> None:
        """Keys become env var names: upper case, '.', '-' and brackets as '_'."""
        assert env_var_name("payment.provider-endpoint") == "PAYMENT_PROVIDER_ENDPOINT"
        assert env_var_name("hosts[0].name") == "HOSTS_0_NAME"

    def test_env_vars_bind_to_known_keys(self) -> None:
        """An env var binds to the profile key it names; one no key binds to keeps its name."""
        bound = bind_env({"PAYMENT_PROVIDER_ENDPOINT": "x", "JAVA_OPTS": "-Xmx1g"},
                         ["payment.provider.endpoint", "payment.timeout"])
        assert bound == {"payment.provider.endpoint": "x", "JAVA_OPTS": "-Xmx1g"}
