"""Where the double-submit CSRF value is read from: each kind's own header, its own form
field (only when asked, and never for GET/HEAD), and nothing else."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from core_support import BASE_URL, build_app, cookie_header, make_auth

from authx import TokenPayload

COOKIES: dict[str, Any] = {"JWT_TOKEN_LOCATION": ["cookies"]}
SEPARATE = {
    **COOKIES,
    "JWT_ACCESS_CSRF_HEADER_NAME": "X-CSRF-ACCESS",
    "JWT_REFRESH_CSRF_HEADER_NAME": "X-CSRF-REFRESH",
    "JWT_ACCESS_CSRF_FIELD_NAME": "csrf_access",
    "JWT_REFRESH_CSRF_FIELD_NAME": "csrf_refresh",
}


async def login_and(
    overrides: dict[str, Any], method: str, path: str, kind: str, **kwargs: Any
) -> httpx.Response:
    """Log in, then ``method path`` with the ``kind`` token cookie; ``{csrf}`` in the
    header and form values is replaced with that token's CSRF value."""
    auth = make_auth(**overrides)
    transport = httpx.ASGITransport(app=build_app(auth))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        tokens = (await client.post("/login")).json()
        token = tokens[f"{kind}_token"]
        csrf = auth._decode_token(token).csrf or ""
        headers = cookie_header(**{f"{kind}_token_cookie": token})
        headers.update({k: v.format(csrf=csrf) for k, v in kwargs.pop("headers", {}).items()})
        if "content" in kwargs:
            kwargs["content"] = kwargs["content"].replace(b"{csrf}", csrf.encode())
        if "data" in kwargs:
            kwargs["data"] = {k: v.format(csrf=csrf) for k, v in kwargs["data"].items()}
        client.cookies.clear()
        return await client.request(method, path, headers=headers, **kwargs)


@pytest.mark.parametrize(
    ("kind", "header", "status"),
    [
        ("access", "X-CSRF-ACCESS", 200),
        ("access", "X-CSRF-REFRESH", 401),
        ("refresh", "X-CSRF-REFRESH", 200),
        ("refresh", "X-CSRF-ACCESS", 401),
    ],
)
async def test_each_kind_reads_its_own_header(kind: str, header: str, status: int) -> None:
    response = await login_and(SEPARATE, "POST", f"/{kind}", kind, headers={header: "{csrf}"})
    assert response.status_code == status, response.text
    if status == 401:
        assert response.json()["error_type"] == "MissingCSRFTokenError"


@pytest.mark.parametrize(
    ("kind", "field", "status"),
    [
        ("access", "csrf_access", 200),
        ("access", "csrf_refresh", 401),
        ("refresh", "csrf_refresh", 200),
        ("refresh", "csrf_access", 401),
    ],
)
async def test_each_kind_reads_its_own_form_field(kind: str, field: str, status: int) -> None:
    overrides = {**SEPARATE, "JWT_CSRF_CHECK_FORM": True}
    response = await login_and(overrides, "POST", f"/{kind}", kind, data={field: "{csrf}"})
    assert response.status_code == status, response.text


async def test_form_field_is_not_read_unless_asked() -> None:
    response = await login_and(
        SEPARATE, "POST", "/access", "access", data={"csrf_access": "{csrf}"}
    )
    assert response.json()["error_type"] == "MissingCSRFTokenError"


@pytest.mark.parametrize("method", ["GET"])
async def test_form_field_is_never_read_for_safe_methods(method: str) -> None:
    """With GET among JWT_CSRF_METHODS, a GET must send the header: its body is not read."""
    overrides = {**SEPARATE, "JWT_CSRF_CHECK_FORM": True, "JWT_CSRF_METHODS": ["GET", "HEAD"]}
    response = await login_and(
        overrides,
        method,
        "/access",
        "access",
        content=b"csrf_access={csrf}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.json()["error_type"] == "MissingCSRFTokenError"
    with_header = await login_and(
        overrides, method, "/access", "access", headers={"X-CSRF-ACCESS": "{csrf}"}
    )
    assert with_header.status_code == 200


async def test_header_wins_over_the_form_field() -> None:
    overrides = {**SEPARATE, "JWT_CSRF_CHECK_FORM": True}
    response = await login_and(
        overrides,
        "POST",
        "/access",
        "access",
        headers={"X-CSRF-ACCESS": "{csrf}"},
        data={"csrf_access": "wrong"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"csrf_access=", "application/x-www-form-urlencoded"),
        (b"other=1", "application/x-www-form-urlencoded"),
        (b"\xff\xfe", "multipart/form-data; boundary=x"),
    ],
    ids=["empty-field", "no-field", "unreadable-form"],
)
async def test_unusable_form_is_a_missing_csrf_value(content: bytes, content_type: str) -> None:
    overrides = {**SEPARATE, "JWT_CSRF_CHECK_FORM": True}
    response = await login_and(
        overrides,
        "POST",
        "/access",
        "access",
        content=content,
        headers={"Content-Type": content_type},
    )
    assert response.json()["error_type"] == "MissingCSRFTokenError"


async def test_csrf_protection_off_ignores_a_wrong_value() -> None:
    overrides = {**COOKIES, "JWT_COOKIE_CSRF_PROTECT": False}
    response = await login_and(
        overrides, "POST", "/access", "access", headers={"X-CSRF-TOKEN": "wrong"}
    )
    assert response.status_code == 200


async def test_head_requests_never_read_the_form_either() -> None:
    overrides = {**SEPARATE, "JWT_CSRF_CHECK_FORM": True, "JWT_CSRF_METHODS": ["HEAD"]}
    auth = make_auth(**overrides)
    app = build_app(auth)

    async def head_endpoint(payload: TokenPayload = auth.ACCESS_REQUIRED) -> dict[str, str]:
        return {"sub": payload.sub}

    app.add_api_route("/head", head_endpoint, methods=["HEAD"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        token = (await client.post("/login")).json()["access_token"]
        csrf = auth._decode_token(token).csrf or ""
        client.cookies.clear()
        headers = {**cookie_header(access_token_cookie=token)}
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        by_form = await client.request(
            "HEAD", "/head", headers={**headers, **form}, content=f"csrf_access={csrf}".encode()
        )
        by_header = await client.request(
            "HEAD", "/head", headers={**headers, "X-CSRF-ACCESS": csrf}
        )
    assert (by_form.status_code, by_header.status_code) == (401, 200)


# Starlette's request.form() spools uploads to temporary files, and nothing closes a form
# AuthX read for its CSRF field: the file is only closed when collected (a ResourceWarning).
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_uploaded_file_is_not_a_csrf_value() -> None:
    overrides = {**SEPARATE, "JWT_CSRF_CHECK_FORM": True}
    response = await login_and(
        overrides, "POST", "/access", "access", files={"csrf_access": ("x.txt", b"value")}
    )
    assert (response.status_code, response.json()["error_type"]) == (401, "MissingCSRFTokenError")
