"""Fixtures: one real cloudlet process per test module (fresh data dir)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.harness import CloudletProcess


@pytest.fixture(scope="module")
def cloudlet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudletProcess]:
    proc = CloudletProcess(tmp_path_factory.mktemp("cloudlet"))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def kubectl(cloudlet: CloudletProcess):  # type: ignore[no-untyped-def]
    return cloudlet.kubectl
