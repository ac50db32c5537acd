"""The demo page of `make run`, clicked through in a real browser."""

from __future__ import annotations

from typing import Any

from tests.conftest import free_port


def wait_for_line(page: Any, text: str, timeout: float = 8000) -> None:
    page.wait_for_function(
        "(text) => document.getElementById('log').textContent.includes(text)",
        arg=text,
        timeout=timeout,
    )


def test_demo_page_every_transport(context, live_server_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    server = live_server_factory(
        "examples.demo:app",
        port=port,
        DEMO_ORIGIN=origin,
        JWT_WS_AUTH_MESSAGE_TIMEOUT="1",
        JWT_STORE_URL=f"sqlite:///{tmp_path / 'demo.db'}",
    )
    page = context.new_page()
    page.goto(origin + "/")
    page.click("#login")
    wait_for_line(page, "logged in")
    for transport in ("query", "subprotocol", "cookies", "ticket", "message"):
        page.click(f"button[data-t='{transport}']:not([data-bad])")
        wait_for_line(page, f'{transport}: received {{"message":"Hello, test!"')
    for transport, code in (
        ("query", "4001 invalid_token: "),
        ("subprotocol", "4001 invalid_token: "),
        ("ticket", "4001 invalid_token: "),
        ("message", "4008 auth_timeout: "),
        ("cookies", "4001 invalid_token: "),
    ):
        page.click(f"button[data-t='{transport}'][data-bad]")
        wait_for_line(page, f"{transport}: closed {code}")
    page.click("#login")
    page.click("button[data-t='query']:not([data-bad])")
    wait_for_line(page, 'query: received {"message":"Hello, test!"')
    token = page.evaluate("token")
    page.click("#logout")
    wait_for_line(
        page,
        "query: closed 4004 token_revoked: the token, or every token of its user, "
        "was revoked (logout) -> stop: do not reconnect, log in again",
    )
    log = page.text_content("#log") or ""
    assert "closed 1006" not in log
    server.assert_log_clean(token)
