"""Store fixtures: every store kind over its real backend (a temporary file, a redis-server)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor

from authx.stores import MemoryStore, Store

ALL_KINDS = ["memory", "sqlite", "redis"]
SHARED_KINDS = ["sqlite", "redis"]


def _find_redis_server() -> str | None:
    found = shutil.which("redis-server")
    if found is None and Path("/usr/bin/redis-server").exists():
        found = "/usr/bin/redis-server"
    return found


ROOT = Path(__file__).resolve().parents[2]
REDIS_SERVER = _find_redis_server()

# Session-scoped real servers, each on a free 127.0.0.1 port; the second one is
# for the fault tests, which stop and restart it.
redis_proc = factories.redis_proc(executable=REDIS_SERVER or "redis-server", port=None)
redis_fault_proc = factories.redis_proc(executable=REDIS_SERVER or "redis-server", port=None)


def require_redis_server() -> None:
    """Skip without redis-server, except on CI where its absence is a failure."""
    if REDIS_SERVER is not None:
        return
    reason = "redis-server is not installed (apt-get install redis-server)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; it is required when CI=true")
    pytest.skip(reason)


def url_of(proc: RedisExecutor) -> str:
    return f"redis://{proc.host}:{proc.port}/0"


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """The session's redis-server."""
    require_redis_server()
    proc: RedisExecutor = request.getfixturevalue("redis_proc")
    return url_of(proc)


@pytest.fixture
def fault_redis(request: pytest.FixtureRequest) -> Iterator[RedisExecutor]:
    """A redis-server of its own that a test may stop; it is running again afterwards."""
    require_redis_server()
    proc: RedisExecutor = request.getfixturevalue("redis_fault_proc")
    yield proc
    if not proc.running():
        proc.start()


@dataclass
class Backend:
    """One backend of one store kind; :meth:`open` makes another store instance over it."""

    kind: str
    url: str
    opened: list[Store] = field(default_factory=list)

    def open(self) -> Store:
        from authx.stores import store_from_url

        if self.kind == "memory":
            # A memory store's backend is the object itself.
            if not self.opened:
                self.opened.append(MemoryStore())
            return self.opened[0]
        store = store_from_url(self.url)
        self.opened.append(store)
        return store

    async def close_all(self) -> None:
        for store in self.opened:
            await store.close()


def make_backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if kind == "memory":
        return Backend(kind, "memory://")
    if kind == "sqlite":
        return Backend(kind, f"sqlite:///{tmp_path / 'authx.db'}?poll_interval=0.02")
    # A prefix per test keeps tests apart on the shared server.
    url = request.getfixturevalue("redis_url")
    return Backend(kind, f"{url}?prefix=test-{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=ALL_KINDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Every store kind, in turn."""
    made = make_backend(request.param, request, tmp_path)
    yield made
    await made.close_all()


@pytest.fixture(params=SHARED_KINDS)
async def shared_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """The store kinds that several processes share."""
    made = make_backend(request.param, request, tmp_path)
    yield made
    await made.close_all()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()
