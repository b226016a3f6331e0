"""Cache: built-in and user indexes, kept up to date through put/remove/replace."""

from __future__ import annotations

import pytest

from cloudlet.api.errors import APIError
from cloudlet.client.cache import (
    LABEL_INDEX,
    NAMESPACE_INDEX,
    NODE_INDEX,
    OWNER_INDEX,
    Cache,
    label_value,
)


def pod(name: str, ns: str = "default", node: str = "", owner: str = "", **labels: str) -> dict:
    meta: dict = {"name": name, "namespace": ns, "labels": labels}
    if owner:
        meta["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "X", "name": "other", "uid": "not-controller"},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": owner, "controller": True},
        ]
    return {"metadata": meta, "spec": {"nodeName": node} if node else {}}


def put(c: Cache, o: dict) -> None:
    c.put(f"{o['metadata']['namespace']}/{o['metadata']['name']}", o)


def test_builtin_indexes_are_maintained() -> None:
    c = Cache()
    assert c.indexers() == [NAMESPACE_INDEX]
    put(c, pod("a", node="n1", owner="rs-1", app="web"))
    put(c, pod("b", node="n1", app="db"))
    put(c, pod("c", "other", node="n2", owner="rs-1", app="web"))
    # built-ins other than namespace are created lazily, from the current contents
    assert c.index_keys(NODE_INDEX, "n1") == ["default/a", "default/b"]
    assert c.index_keys(OWNER_INDEX, "rs-1") == ["default/a", "other/c"]
    assert c.index_keys(OWNER_INDEX, "not-controller") == []
    assert [o["metadata"]["name"] for o in c.by_index(LABEL_INDEX, label_value("app", "web"))] == ["a", "c"]
    assert c.index_keys(NAMESPACE_INDEX, "other") == ["other/c"]
    assert set(c.indexers()) == {NAMESPACE_INDEX, NODE_INDEX, OWNER_INDEX, LABEL_INDEX}

    put(c, pod("a", node="n2", app="api"))  # moved node, lost owner, relabelled
    assert c.index_keys(NODE_INDEX, "n1") == ["default/b"]
    assert c.index_keys(NODE_INDEX, "n2") == ["default/a", "other/c"]
    assert c.index_keys(OWNER_INDEX, "rs-1") == ["other/c"]
    assert c.index_keys(LABEL_INDEX, "app=web") == ["other/c"]
    assert c.index_keys(LABEL_INDEX, "app=api") == ["default/a"]
    assert c.remove("other/c") is not None and c.remove("other/c") is None
    assert c.index_values(OWNER_INDEX) == []  # emptied values do not linger
    assert c.index_values(NAMESPACE_INDEX) == ["default"]
    assert c.stats()["objects"] == 2


def test_user_indexers_replace_and_errors() -> None:
    def by_team(o: dict) -> list[str]:
        team = o["metadata"]["labels"].get("team")
        if team == "boom":
            raise RuntimeError("bad index function")
        return [team] if team else []

    c = Cache({"team": by_team})
    put(c, pod("a", team="red"))
    put(c, pod("b", team="boom"))  # logged, left out of the index, still cached
    put(c, pod("c", team="red"))
    assert c.index_keys("team", "red") == ["default/a", "default/c"] and c.get("default/b") is not None
    c.add_indexer("team", by_team)  # same function again: no-op
    with pytest.raises(ValueError):
        c.add_indexer("team", lambda o: [])
    with pytest.raises(ValueError):
        c.add_indexer("nonsense")
    with pytest.raises(KeyError):
        c.by_index("unknown", "x")
    # an index added to a full cache is built from what is there
    c.add_indexer("first-letter", lambda o: [o["metadata"]["name"][0]])
    assert c.index_keys("first-letter", "c") == ["default/c"]
    old = c.replace({"x/z": pod("z", "x", team="blue")})
    assert sorted(old) == ["default/a", "default/b", "default/c"]
    assert c.index_keys("team", "red") == [] and c.index_keys("team", "blue") == ["x/z"]
    assert c.index_keys(NAMESPACE_INDEX, "x") == ["x/z"] and c.keys() == ["x/z"]


def test_list_by_namespace_and_selector() -> None:
    c = Cache()
    for o in (pod("b", app="web", tier="fe"), pod("a", app="web"), pod("c", "other", app="web"), pod("d", app="db")):
        put(c, o)
    names = lambda objs: [o["metadata"]["name"] for o in objs]  # noqa: E731
    assert names(c.list()) == ["a", "b", "d", "c"]  # key order: default/a, default/b, default/d, other/c
    assert names(c.list("default")) == ["a", "b", "d"]
    assert names(c.list(label_selector="app=web")) == ["a", "b", "c"]
    assert names(c.list("default", "app in (web),tier")) == ["b"]
    assert names(c.list("nowhere")) == []
    with pytest.raises(APIError) as ei:
        c.list(label_selector="app in (")
    assert ei.value.code == 400
