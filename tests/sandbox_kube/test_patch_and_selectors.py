"""Unit and property tests of the sandbox's strategic-merge patch and selector grammar."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.kube.patch import PatchFormatError, merge_patch, strategic_merge
from sandbox.kube.selectors import (
    LabelSelector,
    Requirement,
    SelectorError,
    from_label_selector,
    parse_field_selector,
    parse_label_selector,
)


def pod_spec(*containers: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": list(containers)}}}}


APP = {"name": "app", "image": "a:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
       "ports": [{"containerPort": 8080, "protocol": "TCP"}], "args": ["--x", "--y"]}
SIDE = {"name": "sidecar", "image": "s:1"}


class TestStrategicMerge:
    def test_containers_merge_by_name_and_siblings_stay(self) -> None:
        """kubectl set image's patch changes one container and keeps the others."""
        doc = pod_spec(APP, SIDE)
        patch = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                                                "containers": [{"image": "a:2", "name": "app"}]}}}}
        out = strategic_merge(doc, patch)["spec"]["template"]["spec"]["containers"]
        assert [c["name"] for c in out] == ["app", "sidecar"]
        assert out[0]["image"] == "a:2"
        assert out[0]["env"] == APP["env"]
        assert out[1] == SIDE

    def test_env_and_ports_merge_by_their_keys_other_lists_are_replaced(self) -> None:
        """env merges by name, ports by containerPort, args (no merge key) are replaced."""
        patch = pod_spec({"name": "app", "env": [{"name": "B", "value": "b"}, {"name": "C", "value": "c"}],
                          "ports": [{"containerPort": 9090}], "args": ["--z"]})
        out = strategic_merge(pod_spec(APP), patch)["spec"]["template"]["spec"]["containers"][0]
        assert out["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "b"}, {"name": "C", "value": "c"}]
        assert [p["containerPort"] for p in out["ports"]] == [8080, 9090]
        assert out["args"] == ["--z"]

    def test_directives(self) -> None:
        """$patch delete/replace, null deletion, $retainKeys and $deleteFromPrimitiveList."""
        doc = pod_spec(APP, SIDE)
        out = strategic_merge(doc, pod_spec({"name": "sidecar", "$patch": "delete"}))
        assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["app"]
        out = strategic_merge(doc, pod_spec({"name": "new", "image": "n:1"}, {"$patch": "replace"}))
        assert out["spec"]["template"]["spec"]["containers"] == [{"name": "new", "image": "n:1"}]
        out = strategic_merge({"metadata": {"labels": {"a": "1", "b": "2"}}}, {"metadata": {"labels": {"a": None}}})
        assert out == {"metadata": {"labels": {"b": "2"}}}
        out = strategic_merge({"spec": {"x": 1, "y": 2}}, {"spec": {"$retainKeys": ["y", "z"], "z": 3}})
        assert out == {"spec": {"y": 2, "z": 3}}
        out = strategic_merge({"metadata": {"finalizers": ["a", "b"]}},
                              {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})
        assert out == {"metadata": {"finalizers": ["b"]}}
        out = strategic_merge({"metadata": {"finalizers": ["a"]}}, {"metadata": {"finalizers": ["b", "a"]}})
        assert out["metadata"]["finalizers"] == ["a", "b"]
        out = strategic_merge({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}},
                              {"spec": {"strategy": {"$patch": "replace", "type": "Recreate"}}})
        assert out == {"spec": {"strategy": {"type": "Recreate"}}}

    def test_set_element_order_keeps_server_only_items_in_place(self) -> None:
        doc = pod_spec({"name": "a"}, {"name": "b"}, {"name": "c"})
        patch = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}],
                                                "containers": [{"name": "c", "image": "x"}]}}}}
        out = strategic_merge(doc, patch)["spec"]["template"]["spec"]["containers"]
        assert [c["name"] for c in out] == ["c", "b", "a"]

    def test_malformed_patches(self) -> None:
        with pytest.raises(PatchFormatError):
            strategic_merge({}, [1, 2])
        with pytest.raises(PatchFormatError):
            strategic_merge(pod_spec(APP), pod_spec({"image": "no-name"}))
        with pytest.raises(PatchFormatError):
            strategic_merge({}, {"spec": {"$patch": "explode"}})

    @settings(max_examples=60)
    @given(st.lists(st.sampled_from("abcde"), unique=True, min_size=1),
           st.lists(st.tuples(st.sampled_from("abcdef"), st.text("xyz", max_size=3)), max_size=5))
    def test_merge_by_name_is_idempotent_and_keeps_every_container(self, names: list[str],
                                                                    updates: list[tuple[str, str]]) -> None:
        """Applying a containers patch twice gives the same result; no existing container is lost."""
        doc = pod_spec(*({"name": n, "image": f"{n}:1"} for n in names))
        patch = pod_spec(*({"name": n, "image": img} for n, img in dict(updates).items()))
        once = strategic_merge(doc, patch)
        assert strategic_merge(once, patch) == once
        merged = {c["name"] for c in once["spec"]["template"]["spec"]["containers"]}
        assert merged == set(names) | {n for n, _ in updates}


