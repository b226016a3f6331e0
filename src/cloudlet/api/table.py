"""Server-side printing: objects as ``meta.k8s.io/v1`` Tables.

``kubectl get`` asks for ``application/json;as=Table;v=v1;g=meta.k8s.io``
and prints the rows it gets back. Column definitions and cells come from
:mod:`cloudlet.resources.tables` (per kind) or, for kinds without a printer,
the default Name/Age columns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cloudlet.resources.registry import AGE_COLUMN, NAME_COLUMN, Column, ResourceType
from cloudlet.resources.tables import TABLES, age

Obj = dict[str, Any]


def _printer(rt: ResourceType) -> tuple[list[Column], Callable[[Obj], list[Any]]]:
    found = TABLES.get(rt.storage_key) or TABLES.get(rt.key)
    if found is not None:
        return found
    if rt.table is not None:
        return rt.columns, rt.table

    def default_row(obj: Obj) -> list[Any]:
        return [obj.get("metadata", {}).get("name", ""), age(obj)]

    return [NAME_COLUMN, AGE_COLUMN], default_row


def partial_metadata(obj: Obj) -> Obj:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def rows(rt: ResourceType, objs: list[Obj], include_object: str = "Metadata") -> list[Obj]:
    _cols, fn = _printer(rt)
    out = []
    for o in objs:
        try:
            cells = fn(o)
        except Exception:  # a printer must never fail a request; fall back to name only
            cells = [o.get("metadata", {}).get("name", "")] + [""] * (len(_cols) - 1)
        row: Obj = {"cells": cells}
        if include_object == "Object":
            row["object"] = o
        elif include_object != "None":
            row["object"] = partial_metadata(o)
        out.append(row)
    return out


def table(
    rt: ResourceType,
    objs: list[Obj],
    *,
    resource_version: str = "",
    continue_: str = "",
    remaining: int | None = None,
    include_object: str = "Metadata",
    with_columns: bool = True,
) -> Obj:
    cols, _fn = _printer(rt)
    meta: Obj = {"resourceVersion": resource_version}
    if continue_:
        meta["continue"] = continue_
    if remaining is not None:
        meta["remainingItemCount"] = remaining
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": [c.definition() for c in cols] if with_columns else None,
        "rows": rows(rt, objs, include_object),
    }
