"""The quick start, followed as a newcomer would: the page's code is examples/quickstart.py,
and its shell commands (curl, then the websockets client) run against a real server."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.conftest import ROOT

BASH = shutil.which("bash") or "/bin/bash"
PAGE = (ROOT / "docs" / "quickstart.md").read_text()


def console_commands() -> list[str]:
    """The ``$`` commands of the page's console blocks, continuation lines joined."""
    commands: list[str] = []
    for block in re.findall(r"```console\n(.*?)```", PAGE, re.DOTALL):
        for command in re.findall(r"^\$ (.*?)(?=^\S|\Z)", block, re.DOTALL | re.MULTILINE):
            commands.append(re.sub(r"\\\n\s*", "", command).strip())
    return commands


def test_the_page_shows_the_example_file() -> None:
    code = re.search(r"```python\n(.*?)```", PAGE, re.DOTALL)
    assert code is not None
    assert code.group(1) == (ROOT / "examples" / "quickstart.py").read_text()


@pytest.fixture
def quickstart(live_server_factory: Any) -> Any:
    return live_server_factory("examples.quickstart:app")


def test_the_curl_commands_work(quickstart: Any) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is needed to follow the quick start (.ci/run installs it)")
    login, me, anonymous = (c for c in console_commands() if "curl" in c)
    script = "\n".join(["set -euo pipefail", login, me, anonymous])
    script = script.replace("http://127.0.0.1:8000", quickstart.http)
    done = subprocess.run(
        [BASH, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    # curl prints the body without a newline: the terminal's prompt would follow it.
    assert done.stdout.replace("\r", "") == '{"user":"test"}HTTP/1.1 401 Unauthorized\n'

    # The password travelled in the body: the access log shows the path only.
    assert 'POST /login HTTP/1.1" 200' in quickstart.log()
    assert "password" not in quickstart.log()


async def test_login_http_and_websocket(quickstart: Any) -> None:
    async with httpx.AsyncClient(base_url=quickstart.http) as http:
        wrong = await http.post("/login", json={"username": "test", "password": "nope"})
        assert wrong.status_code == 401
        login = await http.post("/login", json={"username": "test", "password": "test"})
        token = login.json()["access_token"]
        me = await http.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json() == {"user": "test"}
        anonymous = await http.get("/me")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == "Bearer"
        assert anonymous.json()["error_type"] == "MissingTokenError"
        assert anonymous.json()["reason"] == "invalid_token"
    async with websockets.connect(f"{quickstart.ws}/ws?token={token}") as ws:
        await ws.send("hello")
        assert json.loads(await ws.recv()) == {"user": "test", "echo": "hello"}
    quickstart.assert_log_clean(token)


async def test_a_bad_token_is_one_readable_line(quickstart: Any) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(f"{quickstart.ws}/ws?token=not-a-token"):
            pass
    assert refused.value.response.status_code == 401
    line = "INFO:     authx: rejected WebSocket /ws: JWTDecodeError (Invalid Token)"
    assert line in PAGE
    log = quickstart.assert_log_clean("not-a-token")
    assert log.count(line) == 1, log
    assert "authx: authx:" not in log


def test_the_interactive_client_connects(quickstart: Any) -> None:
    command = next(c for c in console_commands() if "-m websockets" in c)
    assert command == 'python3 -m websockets "ws://127.0.0.1:8000/ws?token=$TOKEN"'
    token = httpx.post(
        f"{quickstart.http}/login", json={"username": "test", "password": "test"}
    ).json()["access_token"]
    # Type a line, then wait for the answer before the input ends (which closes the client).
    client = f"{sys.executable} -m websockets {quickstart.ws}/ws?token={token}"
    done = subprocess.run(
        [BASH, "-c", f"(echo hello; sleep 1.5) | {client}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert '< {"user":"test","echo":"hello"}' in done.stdout, done.stdout + done.stderr
