"""Tests for cloudlet.api.patch: JSON patch, JSON merge patch, strategic merge patch."""

from __future__ import annotations

import copy
import json
import random
import shutil
import subprocess
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudlet.api.errors import APIError
from cloudlet.api.patch import (
    MAX_JSON_PATCH_OPERATIONS,
    PatchError,
    json_patch,
    merge_patch,
    strategic_merge_patch,
    supports_strategic_merge,
)

INVALID = "the server rejected our request due to an error in our request"


def smp(doc: dict[str, Any], patch: Any, group: str = "", kind: str = "Pod") -> dict[str, Any]:
    """Apply a strategic merge patch and check neither input was modified."""
    before_doc, before_patch = copy.deepcopy(doc), copy.deepcopy(patch)
    out = strategic_merge_patch(doc, patch, group, kind)
    assert doc == before_doc and patch == before_patch
    return out


def patch_error(fn: Any, *args: Any) -> PatchError:
    with pytest.raises(PatchError) as info:
        fn(*args)
    err = info.value
    assert err.__cause__ is None, "safety net fired: unforeseen input"
    return err


# --- JSON patch (RFC 6902) ------------------------------------------------------------


class TestJSONPatch:
    def test_add(self) -> None:
        doc = {"a": {"b": [1, 2]}}
        assert json_patch(doc, [{"op": "add", "path": "/a/c", "value": 3}]) == {
            "a": {"b": [1, 2], "c": 3}
        }
        assert json_patch(doc, [{"op": "add", "path": "/a/b/1", "value": 9}]) == {
            "a": {"b": [1, 9, 2]}
        }
        assert json_patch(doc, [{"op": "add", "path": "/a/b/2", "value": 9}]) == {
            "a": {"b": [1, 2, 9]}
        }
        assert json_patch(doc, [{"op": "add", "path": "/a/b/-", "value": 9}]) == {
            "a": {"b": [1, 2, 9]}
        }
        # add to an existing member replaces it
        assert json_patch(doc, [{"op": "add", "path": "/a", "value": 1}]) == {"a": 1}
        assert doc == {"a": {"b": [1, 2]}}

    def test_pointer_escapes(self) -> None:
        doc = {"a/b": 1, "m~n": 2}
        assert json_patch(doc, [{"op": "replace", "path": "/a~1b", "value": 3}])["a/b"] == 3
        assert json_patch(doc, [{"op": "remove", "path": "/m~0n"}]) == {"a/b": 1}
        out = json_patch({}, [{"op": "add", "path": "/~01", "value": "x"}])
        assert out == {"~1": "x"}  # ~01 is "~1", not "/"

    def test_annotation_with_slash(self) -> None:
        obj = {"metadata": {"annotations": {}}}
        ops = [{"op": "add", "path": "/metadata/annotations/example.com~1team", "value": "core"}]
        assert json_patch(obj, ops) == {"metadata": {"annotations": {"example.com/team": "core"}}}

    def test_remove(self) -> None:
        doc = {"a": [1, 2, 3], "b": 1}
        assert json_patch(doc, [{"op": "remove", "path": "/b"}]) == {"a": [1, 2, 3]}
        assert json_patch(doc, [{"op": "remove", "path": "/a/1"}]) == {"a": [1, 3], "b": 1}
        # Kubernetes accepts negative indices (counting from the end)
        assert json_patch(doc, [{"op": "remove", "path": "/a/-1"}]) == {"a": [1, 2], "b": 1}

    def test_replace(self) -> None:
        doc = {"a": [1, 2], "b": {"c": 1}}
        assert json_patch(doc, [{"op": "replace", "path": "/b/c", "value": 2}])["b"] == {"c": 2}
        assert json_patch(doc, [{"op": "replace", "path": "/a/0", "value": 9}])["a"] == [9, 2]
        assert json_patch(doc, [{"op": "replace", "path": "", "value": {"z": 1}}]) == {"z": 1}

    def test_replace_missing_member_adds_like_kubernetes(self) -> None:
        ops = [{"op": "replace", "path": "/metadata/labels/tier", "value": "web"}]
        out = json_patch({"metadata": {"labels": {}}}, ops)
        assert out == {"metadata": {"labels": {"tier": "web"}}}

    def test_move(self) -> None:
        doc = {"a": {"x": 1}, "b": [1, 2, 3]}
        assert json_patch(doc, [{"op": "move", "from": "/a/x", "path": "/c"}]) == {
            "a": {},
            "b": [1, 2, 3],
            "c": 1,
        }
        assert json_patch(doc, [{"op": "move", "from": "/b/0", "path": "/b/-"}])["b"] == [2, 3, 1]
        assert json_patch(doc, [{"op": "move", "from": "/a", "path": "/a"}]) == doc

    def test_copy_is_deep(self) -> None:
        doc = {"a": {"x": [1]}}
        ops = [
            {"op": "copy", "from": "/a", "path": "/b"},
            {"op": "add", "path": "/b/x/-", "value": 2},
        ]
        assert json_patch(doc, ops) == {"a": {"x": [1]}, "b": {"x": [1, 2]}}
        assert json_patch(doc, [{"op": "copy", "from": "/a/x/0", "path": "/a/x/0"}]) == {
            "a": {"x": [1, 1]}
        }

    def test_test(self) -> None:
        doc = {"a": {"b": [1, {"c": True}]}, "n": None, "one": 1}
        ok = [
            {"op": "test", "path": "/a/b", "value": [1, {"c": True}]},
            {"op": "test", "path": "/one", "value": 1.0},
            {"op": "test", "path": "/n", "value": None},
            {"op": "test", "path": "", "value": doc},
            # absent member tests equal to null, as in Kubernetes
            {"op": "test", "path": "/absent", "value": None},
        ]
        assert json_patch(doc, ok) == doc
        for value in (True, [1], {"c": 1}, "1"):
            err = patch_error(json_patch, doc, [{"op": "test", "path": "/one", "value": value}])
            assert err.code == 422 and err.cause == "testing value /one failed: test failed"
        err = patch_error(json_patch, doc, [{"op": "test", "path": "/absent", "value": 1}])
        assert err.code == 422

    def test_null_patch_is_empty(self) -> None:
        assert json_patch({"a": 1}, None) == {"a": 1}
        assert json_patch({"a": 1}, []) == {"a": 1}

    def test_all_or_nothing(self) -> None:
        doc = {"a": 1}
        ops = [{"op": "replace", "path": "/a", "value": 2}, {"op": "remove", "path": "/zz"}]
        patch_error(json_patch, doc, ops)
        assert doc == {"a": 1}

    def test_inputs_not_mutated_and_values_not_aliased(self) -> None:
        value = {"deep": [1]}
        ops = [{"op": "add", "path": "/v", "value": value}]
        out = json_patch({}, ops)
        out["v"]["deep"].append(2)
        assert value == {"deep": [1]} and ops[0]["value"] is value

    # RFC 6902 appendix A, selected
    @pytest.mark.parametrize(
        ("doc", "ops", "expected"),
        [
            (
                {"foo": "bar"},
                [{"op": "add", "path": "/baz", "value": "qux"}],
                {"baz": "qux", "foo": "bar"},
            ),
            (
                {"foo": ["bar", "baz"]},
                [{"op": "add", "path": "/foo/1", "value": "qux"}],
                {"foo": ["bar", "qux", "baz"]},
            ),
            ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
            (
                {"foo": ["bar", "qux", "baz"]},
                [{"op": "remove", "path": "/foo/1"}],
                {"foo": ["bar", "baz"]},
            ),
            (
                {"baz": "qux", "foo": "bar"},
                [{"op": "replace", "path": "/baz", "value": "boo"}],
                {"baz": "boo", "foo": "bar"},
            ),
            (
                {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
                [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
                {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
            ),
            (
                {"foo": ["all", "grass", "cows", "eat"]},
                [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
                {"foo": ["all", "cows", "eat", "grass"]},
            ),
            (
                {"foo": "bar"},
                [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
                {"foo": "bar", "child": {"grandchild": {}}},
            ),
            (
                {"foo": "bar"},
                [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
                {"foo": "bar", "baz": "qux"},
            ),
            (
                {"foo": ["bar"]},
                [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
                {"foo": ["bar", ["abc", "def"]]},
            ),
            ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
        ],
    )
    def test_rfc6902_examples(self, doc: Any, ops: Any, expected: Any) -> None:
        assert json_patch(doc, ops) == expected

    @pytest.mark.parametrize(
        ("doc", "ops"),
        [
            ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}]),  # A.12
            ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}]),  # A.9
            ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}]),  # A.15
        ],
    )
    def test_rfc6902_error_examples(self, doc: Any, ops: Any) -> None:
        err = patch_error(json_patch, doc, ops)
        assert (err.code, err.reason, err.message) == (422, "Invalid", INVALID)

    @pytest.mark.parametrize(
        ("ops", "cause"),
        [
            (
                [{"op": "remove", "path": "/nope"}],
                "error in remove for path: '/nope': Unable to remove nonexistent key: nope: missing value",
            ),
            (
                [{"op": "remove", "path": "/x/b"}],
                'remove operation does not apply: doc is missing path: "/x/b": missing value',
            ),
            (
                [{"op": "replace", "path": "/x/y", "value": 1}],
                "replace operation does not apply: doc is missing path: /x/y: missing value",
            ),
            (
                [{"op": "replace", "path": "/l/5", "value": 1}],
                "replace operation does not apply: doc is missing key: /l/5: missing value",
            ),
            (
                [{"op": "add", "path": "/l/3", "value": 1}],
                "error in add for path: '/l/3': Unable to access invalid index: 3: invalid index referenced",
            ),
            (
                [{"op": "add", "path": "/l/x", "value": 1}],
                "error in add for path: '/l/x': value was not a proper array index: 'x'",
            ),
            (
                [{"op": "remove", "path": "/l/-"}],
                "error in remove for path: '/l/-': Unable to access invalid index: -: invalid index referenced",
            ),
            (
                [{"op": "move", "from": "/nope", "path": "/b"}],
                "move operation does not apply: doc is missing from path: /nope: missing value",
            ),
            (
                [{"op": "move", "from": "/a", "path": "/a/child"}],
                "move operation does not apply: doc is missing destination path: /a/child: missing value",
            ),
            (
                [{"op": "copy", "from": "/nope", "path": "/b"}],
                "copy operation does not apply: doc is missing from path: /nope: missing value",
            ),
            (
                [{"op": "copy", "from": "/a", "path": "/q/r"}],
                "copy operation does not apply: doc is missing destination path: /q/r: missing value",
            ),
            (
                [{"op": "test", "path": "/q/r", "value": 1}],
                "test operation does not apply: is missing path: /q/r: missing value",
            ),
            ([{"op": "frobnicate", "path": "/a"}], "Unexpected kind: frobnicate"),
            ([{"path": "/a"}], "Unexpected kind: unknown"),
            ([{"op": 7, "path": "/a"}], "Unexpected kind: unknown"),
            ([None], "Unexpected kind: unknown"),
            ([{"op": "add", "value": 1}], "add operation failed to decode path: missing value"),
            (
                [{"op": "remove", "path": 5}],
                "remove operation failed to decode path: missing value",
            ),
            ([{"op": "move", "path": "/b"}], "move operation failed to decode from: missing value"),
            (
                [{"op": "add", "path": "a", "value": 1}],
                'add operation does not apply: doc is missing path: "a": missing value',
            ),
            (
                [{"op": "add", "path": "", "value": {}}],
                'add operation does not apply: doc is missing path: "": missing value',
            ),
            (
                [{"op": "remove", "path": ""}],
                'remove operation does not apply: doc is missing path: "": missing value',
            ),
            (
                [{"op": "replace", "path": "", "value": "scalar"}],
                "replace operation value must be object or array",
            ),
        ],
    )
    def test_apply_errors_are_422(self, ops: Any, cause: str) -> None:
        err = patch_error(json_patch, {"a": {"b": 1}, "l": [1, 2]}, ops)
        assert (err.code, err.reason, err.message, err.cause) == (422, "Invalid", INVALID, cause)
        assert err.status()["details"] == {
            "causes": [{"reason": "UnexpectedServerResponse", "message": cause}]
        }
        assert str(err) == f"{INVALID}: {cause}"

    @pytest.mark.parametrize(
        ("ops", "message"),
        [
            ({"op": "add"}, "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
            ("[]", "json: cannot unmarshal string into Go value of type jsonpatch.Patch"),
            (5, "json: cannot unmarshal number into Go value of type jsonpatch.Patch"),
            ([["add"]], "json: cannot unmarshal array into Go value of type jsonpatch.Operation"),
            (["add"], "json: cannot unmarshal string into Go value of type jsonpatch.Operation"),
        ],
    )
    def test_malformed_patch_is_400(self, ops: Any, message: str) -> None:
        err = patch_error(json_patch, {}, ops)
        assert (err.code, err.reason, err.message) == (400, "BadRequest", message)
        assert err.status() == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "BadRequest",
            "code": 400,
        }

    def test_not_json_is_400(self) -> None:
        assert (
            patch_error(json_patch, {}, [{"op": "add", "path": "/a", "value": {1, 2}}]).code == 400
        )
        assert patch_error(json_patch, {"a": object()}, []).code == 400
        assert (
            patch_error(json_patch, {}, [{"op": "add", "path": "/a", "value": 2**70}]).code == 400
        )

    def test_too_many_operations_is_413(self) -> None:
        ops = [{"op": "test", "path": "", "value": {}}] * (MAX_JSON_PATCH_OPERATIONS + 1)
        err = patch_error(json_patch, {}, ops)
        assert (err.code, err.reason) == (413, "RequestEntityTooLarge")
        assert err.message == "The allowed maximum operations in a JSON patch is 10000, got 10001"
        assert json_patch({}, ops[:MAX_JSON_PATCH_OPERATIONS]) == {}

    def test_copy_growth_is_bounded(self) -> None:
        ops = [{"op": "add", "path": "/a", "value": "x" * 1000}]
        ops += [{"op": "copy", "from": "", "path": "/a"}]  # root cannot be copied
        assert patch_error(json_patch, {}, ops).code == 422
        ops = [{"op": "add", "path": "/a", "value": ["x" * 1000]}]
        ops += [{"op": "copy", "from": "/a", "path": f"/b{i}"} for i in range(4000)]
        err = patch_error(json_patch, {}, ops)
        assert err.code == 422 and err.cause.startswith("Unable to complete the copy")

    def test_patch_error_is_an_api_error(self) -> None:
        err = patch_error(json_patch, {}, [{"op": "remove", "path": "/a"}])
        assert isinstance(err, APIError) and isinstance(err, Exception)


