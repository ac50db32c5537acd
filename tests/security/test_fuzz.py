"""Property-based fuzzing of token decoding and of every entry point, in process.

Invariants:

* a mutated token (byte flips, insertions, deletions, re-encodings, swapped or
  foreign segments) decodes to the original payload only when it *is* the original
  string; otherwise decoding raises an ``AuthXException``, never anything else;
* a mutated revoked token is never accepted, over HTTP or a WebSocket handshake;
* a correctly signed token with random header fields and claims is either refused
  with an ``AuthXException`` or has well-typed fields (alg, typ, kid, sub, type,
  finite times, scopes);
* random headers, query strings, first messages and in-band messages are answered
  with 401 / close 4001 ``invalid_token`` (close 4004 ``token_revoked`` for the
  revoked token itself), or reach the endpoint untouched; never with an exception.

The default profile is bounded (``security``: 200 examples a test); ``make fuzz``
runs the long one (``HYPOTHESIS_PROFILE=fuzz``). See ``conftest.py``.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from hypothesis import example, given
from hypothesis import strategies as st
from starlette.exceptions import StarletteDeprecationWarning

from authx import AuthX, AuthXConfig, TokenPayload
from authx.exceptions import AuthXException
from authx.schema import RequestToken
from tests.security.corpus import b64, flip_unused_bits, sign_hmac

with warnings.catch_warnings():
    # Starlette prefers the httpx2 package; this environment has httpx, which works.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient, WebSocketDenialResponse

SECRET = "fuzz-secret-" + "k" * 52
OTHER_SECRET = "fuzz-other-secret-" + "o" * 46
_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _auth(secret: str = SECRET, **settings: Any) -> AuthX[Any]:
    return AuthX(
        config=AuthXConfig(
            JWT_SECRET_KEY=secret,
            JWT_ACCESS_TOKEN_EXPIRES=3600 * 24,
            JWT_TOKEN_LOCATION=["headers", "cookies", "query", "json"],
            **settings,
        )
    )


AUTH = _auth(JWT_WS_TOKEN_LOCATION=["query", "headers", "ticket"])
MESSAGE_AUTH = _auth(JWT_WS_TOKEN_LOCATION=["message"], JWT_WS_AUTH_MESSAGE_TIMEOUT=5)
DONOR = _auth(OTHER_SECRET)  # segments from a token of another key

REVOKED: set[str] = set()
for _auth_instance in (AUTH, MESSAGE_AUTH):
    _auth_instance.set_token_blocklist(lambda token: token in REVOKED)

ORIGINAL = AUTH.create_access_token("alice", scopes=["read"])
ORIGINAL_PAYLOAD = AUTH._decode_token(ORIGINAL).model_dump()
REVOKED_TOKEN = AUTH.create_access_token("alice", scopes=["read"])
REVOKED.add(REVOKED_TOKEN)
DONOR_TOKEN = DONOR.create_access_token("alice", scopes=["read"])


def _app(auth: AuthX[Any]) -> FastAPI:
    app = FastAPI()
    auth.handle_errors(app)

    @app.api_route("/me", methods=["GET", "POST"])
    def me(payload: TokenPayload = auth.ACCESS_REQUIRED) -> dict[str, Any]:
        return {"user": payload.sub}

    @app.websocket("/ws")
    async def echo(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
        await websocket.accept()
        await websocket.send_json({"user": payload.sub})
        try:
            while True:
                await websocket.send_json({"echo": await websocket.receive_text()})
        except WebSocketDisconnect:
            pass

    return app


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(_app(AUTH), base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture(scope="module")
def message_client() -> Iterator[TestClient]:
    with TestClient(_app(MESSAGE_AUTH), base_url="http://testserver") as test_client:
        yield test_client


# Strategies -------------------------------------------------------------------------

_noise = st.one_of(
    st.sampled_from(list(_B64URL + "=+/.!$ \t\n\r\x00é")),
    st.characters(exclude_categories=["Cs"]),
)


def _segments(token: str) -> list[str]:
    return token.split(".")


def _decode_segment(segment: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except ValueError:
        return None


@st.composite
def _flip(draw: st.DrawFn, text: str) -> str:
    if not text:
        return draw(_noise)
    i = draw(st.integers(0, len(text) - 1))
    return text[:i] + draw(_noise) + text[i + 1 :]


@st.composite
def _insert(draw: st.DrawFn, text: str) -> str:
    i = draw(st.integers(0, len(text)))
    return text[:i] + draw(st.text(_noise, min_size=1, max_size=6)) + text[i:]


@st.composite
def _delete(draw: st.DrawFn, text: str) -> str:
    if not text:
        return text
    i = draw(st.integers(0, len(text) - 1))
    return text[:i] + text[i + draw(st.integers(1, 8)) :]


@st.composite
def _bit_flip(draw: st.DrawFn, text: str) -> str:
    """Flip one bit of the decoded bytes of a segment, then re-encode canonically."""
    parts = _segments(text)
    k = draw(st.integers(0, len(parts) - 1))
    raw = _decode_segment(parts[k])
    if not raw:
        return text
    data = bytearray(raw)
    bit = draw(st.integers(0, len(data) * 8 - 1))
    data[bit // 8] ^= 1 << (bit % 8)
    parts[k] = b64(bytes(data))
    return ".".join(parts)


def _reencodings(segment: str) -> list[Callable[[str], str]]:
    def flip_bits(s: str) -> str:
        if len(s) % 4 in (2, 3) and s[-1:] in set(_B64URL):
            return flip_unused_bits(s)
        return s + "A"

    return [
        lambda s: s + ("=" * (-len(s) % 4) or "=="),
        lambda s: s.replace("-", "+").replace("_", "/"),
        flip_bits,
        lambda s: base64.b64encode(_decode_segment(s) or b"").decode(),
        lambda s: s[: len(s) // 2] + " " + s[len(s) // 2 :],
        lambda s: s + "\n",
        lambda s: s.swapcase(),
    ]


@st.composite
def _reencode(draw: st.DrawFn, text: str) -> str:
    parts = _segments(text)
    k = draw(st.integers(0, len(parts) - 1))
    transform = draw(st.sampled_from(_reencodings(parts[k])))
    parts[k] = transform(parts[k])
    return ".".join(parts)


@st.composite
def _shuffle(draw: st.DrawFn, text: str) -> str:
    parts = _segments(text)
    donor = _segments(DONOR_TOKEN)
    choice = draw(st.sampled_from(["permute", "foreign", "duplicate", "drop", "extra"]))
    if choice == "permute" and len(parts) > 1:
        orders = [p for p in itertools.permutations(parts) if list(p) != parts]
        return ".".join(draw(st.sampled_from(orders))) if orders else text
    if choice == "foreign":
        k = draw(st.integers(0, min(len(parts), len(donor)) - 1))
        parts[k] = donor[k]
    elif choice == "duplicate":
        parts.insert(draw(st.integers(0, len(parts))), draw(st.sampled_from(parts)))
    elif choice == "drop" and len(parts) > 1:
        parts.pop(draw(st.integers(0, len(parts) - 1)))
    elif choice == "extra":
        parts.append(draw(st.text(st.sampled_from(_B64URL), max_size=12)))
    return ".".join(parts)


_OPS = [_flip, _insert, _delete, _bit_flip, _reencode, _shuffle]


@st.composite
def mutated(draw: st.DrawFn, token: str) -> str:
    """``token`` after one to three random mutations."""
    text = token
    for _ in range(draw(st.integers(1, 3))):
        text = draw(draw(st.sampled_from(_OPS))(text))
    return text


def _header_safe(text: str) -> bool:
    return bool(text) and all(" " <= c <= "~" for c in text) and text == text.strip()


_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
json_values = st.recursive(
    _json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)

#: Hypothesis raises the recursion limit by up to 2,000 frames while a test runs, so the
#: nesting here is far deeper than the live tests' (which use corpus.DEPTH).
DEPTH = 20_000
_NESTED = "[" * DEPTH + "]" * DEPTH


def _message(kind: str, token: Any) -> str:
    return json.dumps({"type": kind, "token": token})


# Decoding ---------------------------------------------------------------------------


def _respelled(token: str) -> list[str]:
    """Spellings of ``token`` whose signature decodes to the same bytes."""
    head, body, sig = token.split(".")
    return [
        f"{head}.{body}.{sig}{'=' * (-len(sig) % 4) or '=='}",
        f"{head}.{body}.{sig}!!!!",
        f"{head}.{body}.{flip_unused_bits(sig)}" if len(sig) % 4 in (2, 3) else f"{token}A",
        f"{head}.{body}.{sig[:10]}$$$${sig[10:]}",
    ]


@given(mutated(ORIGINAL))
@example(_respelled(ORIGINAL)[0])
@example(_respelled(ORIGINAL)[1])
@example(_respelled(ORIGINAL)[2])
@example(_respelled(ORIGINAL)[3])
def test_mutated_token_is_the_original_or_an_authx_error(token: str) -> None:
    try:
        payload = AUTH._decode_token(token)
    except AuthXException:
        pass
    else:
        assert token == ORIGINAL, "a second spelling (or another token) was accepted"
        assert payload.model_dump() == ORIGINAL_PAYLOAD
    try:
        AUTH.verify_token(RequestToken.found(token, "headers"))
    except AuthXException:
        pass
    else:
        assert token == ORIGINAL


@given(
    header=st.fixed_dictionaries(
        {"alg": st.one_of(st.just("HS256"), json_values)},
        optional={
            "typ": st.one_of(st.just("JWT"), json_values),
            "kid": st.one_of(st.text(max_size=8), json_values),
            "cty": json_values,
            "crit": json_values,
            "b64": st.booleans(),
            "jwk": json_values,
            "jku": st.text(max_size=20),
            "x5u": st.text(max_size=20),
        },
    ),
    claims=st.fixed_dictionaries(
        {},
        optional={
            "sub": st.one_of(st.just("alice"), json_values),
            "type": st.one_of(st.just("access"), json_values),
            "exp": st.one_of(st.just(time.time() + 3600), json_values),
            "nbf": st.one_of(st.just(int(time.time()) - 5), json_values),
            "iat": st.one_of(st.just(int(time.time()) - 5), json_values),
            "jti": st.one_of(st.text(max_size=8), json_values),
            "scopes": st.one_of(st.just(["read"]), json_values),
            "aud": json_values,
            "fresh": json_values,
        },
    ),
)
def test_signed_random_header_and_claims(header: dict[str, Any], claims: dict[str, Any]) -> None:
    """Signed with the right key, so only the checks of fields stand between it and use."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    token = f"{signing_input}.{b64(sign_hmac(signing_input.encode(), SECRET.encode()))}"
    try:
        payload = AUTH.verify_token(RequestToken.found(token, "headers"))
    except AuthXException:
        return
    now = time.time()
    assert header["alg"] == "HS256"
    for field in ("typ", "kid"):
        assert field not in header or isinstance(header[field], str), header
    assert "crit" not in header, header
    assert header.get("b64") is not False, header
    assert isinstance(claims.get("sub"), str), claims
    assert claims.get("type") == "access", claims
    for field in ("exp", "nbf", "iat"):
        if field in claims:
            value = claims[field]
            assert type(value) in (int, float), claims
            assert math.isfinite(value), claims
    assert claims.get("exp", math.inf) > now
    assert claims.get("nbf", -math.inf) <= now
    assert not claims.get("aud"), claims  # no audience is expected
    scopes = claims.get("scopes")
    assert scopes is None or (isinstance(scopes, list) and all(isinstance(s, str) for s in scopes))
    assert payload.sub == claims["sub"]


