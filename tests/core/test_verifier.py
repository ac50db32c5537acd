"""What the verifier decides, whatever front end asks: keys that follow the configuration,
errors stamped with the login type, revocation, scopes and in-band refresh tokens."""

from __future__ import annotations

from typing import Any

import pytest
from core_support import OTHER_SECRET, make_auth, make_config

from authx import AuthX, RequestToken
from authx.exceptions import (
    AccessTokenRequiredError,
    InsufficientScopeError,
    JWTDecodeError,
    MissingCSRFTokenError,
    RevokedTokenError,
    TokenSubjectMismatchError,
    TokenTooLargeError,
)


def verify(auth: AuthX[Any], token: str, **options: Any) -> Any:
    return auth.verify_token(RequestToken(token=token, location="headers"), **options)


def test_assigning_a_setting_prepares_the_keys_again() -> None:
    auth = make_auth()
    old = auth.create_access_token("alice")
    assert verify(auth, old).sub == "alice"
    auth.config.JWT_SECRET_KEY = OTHER_SECRET
    with pytest.raises(JWTDecodeError):
        verify(auth, old)
    assert verify(auth, auth.create_access_token("bob")).sub == "bob"


def test_loading_another_configuration_prepares_the_keys_again() -> None:
    auth = make_auth()
    old = auth.create_access_token("alice")
    auth.load_config(make_config(JWT_SECRET_KEY=OTHER_SECRET))  # the same revision, 0
    with pytest.raises(JWTDecodeError):
        verify(auth, old)
    assert verify(auth, auth.create_access_token("bob")).sub == "bob"


def test_errors_carry_the_login_type() -> None:
    admin = AuthX(config=make_config(), login_type="admin")
    with pytest.raises(JWTDecodeError) as info:
        verify(admin, "not-a-token")
    assert info.value.login_type == "admin"
    with pytest.raises(AccessTokenRequiredError) as required:
        verify(admin, admin.create_refresh_token("alice"))
    assert required.value.login_type == "admin"
    plain = make_auth()
    with pytest.raises(JWTDecodeError) as untyped:
        verify(plain, "not-a-token")
    assert untyped.value.login_type is None


def test_an_error_keeps_a_login_type_it_already_has() -> None:
    auth = AuthX(config=make_config(), login_type="admin")
    error = JWTDecodeError("x", login_type="user")
    assert auth._verifier.stamp(error).login_type == "user"
    assert auth._verifier.stamp(JWTDecodeError("y")).login_type == "admin"


def test_verification_checks_type_freshness_and_claims() -> None:
    auth = make_auth()
    stale = auth.create_access_token("alice", fresh=False)
    assert verify(auth, stale).sub == "alice"
    with pytest.raises(Exception, match="Fresh token required"):
        verify(auth, stale, verify_fresh=True)
    assert verify(auth, auth.create_refresh_token("alice"), verify_type=False).type == "refresh"


async def test_the_blocklist_callback_or_the_store_revokes() -> None:
    auth = AuthX(config=make_config(), login_type="admin")
    verifier = auth._verifier
    listed: set[str] = set()
    auth.set_token_blocklist(lambda token: token in listed)
    token = auth.create_access_token("alice")
    payload = verify(auth, token)
    await verifier.check_revoked(token, payload)  # neither says so: fine
    listed.add(token)
    with pytest.raises(RevokedTokenError) as info:
        await verifier.check_revoked(token, payload)
    assert info.value.login_type == "admin"
    assert info.value.message == "Token has been revoked"
    listed.clear()
    await auth.revoke_subject("alice")
    with pytest.raises(RevokedTokenError):
        await verifier.check_revoked(token, payload)


def test_missing_scopes_are_reported_with_the_required_and_provided_ones() -> None:
    auth = AuthX(config=make_config(), login_type="admin")
    payload = verify(auth, auth.create_access_token("alice", scopes=["read"]))
    auth._verifier.check_scopes(payload, ["read"], True)
    auth._verifier.check_scopes(payload, ["read", "write"], False)
    with pytest.raises(InsufficientScopeError) as info:
        auth._verifier.check_scopes(payload, ["read", "write"], True)
    assert info.value.required == ["read", "write"]
    assert info.value.provided == ["read"]
    assert info.value.login_type == "admin"


async def test_an_in_band_refresh_token_passes_every_handshake_check() -> None:
    auth = AuthX(config=make_config(JWT_MAX_TOKEN_SIZE=1000), login_type="admin")
    verifier = auth._verifier
    token = auth.create_access_token("alice", scopes=["read", "chat"])
    requirements = ((("read",), True), (("chat", "x"), False))
    payload = await verifier.verify_refresh(token, "alice", requirements)
    assert payload.sub == "alice"

    with pytest.raises(TokenSubjectMismatchError) as mismatch:
        await verifier.verify_refresh(token, "bob")
    assert mismatch.value.login_type == "admin"
    with pytest.raises(InsufficientScopeError):
        await verifier.verify_refresh(token, "alice", ((("read",), True), (("admin",), True)))
    with pytest.raises(AccessTokenRequiredError):
        await verifier.verify_refresh(auth.create_refresh_token("alice"), "alice")
    with pytest.raises(TokenTooLargeError):
        await verifier.verify_refresh(token + "a" * 1000, "alice")
    auth.set_token_blocklist(lambda raw: raw == token)
    with pytest.raises(RevokedTokenError):
        await verifier.verify_refresh(token, "alice")


def test_a_cookie_token_is_checked_for_its_csrf_value_unless_told_not_to() -> None:
    auth = make_auth(JWT_TOKEN_LOCATION=["cookies"])
    token = auth.create_access_token("alice")
    found = RequestToken(token=token, location="cookies")
    with pytest.raises(MissingCSRFTokenError):
        auth.verify_token(found)
    with pytest.raises(MissingCSRFTokenError):
        auth.verify_token(found, verify_type=True, verify_fresh=False, verify_csrf=True)
    assert auth.verify_token(found, verify_csrf=False).sub == "alice"
    csrf = auth._verifier.decode(token).csrf
    assert (
        auth.verify_token(RequestToken(token=token, location="cookies", csrf=csrf)).sub == "alice"
    )


async def test_an_in_band_refresh_to_another_subject_is_refused_with_the_reason() -> None:
    auth = AuthX(config=make_config(), login_type="admin")
    with pytest.raises(TokenSubjectMismatchError) as info:
        await auth._verifier.verify_refresh(auth.create_access_token("bob"), "alice")
    assert info.value.message == "Token subject mismatch"
    assert info.value.login_type == "admin"


async def test_an_in_band_refresh_keeps_an_all_of_scope_requirement() -> None:
    auth = make_auth()
    token = auth.create_access_token("alice", scopes=["read"])
    with pytest.raises(InsufficientScopeError):
        await auth._verifier.verify_refresh(token, "alice", ((("read", "write"), True),))
    assert (await auth._verifier.verify_refresh(token, "alice", ((("read", "x"), False),))).sub


def test_decoding_without_verification_reads_a_token_no_key_verifies() -> None:
    auth = make_auth()
    foreign = make_auth(JWT_SECRET_KEY=OTHER_SECRET).create_access_token("mallory")
    with pytest.raises(JWTDecodeError):
        auth._decode_token(foreign)
    assert auth._decode_token(foreign, verify=False).sub == "mallory"
