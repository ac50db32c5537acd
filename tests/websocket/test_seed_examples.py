"""Each example of the seed, run unchanged under uvicorn and driven by a real client."""

from __future__ import annotations

import json
import py_compile
import urllib.request
from pathlib import Path

import pytest

from tests.websocket.client import handshake

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def login(server, scopes: list[str] | None = None) -> str:  # type: ignore[no-untyped-def]
    body: dict[str, object] = {"username": "test", "password": "test"}
    if scopes is not None:
        body["scopes"] = scopes
    request = urllib.request.Request(
        f"{server.http}/login",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        token: str = json.load(response)["access_token"]
    return token


async def test_complete_example(live_server_factory) -> None:  # type: ignore[no-untyped-def]
    server = live_server_factory("examples.seed_complete:app")
    token = login(server)
    import websockets

    async with websockets.connect(f"{server.ws}/ws?token={token}") as ws:
        assert json.loads(await ws.recv()) == {"message": "Hello, test!"}
        await ws.send("ping")
        assert json.loads(await ws.recv()) == {"user": "test", "echo": "ping"}
    outcome = await handshake(f"{server.ws}/ws", headers={"Authorization": f"Bearer {token}"})
    assert outcome.message == {"message": "Hello, test!"}
    outcome = await handshake(f"{server.ws}/ws")
    assert (outcome.status, outcome.body["error_type"]) == (401, "MissingTokenError")
    server.assert_log_clean(token)


async def test_ws_auth_required_example(live_server_factory) -> None:  # type: ignore[no-untyped-def]
    server = live_server_factory("examples.seed_ws_auth_required:app")
    token = login(server)
    assert (await handshake(f"{server.ws}/ws?token={token}")).message == {"user": "test"}
    outcome = await handshake(f"{server.ws}/ws?token=nope")
    assert (outcome.status, outcome.body["error_type"]) == (401, "JWTDecodeError")
    server.assert_log_clean(token)


async def test_rejection_example_runs_as_written(live_server_factory) -> None:  # type: ignore[no-untyped-def]
    server = live_server_factory("examples.seed_rejection:app")
    token = login(server)
    assert (await handshake(f"{server.ws}/ws?token={token}")).message == {"user": "test"}
    # Closing before accepting is answered by the server with a bare 403: the
    # client never sees 4001 (see the README for auth.ws_reject).
    outcome = await handshake(f"{server.ws}/ws?token=nope")
    assert (outcome.kind, outcome.status) == ("denied", 403)
    server.assert_log_clean(token)


async def test_scopes_example(live_server_factory) -> None:  # type: ignore[no-untyped-def]
    server = live_server_factory("examples.seed_scopes:app")
    admin = login(server, scopes=["admin:*"])
    outcome = await handshake(f"{server.ws}/ws/admin?token={admin}")
    assert outcome.message == {"admin": True, "user": "test"}
    reader = login(server, scopes=["read"])
    outcome = await handshake(f"{server.ws}/ws/admin?token={reader}")
    assert (outcome.kind, outcome.status) == ("denied", 403)
    server.assert_log_clean(admin, reader)


async def test_blocklist_example(live_server_factory) -> None:  # type: ignore[no-untyped-def]
    server = live_server_factory("examples.seed_blocklist:app")
    token = login(server)
    import websockets

    # The endpoint accepts and returns at once: the handshake itself succeeds.
    async with websockets.connect(f"{server.ws}/ws?token={token}") as ws:
        assert ws.response.status_code == 101
        await ws.wait_closed()
    request = urllib.request.Request(f"{server.http}/logout?token={token}", method="POST")
    with urllib.request.urlopen(request):
        pass
    outcome = await handshake(f"{server.ws}/ws?token={token}")
    assert (outcome.status, outcome.body["error_type"]) == (401, "RevokedTokenError")
    server.assert_log_clean(token)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("seed_*.py")), ids=lambda p: p.stem)
def test_examples_compile(path: Path) -> None:
    py_compile.compile(str(path), doraise=True)
