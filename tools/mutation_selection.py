"""pytest plugin for ``make mutation``: keep only the tests that run AuthX in this process.

mutmut finds the tests of a mutated function by tracing calls in the pytest
process, and runs only those against each mutant. A test whose server runs in
a uvicorn child, a redis-server or a browser exercises AuthX out of sight of
that tracing and takes seconds; such tests are deselected here, by the fixtures
they use, so that a new in-process test file joins the selection by itself.
"""

from __future__ import annotations

import pytest

#: Fixtures that start (or need) another process.
OUT_OF_PROCESS_FIXTURES = frozenset(
    {
        "live_server_factory",
        "redis_proc",
        "redis_fault_proc",
        "redis_url",
        "fault_redis",
        "shared_backend",
        "authx_cmd",
    }
)
#: Store kinds a parametrised store test may run over; only the memory store is mutated.
OTHER_STORES = frozenset({"sqlite", "redis"})
#: Tests that cannot run against mutmut's mutated copy, by node id prefix: soak tests
#: (seconds each, ten times that under mutmut's tracing; what they check of the
#: mutated code is pinned by faster tests beside them), tests that read the
#: package's source files (mutmut rewrites them with a trampoline per function) and
#: the test of the frame a warning points at (the trampolines add frames).
NOT_FOR_MUTANTS = (
    "tests/websocket/test_registry.py::test_ten_thousand_cycles_leave_nothing_behind",
    "tests/core/test_structure.py::",
    # Checks the frame a warning is attributed to; mutmut's trampolines add frames.
    "tests/core/test_config.py::test_short_secret_warning_points_at_the_callers_line",
)


def selected(item: pytest.Item) -> bool:
    if item.nodeid.startswith(NOT_FOR_MUTANTS):
        return False
    if OUT_OF_PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
        return False
    callspec = getattr(item, "callspec", None)
    params = callspec.params.values() if callspec is not None else ()
    return not any(isinstance(value, str) and value in OTHER_STORES for value in params)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    dropped = [item for item in items if not selected(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if selected(item)]
