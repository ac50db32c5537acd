"""The demo page of `make run` (examples/demo.py + demo.html), clicked through in Chromium.

The page drives every connection through the browser module; what it shows is read from
its log, and from ``window.demo`` (the stream's counter, the storm's counts).
"""

from __future__ import annotations

import json
from typing import Any

from authx.close_codes import lookup
from tests.conftest import free_port

#: Keeps every access token the page receives (from /login and /refresh), so that the
#: test can check that none reaches the server's log.
RECORD_TOKENS = """
window.issuedTokens = [];
const originalFetch = window.fetch;
window.fetch = async (...args) => {
  const response = await originalFetch(...args);
  if (/\\/(login|refresh)\\b/.test(response.url) && response.ok) {
    response.clone().json().then((body) => window.issuedTokens.push(body.access_token));
  }
  return response;
};
"""

STOP = "stop: no reconnect, log in again"
RETRY = "retry: reconnect after retry_after, else backoff with jitter"
REVOKED = f"closed 4004 token_revoked: {lookup('token_revoked').meaning} -> {STOP}"


def auth_error(code: int, reason: str) -> str:
    error = {"code": code, "reason": reason, "action": "stop"}
    return "onAuthError(" + json.dumps(error, separators=(",", ":"))


def wait_for_line(page: Any, text: str, timeout: float = 8000, count: int = 1) -> None:
    page.wait_for_function(
        "([text, count]) => document.getElementById('log').textContent.split(text).length > count",
        arg=[text, count],
        timeout=timeout,
    )


def greeting(name: str) -> str:
    return f"{name}: message " + json.dumps({"message": "Hello, test!"}, separators=(",", ":"))


def test_demo_page(context, live_server_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    server = live_server_factory(
        "examples.demo:app",
        port=port,
        DEMO_ORIGIN=origin,
        JWT_STORE_URL=f"sqlite:///{tmp_path / 'demo.db'}",
    )
    page = context.new_page()
    page.add_init_script(RECORD_TOKENS)
    page.goto(origin + "/")
    wait_for_line(page, "ready")
    page.click("#login")
    wait_for_line(page, "logged in as test")

    # Every transport: the endpoint's greeting is the proof the token was accepted.
    for transport in ("ticket", "subprotocol", "cookie", "message", "query"):
        page.click(f"button[data-transport='{transport}']")
        wait_for_line(page, greeting(transport))
    wait_for_line(page, "message: closed 1000 by client.close(): normal close, no reconnect")
    page.click("#wrong")
    wait_for_line(page, f"wrong: closed 4001 invalid_token: {lookup('invalid_token').meaning}")
    wait_for_line(page, "wrong: " + auth_error(4001, "invalid_token"))

    # The page's own close without a code: the browser's 1005, then a reconnect.
    page.click("button[data-transport='subprotocol']")
    wait_for_line(page, greeting("subprotocol"), count=2)
    page.click("#drop")
    wait_for_line(
        page,
        "subprotocol: closed 1005: closed by this page (no code) -> not AuthX's: "
        "reconnect with backoff and jitter; reconnecting in ",
    )
    wait_for_line(page, greeting("subprotocol"), count=3)

    # The stream with 5-second tokens and, meanwhile, a reconnect storm.
    page.click("#stream")
    page.click("#storm")
    page.wait_for_function("window.demo.storm && window.demo.storm.done", timeout=20_000)
    storm = page.evaluate("window.demo.storm")
    assert storm["connected"] == storm["size"] == 12
    assert storm["refused"] >= 1
    rate_limited = lookup("rate_limited").meaning
    wait_for_line(
        page,
        f": closed 4029 rate_limited; retry_after=1: {rate_limited} -> {RETRY}; reconnecting in 1.",
    )
    wait_for_line(page, "in after ")  # "storm: all 12 in after N rate_limited closes"

    page.wait_for_function(
        "(s => s.refreshes >= 1 && Date.now() / 1000 > s.firstExp + 1)(window.demo.stream)",
        timeout=15_000,
    )
    stream = page.evaluate("window.demo.stream")
    assert stream["sockets"] == 1, stream  # one socket across the first token's exp
    assert stream["gaps"] == 0, stream  # and a counter without a gap
    assert stream["exp"] > stream["firstExp"], stream  # the server's exp moved
    wait_for_line(page, "stream: authx.expiring: the token expires at ")
    wait_for_line(page, "stream: authx.refreshed: same socket, the server's exp is now ")
    assert "stream: the counter went from" not in (page.text_content("#log") or "")

    # Revocation: every open client stops, with the meaning, the action and onAuthError.
    page.click("button[data-transport='ticket']")
    wait_for_line(page, greeting("ticket"), count=2)
    page.click("#logout")
    for name in ("ticket", "stream"):
        wait_for_line(page, f"{name}: {REVOKED}")
        wait_for_line(page, f"{name}: {auth_error(4004, 'token_revoked')}")

    log = page.text_content("#log") or ""
    assert "closed 1006" not in log
    tokens = page.evaluate("window.issuedTokens")
    assert len(tokens) > 12
    text = server.assert_log_clean(*tokens)
    assert "token=[redacted]" in text