# --- JSON merge patch (RFC 7386) ----------------------------------------------------


RFC7386_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


class TestMergePatch:
    @pytest.mark.parametrize(("doc", "patch", "expected"), RFC7386_EXAMPLES)
    def test_rfc7386_examples(self, doc: Any, patch: Any, expected: Any) -> None:
        before = copy.deepcopy((doc, patch))
        assert merge_patch(doc, patch) == expected
        assert (doc, patch) == before

    def test_object_merge(self) -> None:
        obj = {
            "metadata": {"labels": {"a": "1", "b": "2"}},
            "spec": {"containers": [{"name": "x"}]},
        }
        patch = {
            "metadata": {"labels": {"a": None, "c": "3"}},
            "spec": {"containers": [{"name": "y"}]},
        }
        assert merge_patch(obj, patch) == {
            "metadata": {"labels": {"b": "2", "c": "3"}},
            "spec": {"containers": [{"name": "y"}]},  # lists replace wholesale
        }

    def test_nulls_in_new_values_are_pruned_like_kubernetes(self) -> None:
        out = merge_patch({}, {"a": [{"b": None, "c": 1}, None]})
        assert out == {"a": [{"c": 1}, None]}

    def test_result_does_not_alias_patch(self) -> None:
        patch = {"a": {"b": [1]}}
        out = merge_patch({}, patch)
        out["a"]["b"].append(2)
        assert patch == {"a": {"b": [1]}}

    def test_not_json_is_400(self) -> None:
        assert patch_error(merge_patch, {}, {"a": {1, 2}}).code == 400
        assert patch_error(merge_patch, {}, {1: "a"}).code == 400


