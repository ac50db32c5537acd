"""``TokenPayload(exp=..., iat=..., nbf=...)`` with numbers, datetimes and timedeltas, as
AuthX accepts them; garbage is still refused.

Stored as before: ``exp`` an aware UTC datetime, ``iat`` and ``nbf`` POSIX seconds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import jwt
import pytest
from core_support import SECRET, make_auth

from authx import AuthX, AuthXConfig, TokenPayload
from authx.exceptions import JWTDecodeError
from authx.token import create_token

INSTANT = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
SECONDS = INSTANT.timestamp()
PLUS_TWO = timezone(timedelta(hours=2))


@pytest.fixture
def far_from_utc() -> Iterator[None]:
    """A local time zone of UTC+5:30, so a naive datetime read as local time would show."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kolkata"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


@pytest.mark.parametrize(
    "value",
    [
        INSTANT,
        INSTANT.astimezone(PLUS_TWO),
        SECONDS,
        int(SECONDS),
        str(int(SECONDS)),
        "2030-01-01T12:00:00Z",
        "2030-01-01T14:00:00+02:00",
    ],
    ids=["utc", "plus-two", "float", "int", "numeric-string", "iso-z", "iso-offset"],
)
@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
def test_every_spelling_of_one_instant(claim: str, value: Any) -> None:
    payload = TokenPayload(sub="alice", **{claim: value})
    stored = getattr(payload, claim)
    if claim == "exp":
        assert stored == INSTANT
        assert stored.tzinfo is not None
        assert payload.expires_at == SECONDS
    else:
        assert isinstance(stored, int | float)
        assert not isinstance(stored, bool)
        assert stored == SECONDS


def test_numbers_keep_their_type() -> None:
    payload = TokenPayload(sub="alice", iat=1_700_000_000, nbf=1_700_000_000.5)
    assert (type(payload.iat), type(payload.nbf)) == (int, float)


@pytest.mark.usefixtures("far_from_utc")
@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
def test_a_naive_datetime_is_utc_whatever_the_local_zone(claim: str) -> None:
    naive = INSTANT.replace(tzinfo=None)
    assert naive.timestamp() != SECONDS  # local time would be 5:30 off
    stored = getattr(TokenPayload(sub="alice", **{claim: naive}), claim)
    assert stored == (INSTANT if claim == "exp" else SECONDS)


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
def test_a_timedelta_counts_from_now(claim: str) -> None:
    payload = TokenPayload(sub="alice", **{claim: timedelta(minutes=5)})
    seconds = payload.expires_at if claim == "exp" else getattr(payload, claim)
    assert seconds == pytest.approx(time.time() + 300, abs=2)


def test_the_authx_spelling_and_its_properties() -> None:
    now = datetime.now(UTC)
    payload = TokenPayload(sub="alice", iat=now, nbf=now, exp=timedelta(minutes=15))
    second = timedelta(seconds=1)
    assert payload.issued_at == pytest.approx(now, abs=second)
    assert payload.expiry_datetime == pytest.approx(now + timedelta(minutes=15), abs=second)
    assert timedelta(minutes=14) < payload.time_until_expiry <= timedelta(minutes=15)
    assert payload.time_since_issued < timedelta(seconds=2)


def test_seconds_beyond_2e10_are_seconds_not_milliseconds() -> None:
    # Pydantic alone reads a number above 2e10 as milliseconds (year 2603 became 1970).
    year_2603 = 20_000_000_001
    assert TokenPayload(sub="alice", exp=year_2603).expires_at == year_2603


def test_datetimes_are_encoded_as_numbers() -> None:
    payload = TokenPayload(
        sub="alice", iat=INSTANT - timedelta(hours=1), nbf=INSTANT, exp=INSTANT.astimezone(PLUS_TWO)
    )
    claims = jwt.decode(payload.encode(SECRET), options={"verify_signature": False})
    assert (claims["iat"], claims["nbf"], claims["exp"]) == (SECONDS - 3600, SECONDS, SECONDS)


def test_a_payload_survives_a_json_round_trip() -> None:
    payload = TokenPayload(sub="alice", iat=INSTANT, nbf=SECONDS, exp=INSTANT)
    assert TokenPayload.model_validate_json(payload.model_dump_json()) == payload


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        "",
        " ",
        "soon",
        "true",
        "nan",
        "inf",
        "1e400",
        "2030-13-01",
        float("nan"),
        float("inf"),
        float("-inf"),
        10**400,
        1e300,
        253_402_300_800,  # 10000-01-01: beyond what a datetime holds
        date(2030, 1, 1),
        [SECONDS],
        {"seconds": SECONDS},
        b"1700000000",
    ],
    ids=repr,
)
@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
def test_garbage_is_refused(claim: str, value: Any) -> None:
    with pytest.raises(ValueError, match=claim):
        TokenPayload(sub="alice", **{claim: value})


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", [True, "1700000000x", 1e300])
def test_unverified_claims_are_still_checked(claim: str, value: Any) -> None:
    # decode(verify=False) skips the claim checks; the payload's own validation remains.
    claims = {"sub": "alice", "type": "access", "jti": "j-1", "iat": 1_700_000_000, claim: value}
    with pytest.raises(JWTDecodeError, match=claim):
        TokenPayload.from_claims(claims)


def test_a_token_expiring_after_year_9999_is_refused() -> None:
    token = create_token("alice", SECRET, expiry=1e12)
    with pytest.raises(JWTDecodeError, match="exp"):
        make_auth()._decode_token(token)


@pytest.mark.usefixtures("far_from_utc")
def test_a_naive_expiry_is_utc_when_a_token_is_made_too() -> None:
    # Creating and reading agree: naive means UTC on both sides, whatever the server's zone.
    auth = AuthX(config=AuthXConfig(JWT_SECRET_KEY="k" * 32))
    naive = datetime(2099, 1, 2, 3, 4, 5)  # noqa: DTZ001 - naive on purpose
    token = auth.create_access_token(uid="alice", expiry=naive)
    payload = auth._decode_token(token)
    assert payload.exp == naive.replace(tzinfo=UTC)
    assert TokenPayload(sub="alice", exp=naive).exp == payload.exp