# HTTP and handshakes ----------------------------------------------------------------


@given(token=mutated(REVOKED_TOKEN), where=st.sampled_from(["header", "query", "json", "ws"]))
@example(token=_respelled(REVOKED_TOKEN)[0], where="header")
@example(token=_respelled(REVOKED_TOKEN)[1], where="query")
@example(token=_respelled(REVOKED_TOKEN)[2], where="json")
@example(token=_respelled(REVOKED_TOKEN)[3], where="ws")
def test_revoked_token_mutations_are_never_accepted(
    client: TestClient, token: str, where: str
) -> None:
    if where == "header" and not _header_safe(token):
        where = "json"
    if where == "header":
        response = client.get("/me", headers={"Authorization": f"Bearer {token}"})
    elif where == "query":
        response = client.get("/me", params={"token": token})
    elif where == "json":
        response = client.post("/me", json={"access_token": token})
    else:
        url = f"/ws?token={quote(token, safe='')}"
        with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect(url):
            pass
        response = denied.value
    assert response.status_code == 401, (where, token)
    assert token not in response.text


_printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200)
_revoked_in_header = mutated(REVOKED_TOKEN).filter(_header_safe)


@given(
    headers=st.fixed_dictionaries(
        {},
        optional={
            "Authorization": st.one_of(_printable, _revoked_in_header.map("Bearer {}".format)),
            "Cookie": st.one_of(
                _printable, _revoked_in_header.map("access_token_cookie={}".format)
            ),
            "X-CSRF-TOKEN": _printable,
            "Content-Type": st.one_of(
                st.sampled_from(["application/json", "application/json; charset=utf-8"]),
                _printable,
            ),
        },
    ),
    body=st.one_of(
        st.binary(max_size=200),
        json_values.map(json.dumps),
        st.sampled_from(
            [
                _NESTED,
                "[" * (DEPTH + 400),
                f'{{"access_token":{_NESTED}}}',
                f'{{"pad":{_NESTED},"access_token":"x"}}',
                '{"access_token":' + '{"a":' * DEPTH + "1" + "}" * DEPTH + "}",
            ]
        ),
        mutated(REVOKED_TOKEN).map(lambda t: json.dumps({"access_token": t})),
    ),
)
def test_random_headers_and_bodies_are_401(
    client: TestClient, headers: dict[str, str], body: str | bytes
) -> None:
    headers = {k: v.strip() for k, v in headers.items()}
    attempts = [
        ("GET", headers),
        ("POST", headers),
        # The body alone, where the JSON location reads it.
        ("POST", {"Content-Type": "application/json"}),
    ]
    for method, sent in attempts:
        response = client.request(method, "/me", headers=sent, content=body)
        assert response.status_code == 401, (method, sent, response.text)
        assert response.json()["error_type"]