# --- strategic merge patch ----------------------------------------------------------


def deployment() -> dict[str, Any]:
    """A live Deployment as the server stores it: defaults filled in, one env var injected."""
    applied_v1 = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "app:1",
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "ports": [{"containerPort": 8080}],
                        },
                        {"name": "sidecar", "image": "sidecar:1"},
                    ]
                },
            },
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "4f1c",
            "resourceVersion": "17",
            "generation": 1,
            "annotations": {
                "deployment.kubernetes.io/revision": "1",
                "kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied_v1),
            },
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "app:1",
                            "env": [
                                {"name": "A", "value": "1"},
                                {"name": "B", "value": "2"},
                                {"name": "INJECTED", "value": "by-webhook"},
                            ],
                            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                            "terminationMessagePath": "/dev/termination-log",
                            "imagePullPolicy": "IfNotPresent",
                        },
                        {
                            "name": "sidecar",
                            "image": "sidecar:1",
                            "terminationMessagePath": "/dev/termination-log",
                            "imagePullPolicy": "IfNotPresent",
                        },
                    ],
                    "restartPolicy": "Always",
                    "dnsPolicy": "ClusterFirst",
                },
            },
        },
        "status": {"replicas": 1, "observedGeneration": 1},
    }


class TestStrategicKubectlApply:
    """Three-way patches shaped exactly as `kubectl apply` (client-side) sends them."""

    # last-applied: [app(env A, B), sidecar]; new config: [sidecar:2, app:2 (env B, C)]
    REORDER_AND_EDIT = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
                    "containers": [
                        {"image": "sidecar:2", "name": "sidecar"},
                        {
                            "$setElementOrder/env": [{"name": "B"}, {"name": "C"}],
                            "env": [{"name": "C", "value": "3"}, {"$patch": "delete", "name": "A"}],
                            "image": "app:2",
                            "name": "app",
                        },
                    ],
                }
            }
        },
    }

    def test_reorder_edit_and_delete_env(self) -> None:
        out = smp(deployment(), self.REORDER_AND_EDIT, "apps", "Deployment")
        containers = out["spec"]["template"]["spec"]["containers"]
        assert [c["name"] for c in containers] == ["sidecar", "app"]
        sidecar, app = containers
        assert sidecar == {
            "name": "sidecar",
            "image": "sidecar:2",
            "terminationMessagePath": "/dev/termination-log",
            "imagePullPolicy": "IfNotPresent",
        }
        assert app["image"] == "app:2"
        # The server-only INJECTED keeps its place next to B, as kube-apiserver leaves it.
        assert app["env"] == [
            {"name": "B", "value": "2"},
            {"name": "INJECTED", "value": "by-webhook"},
            {"name": "C", "value": "3"},
        ]
        assert app["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
        assert app["terminationMessagePath"] == "/dev/termination-log"
        assert out["spec"]["strategy"]["rollingUpdate"] == {
            "maxSurge": "25%",
            "maxUnavailable": "25%",
        }
        assert out["status"] == {"replicas": 1, "observedGeneration": 1}
        assert out["metadata"]["annotations"] == {
            "deployment.kubernetes.io/revision": "1",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
        }
        assert "$setElementOrder/env" not in json.dumps(out)

    def test_apply_is_idempotent(self) -> None:
        once = smp(deployment(), self.REORDER_AND_EDIT, "apps", "Deployment")
        twice = smp(once, self.REORDER_AND_EDIT, "apps", "Deployment")
        assert twice == once

    def test_delete_container(self) -> None:
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "app"}],
                        "containers": [{"$patch": "delete", "name": "sidecar"}],
                    }
                }
            }
        }
        out = smp(deployment(), patch, "apps", "Deployment")
        containers = out["spec"]["template"]["spec"]["containers"]
        assert [c["name"] for c in containers] == ["app"]
        assert containers[0] == deployment()["spec"]["template"]["spec"]["containers"][0]
        assert smp(out, patch, "apps", "Deployment") == out

    def test_add_container_first(self) -> None:
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [
                            {"name": "init-proxy"},
                            {"name": "app"},
                            {"name": "sidecar"},
                        ],
                        "containers": [{"image": "proxy:1", "name": "init-proxy"}],
                    }
                }
            }
        }
        out = smp(deployment(), patch, "apps", "Deployment")
        names = [c["name"] for c in out["spec"]["template"]["spec"]["containers"]]
        assert names == ["init-proxy", "app", "sidecar"]

    def test_strategy_switch_with_retain_keys(self) -> None:
        patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
        out = smp(deployment(), patch, "apps", "Deployment")
        assert out["spec"]["strategy"] == {"type": "Recreate"}
        # the shape kubectl sends when the user also had rollingUpdate in the config
        patch = {
            "spec": {
                "strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"}
            }
        }
        assert smp(deployment(), patch, "apps", "Deployment")["spec"]["strategy"] == {
            "type": "Recreate"
        }

    def test_null_deletes_field(self) -> None:
        patch = {
            "spec": {"replicas": None},
            "metadata": {"annotations": {"deployment.kubernetes.io/revision": None}},
        }
        out = smp(deployment(), patch, "apps", "Deployment")
        assert "replicas" not in out["spec"]
        assert "deployment.kubernetes.io/revision" not in out["metadata"]["annotations"]
        # a null for something absent is ignored rather than stored
        assert "nothing" not in smp({}, {"nothing": None})


