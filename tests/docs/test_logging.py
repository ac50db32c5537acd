"""What an operator sees by default (docs/logging.md): under plain uvicorn, with no logging
configured, AuthX's WARNING lines reach standard error once, readable; INFO lines do not."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.conftest import SECRET


async def test_warnings_show_and_rejections_stay_quiet_by_default(
    live_server_factory: Any,
) -> None:
    server = live_server_factory(
        "tests.apps.plain_app:app",
        JWT_SECRET_KEY=SECRET,
        JWT_STORE_URL="redis://:hunter2@127.0.0.1:1/0?socket_timeout=0.2",
    )
    with pytest.raises(InvalidStatus):
        async with websockets.connect(f"{server.ws}/ws?token=not-a-token"):
            pass
    async with httpx.AsyncClient(base_url=server.http) as http:
        token = (await http.post("/login")).json()["access_token"]
        for _ in range(3):
            answer = await http.get("/me", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 503
            assert answer.json()["reason"] == "store_unavailable"
    await asyncio.sleep(0.3)
    log = server.assert_log_clean(token, "hunter2")
    warning = "revocation store redis://:***@127.0.0.1:1/0?socket_timeout=0.2 unavailable"
    assert log.count(warning) == 1, log  # once per outage, not once per request
    assert "StoreUnavailableError" not in log, log
    # No logger configured: the message alone, with no prefix of ours (none doubled either).
    assert not any(line.startswith("authx") for line in log.splitlines()), log
    assert "rejected WebSocket" not in log  # INFO: shown only when the app asks for it
    assert "Traceback" not in log
