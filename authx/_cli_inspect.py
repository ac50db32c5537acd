"""``authx token inspect``: a token's header and claims, the verdict, and why it fails.

Verification is the library's own (:meth:`AuthX.verify_token`, then the store named by
``JWT_STORE_URL``); this module only turns the exception into a reason a person can act
on, with the moment, the claim and the setting involved. Key material never appears in
a report, and every value taken from the token is printed JSON-escaped, so that a token
cannot write control characters to the terminal.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from authx import AuthX, AuthXConfig, RequestToken, TokenPayload
from authx._cli_store import missing_sqlite_file, safe_name, unshared_reason
from authx._json import loads_object
from authx.exceptions import (
    AuthXException,
    JWTDecodeError,
    TokenError,
    TokenExpiredError,
    TokenInvalidAudienceError,
    TokenInvalidIssuerError,
    TokenInvalidSignatureError,
    TokenTypeError,
)
from authx.stores import store_from_url

__all__ = ["Report", "render_json", "render_text", "unverified_report", "verified_report"]

#: Claims holding a NumericDate, shown with the date and how far away it is.
_TIMES = frozenset({"iat", "nbf", "exp", "auth_time"})
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


@dataclass
class Report:
    """What inspecting a token found. ``reason`` is None while nothing failed."""

    header: dict[str, Any] | None = None
    claims: dict[str, Any] | None = None
    verified: bool = False
    reason: str | None = None
    message: str = ""
    #: "not_checked", "not_revoked", "token_revoked" or "subject_revoked".
    revocation: str = "not_checked"
    #: The store asked (passwords masked), or why none was.
    store: str | None = None

    @property
    def valid(self) -> bool:
        return self.verified and self.reason is None

    def fail(self, reason: str, message: str) -> Report:
        self.reason, self.message = reason, message
        return self


def _segment(part: str) -> dict[str, Any] | None:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        return None
    return loads_object(raw)


def unverified_report(token: str, config: AuthXConfig) -> Report:
    """The header and claims of ``token`` as written, signature not checked."""
    report = Report()
    if len(token) > config.JWT_MAX_TOKEN_SIZE:
        return report.fail(
            "too_large",
            f"the token is {len(token)} bytes, more than JWT_MAX_TOKEN_SIZE "
            f"({config.JWT_MAX_TOKEN_SIZE}); it was not decoded",
        )
    parts = token.split(".")
    if len(parts) == 3:
        report.header, report.claims = _segment(parts[0]), _segment(parts[1])
    if report.header is None or report.claims is None:
        report.fail(
            "malformed",
            "not a compact JWS: three base64url segments, header and claims JSON objects",
        )
    return report


async def verified_report(
    auth: AuthX[Any], token: str, kind: Literal["access", "refresh"] | None, check_store: bool
) -> Report:
    """Verify ``token`` as the servers do; a failure is the report's ``reason``."""
    config = auth.config
    report = unverified_report(token, config)
    if report.reason == "too_large":
        return report
    report.verified = True
    if config.has_provider:
        await auth.load_keys()
    found = RequestToken.found(token, "headers", kind or "access")
    try:
        payload = auth.verify_token(found, verify_type=kind is not None, verify_csrf=False)
    except (JWTDecodeError, TokenError) as exc:
        return report.fail(*_explain(exc, report, config))
    if check_store:
        await _check_revocation(report, payload, config.JWT_STORE_URL)
    else:
        report.store = "--no-store"
    return report


async def _check_revocation(report: Report, payload: TokenPayload, url: str) -> None:
    name = safe_name(url)
    report.store = name
    if unshared_reason(url) is not None:
        report.store = f"{name} is each server's own memory"
        return
    missing = missing_sqlite_file(url)
    if missing is not None:
        report.fail("store_unavailable", f"cannot check revocation: no SQLite file {missing}")
        return
    store = store_from_url(url)
    iat = float(payload.iat) if isinstance(payload.iat, int | float) else None
    try:
        if payload.jti is not None and await store.is_revoked(payload.jti, None, None):
            report.revocation = "token_revoked"
            report.fail("revoked", f"the token (jti {_show(payload.jti)}) is revoked in {name}")
        elif await store.is_revoked(None, payload.sub, iat):
            report.revocation = "subject_revoked"
            report.fail(
                "revoked",
                f"every token of subject {_show(payload.sub)} issued until a revocation "
                f"in {name} is revoked, this one included",
            )
        else:
            report.revocation = "not_revoked"
    except Exception as exc:  # noqa: BLE001 - whatever the store raises, it did not answer
        report.fail(
            "store_unavailable",
            f"cannot check revocation: store {name} unavailable ({type(exc).__name__})",
        )
    finally:
        await store.close()


# Why a token failed: one explanation per exception class, found along its MRO.

Explanation = Callable[[AuthXException, Report, AuthXConfig], tuple[str, str]]


def _expired(exc: AuthXException, report: Report, config: AuthXConfig) -> tuple[str, str]:
    exp = _number((report.claims or {}).get("exp"))
    if exp is None:
        return "expired", exc.message
    leeway = config.JWT_DECODE_LEEWAY
    allowed = f" (JWT_DECODE_LEEWAY {leeway:g} s)" if leeway else ""
    return "expired", f"expired at {_date(exp)}, {_duration(time.time() - exp)} ago{allowed}"