class TestStrategicLists:
    def test_containers_merge_by_name(self) -> None:
        pod = {
            "spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}
        }
        out = smp(pod, {"spec": {"containers": [{"name": "b", "image": "b:2"}]}})
        assert out["spec"]["containers"] == [
            {"name": "a", "image": "a:1"},
            {"name": "b", "image": "b:2"},
        ]

    def test_new_list_item_goes_first_without_order_directive(self) -> None:
        pod = {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}
        out = smp(pod, {"spec": {"containers": [{"name": "c"}]}})
        assert [c["name"] for c in out["spec"]["containers"]] == ["c", "a", "b"]

    def test_ports_merge_by_container_port(self) -> None:
        pod = {
            "spec": {
                "containers": [
                    {
                        "name": "a",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}],
                    }
                ]
            }
        }
        patch = {
            "spec": {
                "containers": [{"name": "a", "ports": [{"containerPort": 80, "name": "http"}]}]
            }
        }
        ports = smp(pod, patch)["spec"]["containers"][0]["ports"]
        assert ports == [
            {"containerPort": 80, "protocol": "TCP", "name": "http"},
            {"containerPort": 443},
        ]

    def test_volume_mounts_merge_by_mount_path(self) -> None:
        pod = {
            "spec": {
                "containers": [{"name": "a", "volumeMounts": [{"name": "v", "mountPath": "/x"}]}]
            }
        }
        patch = {
            "spec": {
                "containers": [{"name": "a", "volumeMounts": [{"name": "v", "mountPath": "/y"}]}]
            }
        }
        mounts = smp(pod, patch)["spec"]["containers"][0]["volumeMounts"]
        assert mounts == [{"name": "v", "mountPath": "/y"}, {"name": "v", "mountPath": "/x"}]

    def test_service_ports_merge_by_port(self) -> None:
        svc = {
            "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443, "targetPort": 8443}]}
        }
        out = smp(svc, {"spec": {"ports": [{"port": 443, "targetPort": 9443}]}}, "", "Service")
        assert out["spec"]["ports"] == [
            {"port": 80, "targetPort": 8080},
            {"port": 443, "targetPort": 9443},
        ]

    def test_tolerations_are_atomic(self) -> None:
        pod = {"spec": {"tolerations": [{"key": "a", "operator": "Exists"}]}}
        patch = {"spec": {"tolerations": [{"key": "b", "operator": "Exists", "effect": None}]}}
        assert smp(pod, patch)["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]

    def test_args_and_node_taints_are_atomic(self) -> None:
        pod = {"spec": {"containers": [{"name": "a", "args": ["x", "y"]}]}}
        out = smp(pod, {"spec": {"containers": [{"name": "a", "args": ["z"]}]}})
        assert out["spec"]["containers"][0]["args"] == ["z"]
        node = {"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}}
        out = smp(node, {"spec": {"taints": [{"key": "b", "effect": "NoSchedule"}]}}, "", "Node")
        assert out["spec"]["taints"] == [{"key": "b", "effect": "NoSchedule"}]

    def test_env_delete_and_merge(self) -> None:
        pod = {
            "spec": {
                "containers": [
                    {"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}
                ]
            }
        }
        patch = {
            "spec": {
                "containers": [
                    {
                        "name": "a",
                        "env": [
                            {
                                "name": "Y",
                                "value": None,
                                "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
                            },
                            {"name": "X", "$patch": "delete"},
                        ],
                    }
                ]
            }
        }
        env = smp(pod, patch)["spec"]["containers"][0]["env"]
        assert env == [{"name": "Y", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]

    def test_finalizers_merge_as_a_set(self) -> None:
        obj = {"metadata": {"finalizers": ["a", "b"]}}
        out = smp(obj, {"metadata": {"finalizers": ["b", "c"]}}, "", "ConfigMap")
        assert out["metadata"]["finalizers"] == ["a", "b", "c"]
        out = smp(obj, {"metadata": {"finalizers": ["c"]}}, "", "ConfigMap")
        assert out["metadata"]["finalizers"] == ["c", "a", "b"]

    def test_delete_from_primitive_list(self) -> None:
        obj = {"metadata": {"finalizers": ["a", "b", "c"]}}
        patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zzz"]}}
        assert smp(obj, patch, "", "Secret")["metadata"]["finalizers"] == ["a", "c"]
        # the 3-way shape kubectl sends: order + additions + deletions together
        patch = {
            "metadata": {
                "$setElementOrder/finalizers": ["c", "d"],
                "$deleteFromPrimitiveList/finalizers": ["a"],
                "finalizers": ["d"],
            }
        }
        assert smp(obj, patch, "", "Secret")["metadata"]["finalizers"] == ["b", "c", "d"]
        # nothing to delete from: the directive is ignored
        assert smp({"metadata": {}}, patch, "", "Secret")["metadata"]["finalizers"] == ["d"]

    def test_owner_references_merge_by_uid(self) -> None:
        obj = {
            "metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}
        }
        patch = {
            "metadata": {
                "ownerReferences": [
                    {"uid": "2", "controller": True},
                    {"uid": "1", "$patch": "delete"},
                ]
            }
        }
        out = smp(obj, patch, "apps", "ReplicaSet")
        assert out["metadata"]["ownerReferences"] == [{"uid": "2", "name": "b", "controller": True}]

    def test_volumes_retain_keys(self) -> None:
        pod = {
            "spec": {
                "volumes": [
                    {"name": "data", "emptyDir": {}},
                    {"name": "cfg", "configMap": {"name": "c"}},
                ]
            }
        }
        patch = {
            "spec": {
                "volumes": [
                    {
                        "$retainKeys": ["hostPath", "name"],
                        "hostPath": {"path": "/d"},
                        "name": "data",
                    }
                ]
            }
        }
        out = smp(pod, patch)
        assert out["spec"]["volumes"] == [
            {"name": "data", "hostPath": {"path": "/d"}},
            {"name": "cfg", "configMap": {"name": "c"}},
        ]

    def test_list_replace_directive(self) -> None:
        pod = {"spec": {"containers": [{"name": "a", "image": "a"}, {"name": "b"}]}}
        patch = {"spec": {"containers": [{"name": "c", "image": "c"}, {"$patch": "replace"}]}}
        assert smp(pod, patch)["spec"]["containers"] == [{"name": "c", "image": "c"}]

    def test_map_replace_and_delete_directives(self) -> None:
        pod = {"spec": {"nodeSelector": {"a": "1", "b": "2"}, "affinity": {"nodeAffinity": {}}}}
        patch = {
            "spec": {
                "nodeSelector": {"$patch": "replace", "c": "3"},
                "affinity": {"$patch": "delete"},
            }
        }
        out = smp(pod, patch)
        assert out["spec"]["nodeSelector"] == {"c": "3"}
        assert out["spec"]["affinity"] == {}  # what kube-apiserver leaves for a deleted map

    def test_whole_object_replace(self) -> None:
        assert smp({"a": 1, "b": 2}, {"$patch": "replace", "c": 3}) == {"c": 3}

    def test_status_lists(self) -> None:
        node = {
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "False"},
                    {"type": "MemoryPressure", "status": "False"},
                ],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
            },
            "spec": {"podCIDRs": ["10.1.0.0/24"]},
        }
        patch = {
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [{"type": "Hostname", "address": "n1"}],
            },
            "spec": {"podCIDRs": ["fd00::/64"]},
        }
        out = smp(node, patch, "", "Node")
        assert out["status"]["conditions"] == [
            {"type": "Ready", "status": "True"},
            {"type": "MemoryPressure", "status": "False"},
        ]
        assert [a["type"] for a in out["status"]["addresses"]] == ["Hostname", "InternalIP"]
        assert out["spec"]["podCIDRs"] == ["fd00::/64", "10.1.0.0/24"]
        pod = {
            "status": {
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{"name": "a"}],
            }
        }
        patch = {
            "status": {
                "conditions": [{"type": "PodScheduled", "status": "True"}],
                "containerStatuses": [{"name": "b"}],
            }
        }
        out = smp(pod, patch)
        assert [c["type"] for c in out["status"]["conditions"]] == ["PodScheduled", "Ready"]
        assert out["status"]["containerStatuses"] == [{"name": "b"}]  # atomic

    @pytest.mark.parametrize(
        ("group", "kind"),
        [("autoscaling", "HorizontalPodAutoscaler"), ("", "Namespace"), ("apps", "Deployment")],
    )
    def test_conditions_merge_by_type(self, group: str, kind: str) -> None:
        obj = {
            "status": {
                "conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "True"}]
            }
        }
        out = smp(obj, {"status": {"conditions": [{"type": "B", "status": "False"}]}}, group, kind)
        assert out["status"]["conditions"] == [
            {"type": "A", "status": "True"},
            {"type": "B", "status": "False"},
        ]

    def test_pod_template_of_workloads(self) -> None:
        rs = {
            "spec": {
                "template": {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b"}]}}
            }
        }
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "2"}]}}}}
        out = smp(rs, patch, "apps", "ReplicaSet")
        assert out["spec"]["template"]["spec"]["containers"] == [
            {"name": "a", "image": "2"},
            {"name": "b"},
        ]

    def test_unknown_kind_lists_are_atomic(self) -> None:
        cr = {
            "metadata": {"finalizers": ["a"]},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
        }
        patch = {
            "metadata": {"finalizers": ["b"]},
            "spec": {
                "containers": [{"name": "b", "x": 1, "$patch": "delete"}, {"name": "c", "y": None}]
            },
        }
        out = smp(cr, patch, "example.com", "Widget")
        assert out == {"metadata": {"finalizers": ["b"]}, "spec": {"containers": [{"name": "c"}]}}
        assert not supports_strategic_merge("example.com", "Widget")
        assert supports_strategic_merge("", "Pod") and supports_strategic_merge(
            "discovery.k8s.io", "EndpointSlice"
        )

    def test_added_values_lose_directives_and_nulls(self) -> None:
        patch = {
            "spec": {
                "containers": [
                    {
                        "name": "new",
                        "$setElementOrder/env": [{"name": "A"}],
                        "env": [{"name": "A", "value": "1"}, {"name": "Z", "$patch": "delete"}],
                        "resources": {"limits": {"cpu": None, "memory": "1Gi"}},
                    }
                ],
                "affinity": {"$patch": "delete"},
                "nodeSelector": {"$patch": "replace", "disk": "ssd"},
            }
        }
        out = smp({"spec": {}}, patch)
        assert out == {
            "spec": {
                "containers": [
                    {
                        "name": "new",
                        "env": [{"name": "A", "value": "1"}],
                        "resources": {"limits": {"memory": "1Gi"}},
                    }
                ],
                "nodeSelector": {"disk": "ssd"},
            }
        }

    def test_null_patch_is_empty(self) -> None:
        assert smp({"a": 1}, None) == {"a": 1}