@given(query=st.one_of(st.text(max_size=300), st.builds(lambda t: f"token={t}", st.text())))
def test_random_query_strings_are_401(client: TestClient, query: str) -> None:
    encoded = quote(query, safe="=&")
    response = client.get(f"/me?{encoded}")
    assert response.status_code == 401, (query, response.text)
    with (
        pytest.raises(WebSocketDenialResponse) as denied,
        client.websocket_connect(f"/ws?{encoded}"),
    ):
        pass
    assert denied.value.status_code == 401


# WebSocket messages -----------------------------------------------------------------

_first_messages = st.one_of(
    st.text(max_size=300),
    json_values.map(json.dumps),
    mutated(REVOKED_TOKEN).map(lambda t: _message("authx.auth", t)),
    mutated(ORIGINAL).map(lambda t: _message("authx.auth", t + "!")),
    json_values.map(lambda v: _message("authx.auth", v)),
    st.sampled_from(
        [
            _message("authx.auth", REVOKED_TOKEN),
            f'{{"type":"authx.auth","token":{_NESTED}}}',
            f'{{"pad":{_NESTED},"type":"authx.auth","token":"x"}}',
            _NESTED,
            '{"type":"authx.auth","token":"' + "A" * 100_000 + '"}',
        ]
    ),
    st.binary(max_size=100),
)


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _message_in(text: str | bytes, kind: str) -> tuple[bool, Any]:
    """Whether ``text`` is, as strict JSON, a ``kind`` message; and its token."""
    if isinstance(text, bytes):
        return False, None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return False, None
    if isinstance(data, dict) and data.get("type") == kind:
        return True, data.get("token")
    return False, None


