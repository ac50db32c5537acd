"""``authx token create`` and ``authx token inspect``: test tokens, and why a token fails."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from click.testing import Result

from authx import AuthX, AuthXConfig
from authx.cli import ExitCode
from authx.token import create_token

from .conftest import SECRET, Run

ENV = {"JWT_SECRET_KEY": SECRET}
OTHER_SECRET = "another-secret-that-is-also-long-enough-for-hs256"
issuer = AuthX(config=AuthXConfig(JWT_SECRET_KEY=SECRET))


def claims_of(token: str, **settings: Any) -> dict[str, Any]:
    """The verified claims, as a server configured with ``settings`` sees them."""
    auth = AuthX(config=AuthXConfig(JWT_SECRET_KEY=SECRET, **settings))
    return auth._decode_token(token).model_dump(exclude_none=True)


def test_create_writes_what_it_is_asked(invoke: Callable[..., Result]) -> None:
    result = invoke(
        *("token", "create", "--sub", "alice", "--scopes", "read, write", "--scope", "admin"),
        *("--claim", "role=admin", "--claim", "level=3", "--claim", 'tags=["a"]'),
        *("--claim", "zip=01234", "--claim", "ratio=NaN"),
        *("--audience", "api", "--fresh", "--expires", "1h30m"),
        env=ENV,
    )
    assert result.exit_code == 0, result.output
    claims = claims_of(result.stdout.strip(), JWT_DECODE_AUDIENCE="api")
    assert claims["sub"] == "alice"
    assert claims["aud"] == ["api"]
    assert claims["scopes"] == ["read", "write", "admin"]
    assert (claims["role"], claims["level"], claims["tags"], claims["zip"]) == (
        "admin",
        3,
        ["a"],
        "01234",
    )
    assert claims["ratio"] == "NaN"  # not JSON (RFC 8259): kept as a string
    assert claims["fresh"] is True
    assert claims["type"] == "access"
    assert abs(claims["exp"].timestamp() - time.time() - 5400) < 5


@pytest.mark.parametrize(
    ("args", "lifetime"),
    [
        ((), 15 * 60),  # JWT_ACCESS_TOKEN_EXPIRES's default
        (("--expires", "3600"), 3600),
        (("--expires", "2d"), 2 * 86400),
        (("--type", "refresh"), 20 * 86400),
        (("--type", "refresh", "--expires", "45s"), 45),
        (("--expires", "never"), None),
        (("--type", "refresh", "--expires", "never"), None),
    ],
)
def test_create_lifetimes(
    args: tuple[str, ...], lifetime: int | None, invoke: Callable[..., Result]
) -> None:
    result = invoke("token", "create", "--sub", "bob", *args, env=ENV)
    assert result.exit_code == 0, result.output
    claims = claims_of(result.stdout.strip())
    assert claims["type"] == ("refresh" if "refresh" in args else "access")
    if lifetime is None:
        assert "exp" not in claims
    else:
        assert abs(claims["exp"].timestamp() - time.time() - lifetime) < 5


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("--expires", "soon"), "not a duration"),
        (("--expires", "999999999999d"), "too long a duration"),
        (("--sub", ""), "the subject is empty"),
        (("--type", "refresh", "--fresh"), "--fresh"),
        (("--claim", "sub=mallory"), "'sub' is set by the token itself"),
        (("--claim", "no-equals-sign"), "KEY=VALUE"),
        (("--type", "id"), "'id' is not one of"),
    ],
)
def test_create_usage_errors(
    args: tuple[str, ...], complaint: str, invoke: Callable[..., Result]
) -> None:
    result = invoke("token", "create", "--sub", "bob", *args, env=ENV)
    assert result.exit_code == ExitCode.USAGE
    assert complaint in result.stderr


def future_token() -> str:
    return create_token("alice", SECRET, not_before=time.time() + 7230, expiry=timedelta(hours=3))


# (token maker, settings of the inspecting shell, --type, reason, words of the message)
FAILURES: dict[str, tuple[Callable[[], str], dict[str, str], str | None, str, list[str]]] = {
    "expired": (
        lambda: issuer.create_access_token("alice", expiry=timedelta(minutes=-5)),
        {},
        None,
        "expired",
        ["expired at", ", 5m", " ago"],
    ),
    "bad signature": (
        lambda: AuthX(config=AuthXConfig(JWT_SECRET_KEY=OTHER_SECRET)).create_access_token("a"),
        {},
        None,
        "bad_signature",
        ["not signed with JWT_SECRET_KEY"],
    ),
    "wrong audience": (
        lambda: issuer.create_access_token("alice", audience="api"),
        {"JWT_DECODE_AUDIENCE": "web"},
        None,
        "wrong_audience",
        ['"api"', 'JWT_DECODE_AUDIENCE expects "web"'],
    ),
    "unexpected audience": (
        lambda: issuer.create_access_token("alice", audience="api"),
        {},
        None,
        "wrong_audience",
        ["JWT_DECODE_AUDIENCE is not set"],
    ),
    "wrong issuer": (
        lambda: AuthX(
            config=AuthXConfig(JWT_SECRET_KEY=SECRET, JWT_ENCODE_ISSUER="them")
        ).create_access_token("alice"),
        {"JWT_DECODE_ISSUER": "us"},
        None,
        "wrong_issuer",
        ['issued by "them"', '"us"'],
    ),
    "algorithm not accepted": (
        lambda: create_token("alice", "k" * 64, algorithm="HS512"),
        {},
        None,
        "algorithm_not_accepted",
        ['"HS512"', "HS256"],
    ),
    "not yet valid": (future_token, {}, None, "not_yet_valid", ["nbf", "in 2h"]),
    "malformed": (lambda: "a.b.c", {}, None, "malformed", ["Invalid token"]),
    "not a jwt": (lambda: "hello", {}, None, "malformed", ["segments"]),
    "too large": (
        lambda: issuer.create_access_token("alice"),
        {"JWT_MAX_TOKEN_SIZE": "64"},
        None,
        "too_large",
        ["JWT_MAX_TOKEN_SIZE (64)", "not decoded"],
    ),
    "wrong type": (
        lambda: issuer.create_access_token("alice"),
        {},
        "refresh",
        "wrong_type",
        ["'refresh' token required"],
    ),
}


@pytest.mark.parametrize("case", FAILURES)
def test_inspect_says_why_a_token_fails(case: str, invoke: Callable[..., Result]) -> None:
    make, settings, kind, reason, words = FAILURES[case]
    token = make()
    options = ["--type", kind] if kind else []
    env = {**ENV, **settings}

    shown = invoke("token", "inspect", token, *options, env=env)
    assert shown.exit_code == ExitCode.TOKEN_INVALID, shown.output
    verdict = shown.stdout.strip().splitlines()[-1]
    assert verdict.startswith(f"result: invalid ({reason}): "), verdict
    for word in words:
        assert word in verdict
    assert SECRET not in shown.output

    report = json.loads(invoke("token", "inspect", "--json", token, *options, env=env).stdout)
    assert (report["valid"], report["reason"]) == (False, reason)
    assert report["message"] in verdict


def test_inspect_shows_a_valid_token(invoke: Callable[..., Result]) -> None:
    token = issuer.create_access_token("alice", scopes=["read"], data={"name": "\x1b[31mred"})
    shown = invoke("token", "inspect", token, "--type", "access", env=ENV)
    assert shown.exit_code == 0, shown.output
    assert '  sub: "alice"' in shown.stdout
    assert '  alg: "HS256"' in shown.stdout
    assert "in 15m" in shown.stdout or "in 14m" in shown.stdout  # exp, spelled out
    # Values from the token are escaped: no control character reaches the terminal.
    assert "\x1b" not in shown.stdout
    assert '"\\u001b[31mred"' in shown.stdout
    assert shown.stdout.strip().endswith(
        "result: valid: signature and claims verified; "
        "revocation not checked (memory:// is each server's own memory)"
    )
    assert SECRET not in shown.output
    report = json.loads(invoke("token", "inspect", token, "--json", env=ENV).stdout)
    assert report["valid"] is True
    assert report["claims"]["scopes"] == ["read"]
    assert report["revocation"] == "not_checked"


def test_inspect_without_verification_needs_no_key(invoke: Callable[..., Result]) -> None:
    token = AuthX(config=AuthXConfig(JWT_SECRET_KEY=OTHER_SECRET)).create_access_token("bob")
    shown = invoke("token", "inspect", "--no-verify", token)
    assert shown.exit_code == 0, shown.output
    assert '  sub: "bob"' in shown.stdout
    assert "not verified (--no-verify)" in shown.stdout
    assert invoke("token", "inspect", "--no-verify", "junk").exit_code == 1
    # Verifying does need the key: a configuration error, not an invalid token.
    refused = invoke("token", "inspect", token)
    assert refused.exit_code == ExitCode.CONFIGURATION
    assert "JWT_SECRET_KEY" in refused.stderr
    assert "Traceback" not in refused.output


def test_inspect_reads_stdin_in_the_real_command(authx_cmd: Callable[..., Run]) -> None:
    expired = authx_cmd("token", "create", "--sub", "carol", "--expires=-1h", env=ENV)
    assert expired.code == 0, expired.stderr
    shown = authx_cmd("token", "inspect", "-", env=ENV, input=expired.stdout)
    assert shown.code == ExitCode.TOKEN_INVALID
    assert "result: invalid (expired): expired at" in shown.stdout
    assert re.search(r"expired at \S+Z, 1h( \d+s)? ago", shown.stdout)
    assert SECRET not in shown.output
    assert "Traceback" not in shown.output
    forged = authx_cmd("token", "inspect", expired.stdout.strip(), env={"JWT_SECRET_KEY": "x" * 40})
    assert forged.code == ExitCode.TOKEN_INVALID
    assert "(bad_signature)" in forged.stdout
    assert "x" * 40 not in forged.output


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"JWT_DECODE_LEEWAY": "soon"}, "JWT_DECODE_LEEWAY"),
        ({"JWT_ALGORITHM": "HS257"}, "JWT_ALGORITHM"),
        ({"JWT_WS_TRUSTED_PROXIES": "[not json"}, "JWT_WS_TRUSTED_PROXIES"),
        ({"JWT_STORE_URL": "ftp://cache"}, "JWT_STORE_URL"),
        (
            {
                "JWT_ALGORITHM": "RS256",
                "JWT_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nsecretstuff",
            },
            "JWT_PRIVATE_KEY is not a valid key",
        ),
    ],
)
def test_a_bad_configuration_is_one_line(
    settings: dict[str, str], complaint: str, authx_cmd: Callable[..., Run]
) -> None:
    for args in (("token", "create", "--sub", "a"), ("token", "inspect", "a.b.c")):
        run = authx_cmd(*args, env={**ENV, **settings})
        assert run.code == ExitCode.CONFIGURATION, run.output
        assert run.stdout == ""
        assert complaint in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1
        assert "Traceback" not in run.stderr
        assert SECRET not in run.output
        assert "secretstuff" not in run.output