class TestStrategicErrors:
    @pytest.mark.parametrize(
        ("patch", "message"),
        [
            ([], "json: cannot unmarshal array into Go value of type map[string]interface {}"),
            ("x", "json: cannot unmarshal string into Go value of type map[string]interface {}"),
            ({"spec": {"$retainKeys": "name"}}, "invalid patch format of retainKeys"),
            ({"spec": {"$retainKeys": ["a"], "b": 1}}, "invalid patch format of retainKeys"),
            (
                {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}},
                "invalid patch format of primitive list",
            ),
            (
                {"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}},
                "invalid patch format of primitive list",
            ),
            (
                {"spec": {"$setElementOrder/containers": "a"}},
                "invalid patch format of setElementOrder list",
            ),
            ({"spec": {"$setElementOrder": []}}, "invalid patch format of setElementOrder list"),
            (
                {"spec": {"$setElementOrder/containers": [{"name": "a"}], "containers": "x"}},
                "invalid patch format of setElementOrder list",
            ),
            (
                {"spec": {"containers": [{"image": "x"}]}},
                "map: map[image:x] does not contain declared merge key: name",
            ),
            (
                {"spec": {"containers": [{"name": "a", "$patch": "explode"}]}},
                "unknown patch type: explode in map: map[$patch:explode name:a]",
            ),
            (
                {"spec": {"$patch": "explode"}},
                "unknown patch type: explode in map: map[$patch:explode]",
            ),
            (
                {"spec": {"containers": [{"name": "a", "$patch": "merge"}]}},
                "merging lists cannot yet be specified in the patch",
            ),
            (
                {"spec": {"containers": [{"name": "a"}, "b"]}},
                "list element types are not identical: [[map[name:a]] [map[name:a] b]]",
            ),
        ],
    )
    def test_malformed_is_400(self, patch: Any, message: str) -> None:
        live = {"spec": {"containers": [{"name": "a"}]}, "metadata": {"finalizers": ["a"]}}
        err = patch_error(strategic_merge_patch, live, patch, "", "Pod")
        assert (err.code, err.reason) == (400, "BadRequest")
        assert err.message == message

    def test_set_element_order_must_match_patch_list(self) -> None:
        live = {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}
        patch = {
            "spec": {
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                "containers": [{"name": "b"}, {"name": "a"}],
            }
        }
        err = patch_error(strategic_merge_patch, live, patch, "", "Pod")
        assert err.code == 400 and "doesn't match $setElementOrder list" in err.message

    def test_list_of_lists_is_422(self) -> None:
        live: dict[str, Any] = {"metadata": {"finalizers": []}}
        err = patch_error(
            strategic_merge_patch, live, {"metadata": {"finalizers": [["b"]]}}, "", "Pod"
        )
        assert (err.code, err.reason, err.cause) == (
            422,
            "Invalid",
            "lists of lists are not supported",
        )

    def test_not_json_is_400(self) -> None:
        assert patch_error(strategic_merge_patch, {}, {"a": {1, 2}}, "", "Pod").code == 400
        assert patch_error(strategic_merge_patch, [], {}, "", "Pod").code == 400