json_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text("ab", max_size=2)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3) |
                           st.dictionaries(st.text("abc", max_size=2), inner, max_size=3), max_leaves=10)


class TestMergePatch:
    @settings(max_examples=100)
    @given(st.dictionaries(st.text("abc", max_size=2), json_values, max_size=4),
           st.dictionaries(st.text("abc", max_size=2), json_values, max_size=4))
    def test_rfc7386_properties(self, doc: dict[str, Any], patch: dict[str, Any]) -> None:
        """Idempotent; null deletes; non-null non-object values replace."""
        out = merge_patch(doc, patch)
        assert merge_patch(out, patch) == out
        for k, v in patch.items():
            if v is None:
                assert k not in out
            elif not isinstance(v, dict):
                assert out[k] == v


class TestLabelSelectors:
    @pytest.mark.parametrize(("text", "labels", "match"), [
        ("app=web", {"app": "web"}, True),
        ("app = web , tier!=db", {"app": "web", "tier": "fe"}, True),
        ("tier!=db", {}, True),
        ("app in (a, b)", {"app": "b"}, True),
        ("app notin (a,b)", {}, True),
        ("app notin (a,b)", {"app": "a"}, False),
        ("app", {"app": ""}, True),
        ("!app", {"app": "x"}, False),
        ("app.kubernetes.io/name=x", {"app.kubernetes.io/name": "x"}, True),
        ("n>3", {"n": "4"}, True),
        ("", {}, True),
    ])
    def test_matching(self, text: str, labels: dict[str, str], match: bool) -> None:
        assert parse_label_selector(text).matches(labels) is match

    @pytest.mark.parametrize("text", ["app in (a", "app in a", "=x", "app=,", "a b", "app in ()", "bad key!=1",
                                      "n>x", "app=(x)"])
    def test_errors(self, text: str) -> None:
        with pytest.raises(SelectorError):
            parse_label_selector(text)

    requirement = st.builds(
        Requirement,
        st.sampled_from(["app", "tier", "example.com/team"]),
        st.sampled_from(["=", "!=", "in", "notin", "exists", "!"]),
        st.lists(st.sampled_from(["a", "b", "c-1"]), min_size=1, max_size=3, unique=True).map(tuple),
    ).map(lambda r: Requirement(r.key, r.op, r.values[:1] if r.op in ("=", "!=") else
                                (() if r.op in ("exists", "!") else r.values)))

    @settings(max_examples=150)
    @given(st.lists(requirement, max_size=4), st.dictionaries(st.sampled_from(["app", "tier", "example.com/team"]),
                                                               st.sampled_from(["a", "b", "c-1", ""]), max_size=3))
    def test_string_form_round_trips(self, reqs: list[Requirement], labels: dict[str, str]) -> None:
        """str() of a selector parses back to an equivalent selector."""
        sel = LabelSelector(tuple(reqs))
        again = parse_label_selector(str(sel))
        assert again.matches(labels) == sel.matches(labels)

    def test_label_selector_objects(self) -> None:
        sel = from_label_selector({"matchLabels": {"app": "x"},
                                   "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]})
        assert sel.matches({"app": "x", "tier": "a"})
        assert not sel.matches({"app": "x"})
        assert not from_label_selector(None).matches({})


class TestFieldSelectors:
    def test_event_fields_and_escapes(self) -> None:
        sel = parse_field_selector(r"involvedObject.name=a\,b,type!=Normal", "Event")
        assert sel.matches({"involvedObject": {"name": "a,b"}, "type": "Warning", "metadata": {}})
        assert not sel.matches({"involvedObject": {"name": "a,b"}, "type": "Normal", "metadata": {}})

    @pytest.mark.parametrize(("text", "kind"), [("spec.nodeName=x", "Deployment"), ("nonsense", "Pod"),
                                                ("reason=x", "Pod"), (r"metadata.name=a\q", "Pod")])
    def test_errors(self, text: str, kind: str) -> None:
        with pytest.raises(SelectorError):
            parse_field_selector(text, kind)
