"""The docs' Python client example (docs/clients.md), run as written against the client
app: only its URL is pointed at the test server. It prints the stream until the user is revoked."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.client.conftest import start_server
from tests.conftest import ROOT


def readme_client_example() -> str:
    page = (ROOT / "docs" / "clients.md").read_text()
    section = page.split("## In Python: `authx.client`", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


async def test_the_readme_client_example_runs(
    live_server_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_server(live_server_factory)
    code = readme_client_example().replace("wss://api.example.com/ws", f"{server.ws}/stream")
    namespace: dict[str, Any] = {}
    exec(compile(code, str(Path("docs/clients.md")), "exec"), namespace)  # noqa: S102 - our own docs
    async with httpx.AsyncClient(base_url=server.http) as http:
        assert (await http.post("/login", params={"sub": "reader"})).status_code == 200
        example = asyncio.ensure_future(namespace["main"](http))
        await asyncio.sleep(1.0)  # it connects through a ticket and prints the stream
        await http.post("/revoke-subject", params={"sub": "reader"})
        await asyncio.wait_for(example, 10)
    printed = capsys.readouterr().out
    assert '{"user":"reader"}' in printed
    assert '{"n":3}' in printed
    assert printed.rstrip().endswith("stopped: token_revoked")