# --- cross-check against kubectl's own implementation -------------------------------------


def _kubectl_patch(doc: dict[str, Any], patch: Any, kind: str, tmp_path: Any) -> Any:
    path = tmp_path / "obj.json"
    path.write_text(json.dumps(doc))
    proc = subprocess.run(
        [
            "kubectl",
            "patch",
            "--local",
            "-f",
            str(path),
            "--type",
            kind,
            "-p",
            json.dumps(patch),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return _as_stored(json.loads(proc.stdout)) if proc.returncode == 0 else None


def _as_stored(value: Any) -> Any:
    """kubectl --local skips the typed round trip the API server does, which drops the
    directives and nulls left inside items the patch added; drop them the same way."""
    if isinstance(value, dict):
        return {
            k: _as_stored(v) for k, v in value.items() if v is not None and not k.startswith("$")
        }
    if isinstance(value, list):
        return [_as_stored(v) for v in value if not (isinstance(v, dict) and "$patch" in v)]
    return value


def _random_pod(r: random.Random) -> dict[str, Any]:
    def some(items: list[Any], at_least: int = 0) -> list[Any]:
        return r.sample(items, r.randint(at_least, len(items)))

    def container(name: str) -> dict[str, Any]:
        c: dict[str, Any] = {"name": name, "image": f"{name}:1"}
        if r.random() < 0.8:
            c["env"] = [
                {"name": e, "value": str(r.randint(0, 9))} for e in some(["E1", "E2", "E3"])
            ]
        if r.random() < 0.6:
            c["ports"] = [{"containerPort": p, "protocol": "TCP"} for p in some([80, 443, 8080])]
        return c

    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "finalizers": some(["a", "b", "c"]), "labels": {"l": "1"}},
        "spec": {
            "containers": [container(n) for n in some(["c1", "c2", "c3"], 1)],
            "tolerations": [{"key": k, "operator": "Exists"} for k in some(["t1", "t2"])],
            "volumes": [{"name": v, "emptyDir": {}} for v in some(["v1", "v2"])],
        },
        "status": {
            "conditions": [{"type": t, "status": "False"} for t in some(["Ready", "Initialized"])]
        },
    }


