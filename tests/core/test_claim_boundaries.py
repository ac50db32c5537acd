"""The exact instants at which ``exp``, ``nbf`` and ``iat`` start and stop a token's validity.

The clock AuthX reads (``time.time`` as seen by ``authx.token``) is pinned, so
each case sits on the boundary or a millisecond beside it:

- ``exp``: expired from ``exp + leeway`` on (at that instant too), valid just before;
- ``nbf`` and ``iat``: valid from ``claim - leeway`` on (at that instant too), refused
  just before.
"""

from __future__ import annotations

import types
from typing import Any

import pytest
from core_support import SECRET, get_access, make_auth

import authx.token
from authx.exceptions import JWTDecodeError, TokenExpiredError
from authx.token import create_token, decode_token, validate_claims

#: A claim value with a fractional part, as ``expiry=timedelta(...)`` writes them.
T = 1_700_000_000.25
MS = 0.001
LEEWAYS = [0, 30]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """``clock.now`` is what ``authx.token`` reads as the current time."""
    pinned = types.SimpleNamespace(now=T)
    fake_time = types.SimpleNamespace(time=lambda: pinned.now)
    monkeypatch.setattr(authx.token, "time", fake_time)
    return pinned


def outcome(claims: dict[str, Any], leeway: float) -> str:
    try:
        validate_claims(claims, leeway=leeway)
    except TokenExpiredError:
        return "expired"
    except JWTDecodeError:
        return "not yet valid"
    return "valid"


# exp -------------------------------------------------------------------------------------


@pytest.mark.parametrize("leeway", LEEWAYS)
@pytest.mark.parametrize(
    ("offset", "expected"),
    [(-1.0, "valid"), (-MS, "valid"), (0.0, "expired"), (MS, "expired")],
    ids=["1s-before", "1ms-before", "at", "1ms-after"],
)
def test_exp_boundary(clock: Any, leeway: float, offset: float, expected: str) -> None:
    clock.now = T + leeway + offset
    assert outcome({"exp": T}, leeway) == expected


@pytest.mark.parametrize("leeway", LEEWAYS)
def test_exp_boundary_with_integer_claim(clock: Any, leeway: float) -> None:
    clock.now = 1_700_000_000 + leeway
    assert outcome({"exp": 1_700_000_000}, leeway) == "expired"
    clock.now -= MS
    assert outcome({"exp": 1_700_000_000}, leeway) == "valid"


# nbf and iat -----------------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["nbf", "iat"])
@pytest.mark.parametrize("leeway", LEEWAYS)
@pytest.mark.parametrize(
    ("offset", "expected"),
    [(-1.0, "not yet valid"), (-MS, "not yet valid"), (0.0, "valid"), (MS, "valid")],
    ids=["1s-before", "1ms-before", "at", "1ms-after"],
)
def test_not_before_boundaries(
    clock: Any, claim: str, leeway: float, offset: float, expected: str
) -> None:
    clock.now = T - leeway + offset
    assert outcome({claim: T}, leeway) == expected


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_not_yet_valid_message_names_the_claim(clock: Any, claim: str) -> None:
    clock.now = T - 1
    with pytest.raises(JWTDecodeError) as raised:
        validate_claims({claim: T})
    assert not isinstance(raised.value, TokenExpiredError)
    assert raised.value.message == f"Invalid token: The token is not yet valid ({claim})"


def test_all_three_claims_at_their_boundaries(clock: Any) -> None:
    """nbf = iat = now - 0 and exp = now + 1 ms: valid; one millisecond later, expired."""
    clock.now = T
    claims = {"iat": T, "nbf": T, "exp": T + MS}
    assert outcome(claims, 0) == "valid"
    clock.now = T + MS
    assert outcome(claims, 0) == "expired"


# The same boundaries through decode_token and an AuthX app -------------------------------


@pytest.mark.parametrize("leeway", LEEWAYS)
def test_decode_token_exp_boundary(clock: Any, leeway: float) -> None:
    token = create_token("alice", SECRET, expiry=T, issued=T - 60)
    clock.now = T + leeway - MS
    assert decode_token(token, SECRET, leeway=leeway)["exp"] == T
    clock.now = T + leeway
    with pytest.raises(TokenExpiredError):
        decode_token(token, SECRET, leeway=leeway)


@pytest.mark.parametrize("leeway", LEEWAYS)
def test_decode_token_nbf_boundary(clock: Any, leeway: float) -> None:
    token = create_token("alice", SECRET, not_before=T, issued=T - 60)
    clock.now = T - leeway
    assert decode_token(token, SECRET, leeway=leeway)["nbf"] == T
    clock.now = T - leeway - MS
    with pytest.raises(JWTDecodeError):
        decode_token(token, SECRET, leeway=leeway)


@pytest.mark.parametrize("leeway", LEEWAYS)
@pytest.mark.parametrize(
    ("offset", "status", "error_type"),
    [(-MS, 200, None), (0.0, 401, "TokenExpiredError")],
    ids=["1ms-before", "at"],
)
async def test_app_exp_boundary(
    clock: Any, leeway: float, offset: float, status: int, error_type: str | None
) -> None:
    auth = make_auth(JWT_DECODE_LEEWAY=leeway, JWT_ENCODE_NBF=False)
    token = create_token("alice", SECRET, expiry=T, issued=T - 60, type="access")
    clock.now = T + leeway + offset
    response = await get_access(auth, token)
    assert response.status_code == status, response.text
    if error_type is not None:
        assert response.json()["error_type"] == error_type


@pytest.mark.parametrize("leeway", LEEWAYS)
async def test_app_nbf_boundary(clock: Any, leeway: float) -> None:
    auth = make_auth(JWT_DECODE_LEEWAY=leeway)
    token = create_token("alice", SECRET, not_before=T, issued=T, expiry=T + 600, type="access")
    clock.now = T - leeway
    assert (await get_access(auth, token)).status_code == 200
    clock.now = T - leeway - MS
    response = await get_access(auth, token)
    assert (response.status_code, response.json()["error_type"]) == (401, "JWTDecodeError")


def test_decode_token_has_no_leeway_by_default(clock: Any) -> None:
    token = create_token("alice", SECRET, expiry=T, issued=T - 60)
    clock.now = T + 0.5
    with pytest.raises(TokenExpiredError):
        decode_token(token, SECRET)
