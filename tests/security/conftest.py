"""Fixtures of the security tests: the attacked servers, a JWKS host that must never be
asked, and the Hypothesis profiles (``HYPOTHESIS_PROFILE=fuzz`` for ``make fuzz``)."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

from tests.conftest import LiveServer
from tests.security.corpus import ATTACKER_KEY, server_env

APP = "tests.security.attack_app:app"

# Bounded by default; `make fuzz` runs the long profile. No example database, and
# Hypothesis' other files (caches, patches of failing cases) go to the temporary
# directory: the working tree is shared, and a run must not leave files in it.
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "authx-security-hypothesis"))
settings.register_profile(
    "security",
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "fuzz",
    max_examples=20_000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "security"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The long profile outlives the suite's 120 s per-test timeout.
    if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz":
        for item in items:
            if item.nodeid.startswith("tests/security/test_fuzz.py"):
                item.add_marker(pytest.mark.timeout(3600))


@pytest.fixture
def servers(live_server_factory: Any) -> dict[str, LiveServer]:
    """The attacked servers (started once per run): ``deny`` (the default
    JWT_WS_REJECTION) and ``close``."""
    return {
        "deny": live_server_factory(APP, **server_env()),
        "close": live_server_factory(APP, **server_env(JWT_WS_REJECTION="close")),
    }


@pytest.fixture
def server(servers: dict[str, LiveServer]) -> LiveServer:
    return servers["deny"]


@dataclass
class KeyHost:
    """An HTTP server offering the attacker's JWKS; it records every request it gets."""

    url: str
    requests: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def key_host() -> Iterator[KeyHost]:
    from jwt.algorithms import RSAAlgorithm

    jwks = json.dumps({"keys": [RSAAlgorithm.to_jwk(ATTACKER_KEY.public_key(), as_dict=True)]})
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            body = jwks.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    host = KeyHost(f"http://127.0.0.1:{httpd.server_address[1]}/jwks.json", requests)
    yield host
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)