def _bad_signature(exc: AuthXException, report: Report, config: AuthXConfig) -> tuple[str, str]:
    if config.is_algo_symmetric:
        keys = "JWT_SECRET_KEY"
        if config.JWT_PREVIOUS_SECRET_KEY:
            keys += " or JWT_PREVIOUS_SECRET_KEY"
    else:
        keys = "JWT_PUBLIC_KEY (or the public half of JWT_PRIVATE_KEY)"
        if config.JWT_PREVIOUS_PUBLIC_KEY:
            keys += " or JWT_PREVIOUS_PUBLIC_KEY"
    if config.has_provider:
        keys += " or the identity provider's keys"
    return "bad_signature", f"bad signature: not signed with {keys}, or altered since"


def _wrong_audience(exc: AuthXException, report: Report, config: AuthXConfig) -> tuple[str, str]:
    aud = (report.claims or {}).get("aud")
    expected = config.JWT_DECODE_AUDIENCE
    if expected is None:
        return "wrong_audience", (
            f"the token is meant for audience {_show(aud)} and JWT_DECODE_AUDIENCE is not set "
            "(a token with an audience is refused where none is expected)"
        )
    has = "has no aud claim" if aud is None else f"is meant for audience {_show(aud)}"
    return "wrong_audience", f"the token {has}; JWT_DECODE_AUDIENCE expects {_show(expected)}"


def _wrong_issuer(exc: AuthXException, report: Report, config: AuthXConfig) -> tuple[str, str]:
    iss = (report.claims or {}).get("iss")
    expected = config.JWT_DECODE_ISSUER or config.JWT_OIDC_ISSUER
    has = "has no iss claim" if iss is None else f"was issued by {_show(iss)}"
    return "wrong_issuer", f"the token {has}; the expected issuer is {_show(expected)}"


def _wrong_type(exc: AuthXException, report: Report, config: AuthXConfig) -> tuple[str, str]:
    return "wrong_type", exc.message


def _undecodable(exc: AuthXException, report: Report, config: AuthXConfig) -> tuple[str, str]:
    header, claims = report.header, report.claims
    if header is None or claims is None:
        return "malformed", exc.message
    accepted = set(config.decode_algorithms)
    if config.has_provider:
        accepted |= set(config.provider_algorithms)
    alg = header.get("alg")
    if isinstance(alg, str) and alg not in accepted:
        return "algorithm_not_accepted", (
            f"the token is signed with {_show(alg)}, not an accepted algorithm "
            f"({', '.join(sorted(accepted))}: JWT_DECODE_ALGORITHMS, else JWT_ALGORITHM)"
        )
    now, leeway = time.time(), config.JWT_DECODE_LEEWAY
    for name in ("nbf", "iat"):
        moment = _number(claims.get(name))
        if moment is not None and moment > now + leeway:
            return "not_yet_valid", (
                f"not valid yet: {name} is {_date(moment)}, in {_duration(moment - now)}"
            )
    return "invalid_claims", exc.message


_EXPLANATIONS: dict[type[AuthXException], Explanation] = {
    TokenExpiredError: _expired,
    TokenInvalidSignatureError: _bad_signature,
    TokenInvalidAudienceError: _wrong_audience,
    TokenInvalidIssuerError: _wrong_issuer,
    TokenTypeError: _wrong_type,
    JWTDecodeError: _undecodable,
}


def _explain(exc: AuthXException, report: Report, config: AuthXConfig) -> tuple[str, str]:
    for cls in type(exc).__mro__:
        explanation = _EXPLANATIONS.get(cls)
        if explanation is not None:
            return explanation(exc, report, config)
    return "rejected", exc.message


# Rendering -----------------------------------------------------------------


def _number(value: Any) -> float | None:
    return float(value) if type(value) in (int, float) else None


def _date(timestamp: float) -> str:
    try:
        return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{timestamp:g} (out of range)"


def _duration(seconds: float) -> str:
    """``3m 12s``, ``2h 5m``, ``3d 4h``: the two largest units."""
    left = round(abs(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size}{unit}")
            left %= size
    return " ".join(parts[:2])


def _show(value: Any) -> str:
    """A value from the token (or config), escaped: no control character reaches a terminal."""
    return json.dumps(value, ensure_ascii=True)


def _claim_line(name: str, value: Any) -> str:
    label = name if _PLAIN_NAME.fullmatch(name) else _show(name)
    line = f"  {label}: {_show(value)}"
    moment = _number(value) if name in _TIMES else None
    if moment is not None:
        delta = moment - time.time()
        when = f"in {_duration(delta)}" if delta >= 0 else f"{_duration(delta)} ago"
        line += f"  ({_date(moment)}, {when})"
    return line


def _verdict(report: Report) -> str:
    if report.reason == "store_unavailable":  # verified, but revocation is unknown
        return f"unknown ({report.reason}): {report.message}"
    if report.reason is not None:
        return f"invalid ({report.reason}): {report.message}"
    if not report.verified:
        return "not verified (--no-verify)"
    if report.revocation == "not_revoked":
        return f"valid: signature and claims verified; not revoked in {report.store}"
    return f"valid: signature and claims verified; revocation not checked ({report.store})"


def render_text(report: Report) -> str:
    """The report for a person: header, claims (dates spelled out), then the verdict."""
    lines: list[str] = []
    for title, section in (("header", report.header), ("claims", report.claims)):
        if section is not None:
            lines.append(f"{title}:")
            lines.extend(_claim_line(name, value) for name, value in section.items())
    lines.append(f"result: {_verdict(report)}")
    return "\n".join(lines)


def render_json(report: Report) -> str:
    """The report for a script: one JSON object."""
    return json.dumps(
        {
            "valid": report.valid,
            "verified": report.verified,
            "reason": report.reason,
            "message": report.message or None,
            "revocation": report.revocation,
            "store": report.store,
            "header": report.header,
            "claims": report.claims,
        },
        indent=2,
    )