def _refresh_in(text: str) -> tuple[bool, Any]:
    """Whether ``text`` is, as strict JSON, a refresh message; and its token."""
    return _message_in(text, "authx.refresh")


def _refusal(is_message: bool, token: Any) -> tuple[int, str]:
    """The close of a refused message: 4004 ``token_revoked`` when it carries the revoked
    token itself (a mutation of it does not decode), else 4001 ``invalid_token``."""
    if is_message and token == REVOKED_TOKEN:
        return 4004, "token_revoked"
    return 4001, "invalid_token"


@given(message=_first_messages)
def test_random_first_messages_close_invalid_or_revoked(
    message_client: TestClient, message: str | bytes
) -> None:
    with message_client.websocket_connect("/ws") as ws:
        if isinstance(message, bytes):
            ws.send_bytes(message)
        else:
            ws.send_text(message)
        answer = ws.receive()
    assert answer["type"] == "websocket.close", answer
    expected = _refusal(*_message_in(message, "authx.auth"))
    assert (answer["code"], answer["reason"]) == expected, answer
    assert REVOKED_TOKEN not in str(answer.get("reason"))


_inband_messages = st.one_of(
    st.text(max_size=300),
    json_values.map(json.dumps),
    mutated(ORIGINAL).map(lambda t: _message("authx.refresh", t)),
    mutated(REVOKED_TOKEN).map(lambda t: _message("authx.refresh", t)),
    json_values.map(lambda v: _message("authx.refresh", v)),
    st.sampled_from(
        [
            _message("authx.refresh", REVOKED_TOKEN),
            _message("authx.refresh", DONOR_TOKEN),
            '{"type":"authx.refresh"}',
            '{"type":"authx.refresh","token":NaN}',
            f'{{"type":"authx.refresh","token":{_NESTED}}}',
            f'{{"pad":{_NESTED},"type":"authx.refresh","token":"x"}}',
            '{"type":"authx.refresh","token":"' + "A" * 100_000 + '"}',
        ]
    ),
)


@given(message=_inband_messages)
def test_random_inband_messages(client: TestClient, message: str) -> None:
    """A refresh message closes 4001 unless its token is a valid one (4004 when it is the
    revoked token); any other text reaches the endpoint as it is (or closes 4001);
    nothing else ever happens."""
    with client.websocket_connect(f"/ws?token={ORIGINAL}") as ws:
        assert ws.receive_json() == {"user": "alice"}
        ws.send_text(message)
        answer = ws.receive()
    is_refresh, token = _refresh_in(message)
    if answer["type"] == "websocket.close":
        assert (answer["code"], answer["reason"]) == _refusal(is_refresh, token), answer
        assert token != ORIGINAL, "a valid refresh closed the connection"
        return
    data = json.loads(answer["text"])
    if data.get("type") == "authx.refreshed":
        assert is_refresh, message
        assert token == ORIGINAL, "a refresh with another token was accepted"
    else:
        assert not is_refresh, "a refresh message reached the endpoint"
        assert data == {"echo": message}