def _random_smp(r: random.Random) -> dict[str, Any]:
    def some(items: list[Any]) -> list[Any]:
        return r.sample(items, r.randint(0, len(items)))

    def merge_list(keys: list[Any], make: Any, key: str) -> dict[str, Any]:
        items = [make(k) for k in some(keys)]
        deletes = [{key: k, "$patch": "delete"} for k in some(keys) if r.random() < 0.5]
        out: dict[str, Any] = {"list": items + deletes}
        if r.random() < 0.5:  # an order list consistent with the patch list, as kubectl builds it
            order = [i[key] for i in items]
            for extra in keys:
                if (
                    extra not in order
                    and extra not in [d[key] for d in deletes]
                    and r.random() < 0.5
                ):
                    order.insert(r.randint(0, len(order)), extra)
            out["order"] = [{key: k} for k in order]
        return out

    def container(name: str) -> dict[str, Any]:
        c: dict[str, Any] = {"name": name}
        if r.random() < 0.5:
            c["image"] = f"{name}:2"
        if r.random() < 0.6:
            env = merge_list(["E1", "E2", "E3", "E4"], lambda n: {"name": n, "value": "v"}, "name")
            c["env"] = env["list"]
            if "order" in env:
                c["$setElementOrder/env"] = env["order"]
        if r.random() < 0.4:
            ports = merge_list(
                [80, 443, 9090], lambda p: {"containerPort": p, "name": f"p{p}"}, "containerPort"
            )
            c["ports"] = ports["list"]
        return c

    spec: dict[str, Any] = {}
    containers = merge_list(["c1", "c2", "c3", "c4"], container, "name")
    spec["containers"] = containers["list"]
    if "order" in containers:
        spec["$setElementOrder/containers"] = containers["order"]
    if r.random() < 0.3:
        spec["tolerations"] = [{"key": "t3", "operator": "Exists"}]
    if r.random() < 0.3:
        spec["volumes"] = [
            {"$retainKeys": ["configMap", "name"], "name": "v1", "configMap": {"name": "x"}}
        ]
    metadata: dict[str, Any] = {"labels": {"l": None, "m": "2"}}
    added = some(["b", "d"])
    metadata["finalizers"] = added
    if r.random() < 0.5:
        metadata["$deleteFromPrimitiveList/finalizers"] = [
            f for f in some(["a", "c"]) if f not in added
        ]
    out: dict[str, Any] = {"metadata": metadata, "spec": spec}
    if r.random() < 0.3:
        out["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    return out


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
class TestAgainstKubectl:
    """`kubectl patch --local` runs Kubernetes' own patch code; results must agree."""

    @pytest.mark.parametrize("seed", range(25))
    def test_strategic_merge_patch(self, seed: int, tmp_path: Any) -> None:
        r = random.Random(seed)
        doc, patch = _random_pod(r), _random_smp(r)
        assert strategic_merge_patch(doc, patch, "", "Pod") == _kubectl_patch(
            doc, patch, "strategic", tmp_path
        )

    def test_deployment_apply_shape(self, tmp_path: Any) -> None:
        doc, patch = deployment(), TestStrategicKubectlApply.REORDER_AND_EDIT
        want = _kubectl_patch(doc, patch, "strategic", tmp_path)
        assert strategic_merge_patch(doc, patch, "apps", "Deployment") == want

    @pytest.mark.parametrize(
        "ops",
        [
            [{"op": "replace", "path": "/metadata/labels/new", "value": "x"}],
            [
                {"op": "add", "path": "/data/a", "value": "1"},
                {"op": "move", "from": "/data/a", "path": "/data/b"},
            ],
            [{"op": "test", "path": "/metadata/labels/absent", "value": None}],
            [{"op": "remove", "path": "/metadata/labels/absent"}],
            [{"op": "add", "path": "/metadata/finalizers/-1", "value": "z"}],
            [{"op": "remove", "path": "/metadata/finalizers/-2"}],
        ],
    )
    def test_json_patch(self, ops: Any, tmp_path: Any) -> None:
        doc = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": {"a": "1"}, "finalizers": ["f1", "f2"]},
            "data": {},
        }
        want = _kubectl_patch(doc, ops, "json", tmp_path)
        if want is None:
            assert patch_error(json_patch, doc, ops).code == 422
        else:
            assert json_patch(doc, ops) == want


# --- property: garbage in, PatchError out ---------------------------------------------

_KEYS = st.sampled_from(
    [
        "$patch",
        "$retainKeys",
        "$setElementOrder/containers",
        "$setElementOrder/env",
        "$setElementOrder/finalizers",
        "$deleteFromPrimitiveList/finalizers",
        "$deleteFromPrimitiveList/containers",
        "$setElementOrder",
        "metadata",
        "spec",
        "status",
        "template",
        "containers",
        "env",
        "ports",
        "finalizers",
        "ownerReferences",
        "volumes",
        "name",
        "uid",
        "containerPort",
        "tolerations",
        "conditions",
        "type",
        "op",
        "path",
        "from",
        "value",
        "a",
        "b",
    ]
) | st.text(max_size=4)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False, width=32)
    | st.sampled_from(
        [
            "delete",
            "replace",
            "merge",
            "a",
            "b",
            "/a",
            "/a/0",
            "/a/-",
            "",
            "add",
            "remove",
            "move",
            "copy",
            "test",
        ]
    )
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=25,
)
_OPS = (
    st.lists(
        st.fixed_dictionaries(
            {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "bogus"])},
            optional={
                "path": st.sampled_from(["", "/a", "/a/0", "/a/-", "/b", "/a/b", "/-1", "x"])
                | st.text(max_size=3),
                "from": st.sampled_from(["", "/a", "/b", "/a/0"]),
                "value": _JSON,
            },
        )
        | _JSON,
        max_size=5,
    )
    | _JSON
)

_KINDS = st.sampled_from(
    [("", "Pod"), ("apps", "Deployment"), ("", "Node"), ("example.com", "Widget")]
)
_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_patch_errors(fn: Any, *args: Any) -> None:
    frozen = orjson.dumps(args)
    try:
        out = fn(*args)
    except PatchError as err:
        assert err.__cause__ is None, f"unforeseen input reached the safety net: {err}"
        assert 400 <= err.code < 500 and err.reason and err.message
        return
    finally:
        assert orjson.dumps(args) == frozen, "input was mutated"
    orjson.dumps(out)  # the result is JSON


@_SETTINGS
@given(doc=_JSON, ops=_OPS)
def test_json_patch_garbage_only_raises_patch_error(doc: Any, ops: Any) -> None:
    _only_patch_errors(json_patch, doc, ops)


@_SETTINGS
@given(doc=_JSON, patch=_JSON)
def test_merge_patch_garbage_only_raises_patch_error(doc: Any, patch: Any) -> None:
    _only_patch_errors(merge_patch, doc, patch)


@_SETTINGS
@given(doc=st.dictionaries(_KEYS, _JSON, max_size=4), patch=_JSON, gk=_KINDS)
def test_strategic_merge_patch_garbage_only_raises_patch_error(
    doc: Any, patch: Any, gk: tuple[str, str]
) -> None:
    _only_patch_errors(strategic_merge_patch, doc, patch, *gk)


_NAMES = st.sampled_from(["a", "b", "c"])
_ENV = st.lists(
    st.fixed_dictionaries(
        {"name": _NAMES},
        optional={
            "value": _SCALARS,
            "$patch": st.sampled_from(["delete", "replace", "merge", "x"]),
        },
    ),
    max_size=4,
)
_CONTAINER = st.fixed_dictionaries(
    {"name": _NAMES},
    optional={
        "image": _SCALARS,
        "env": _ENV | _JSON,
        "$setElementOrder/env": st.lists(st.fixed_dictionaries({"name": _NAMES}), max_size=4)
        | _JSON,
        "$patch": st.sampled_from(["delete", "replace", "merge"]),
        "$retainKeys": st.lists(st.sampled_from(["name", "image", "env"])) | _JSON,
        "ports": st.lists(
            st.fixed_dictionaries({"containerPort": st.integers(80, 82)}), max_size=3
        ),
    },
)
_FINALIZERS = st.lists(st.sampled_from(["a", "b", "c"]), max_size=4)
_POD_PATCH = st.fixed_dictionaries(
    {},
    optional={
        "metadata": st.fixed_dictionaries(
            {},
            optional={
                "finalizers": _FINALIZERS | _JSON,
                "$setElementOrder/finalizers": _FINALIZERS | _JSON,
                "$deleteFromPrimitiveList/finalizers": _FINALIZERS | _JSON,
            },
        ),
        "spec": st.fixed_dictionaries(
            {},
            optional={
                "containers": st.lists(_CONTAINER, max_size=4) | _JSON,
                "$setElementOrder/containers": st.lists(
                    st.fixed_dictionaries({"name": _NAMES}), max_size=4
                ),
                "$patch": st.sampled_from(["delete", "replace", "x"]),
                "tolerations": _JSON,
            },
        ),
    },
)
_POD = st.fixed_dictionaries(
    {
        "metadata": st.fixed_dictionaries({"finalizers": _FINALIZERS}),
        "spec": st.fixed_dictionaries({"containers": st.lists(_CONTAINER, max_size=3)}),
    }
)


@_SETTINGS
@given(doc=_POD, patch=_POD_PATCH)
def test_strategic_merge_patch_pod_shaped_garbage(doc: Any, patch: Any) -> None:
    _only_patch_errors(strategic_merge_patch, doc, patch, "", "Pod")


@_SETTINGS
@given(
    live=st.lists(st.sampled_from(["a", "b", "c", "d"]), unique=True),
    wanted=st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), unique=True),
)
def test_finalizers_patch_reaches_desired_set(live: list[str], wanted: list[str]) -> None:
    """A kubectl-style patch (set + deletions + order) yields exactly the wanted finalizers."""
    patch = {
        "metadata": {
            "$setElementOrder/finalizers": wanted,
            "$deleteFromPrimitiveList/finalizers": [f for f in live if f not in wanted],
            "finalizers": [f for f in wanted if f not in live],
        }
    }
    out = strategic_merge_patch({"metadata": {"finalizers": live}}, patch, "", "Pod")
    assert out["metadata"]["finalizers"] == wanted
