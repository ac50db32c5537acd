"""Scopes: exact names, ``ns:*`` wildcards, all-of and any-of, through routes and payloads."""

from __future__ import annotations

from typing import Any

import pytest
from core_support import bearer, make_auth, serve
from fastapi import Depends, FastAPI

from authx import TokenPayload

# (granted, required, all_required, satisfied)
CASES: list[tuple[list[str] | None, tuple[str, ...], bool, bool]] = [
    (["admin"], ("admin",), True, True),
    (["admin:*"], ("admin",), True, True),
    (["admin:*"], ("admin:users",), True, True),
    (["admin:*"], ("admin:users:edit",), True, True),
    (["admin:users:*"], ("admin:users:edit",), True, True),
    (["admin:users:*"], ("admin:users",), True, True),
    (["admin:users:*"], ("admin",), True, False),
    (["admin:users:*"], ("admin:posts",), True, False),
    (["admin:*"], ("adminx",), True, False),
    (["admin:*"], ("adminx:users",), True, False),
    (["admin"], ("admin:users",), True, False),
    (["admin"], ("admin:*",), True, False),  # a wildcard in the requirement is literal
    (["admin:*"], ("admin:*",), True, True),
    (["*"], ("admin",), True, False),
    (["read", "write"], ("read", "write"), True, True),
    (["read"], ("read", "write"), True, False),
    (["read"], ("read", "write"), False, True),
    (["delete"], ("read", "write"), False, False),
    (["admin:*"], ("billing", "admin:users:edit"), False, True),
    ([], ("read",), True, False),
    ([], (), True, True),
    ([], (), False, True),
    (None, (), True, True),
    (None, ("read",), True, False),
    (None, ("read",), False, False),
]
IDS = [f"{g}-{'all' if a else 'any'}-{r}" for g, r, a, _ in CASES]


@pytest.mark.parametrize(("granted", "required", "all_required", "satisfied"), CASES, ids=IDS)
def test_has_scopes(
    granted: list[str] | None, required: tuple[str, ...], all_required: bool, satisfied: bool
) -> None:
    payload = TokenPayload(sub="alice", scopes=granted)
    assert payload.has_scopes(*required, all_required=all_required) is satisfied


@pytest.mark.parametrize(("granted", "required", "all_required", "satisfied"), CASES, ids=IDS)
async def test_scopes_required_route(
    granted: list[str] | None, required: tuple[str, ...], all_required: bool, satisfied: bool
) -> None:
    auth = make_auth()
    app = FastAPI()
    auth.handle_errors(app)

    @app.get("/scoped")
    async def scoped(
        payload: TokenPayload = Depends(auth.scopes_required(*required, all_required=all_required)),
    ) -> list[str] | None:
        return payload.scopes

    token = auth.create_access_token("alice", scopes=granted)
    async with serve(app) as client:
        response = await client.get("/scoped", headers=bearer(token))
    if satisfied:
        assert response.status_code == 200
        assert response.json() == granted
    else:
        assert response.status_code == 403
        body = response.json()
        assert body["error_type"] == "InsufficientScopeError"
        assert str(list(required)) in body["message"]
        challenge = response.headers["WWW-Authenticate"]
        assert 'error="insufficient_scope"' in challenge
        assert f'scope="{" ".join(required)}"' in challenge


async def test_scopes_required_checks_the_token_first() -> None:
    auth = make_auth()
    app = FastAPI()
    auth.handle_errors(app)

    @app.get("/scoped")
    async def scoped(payload: Any = Depends(auth.scopes_required("read"))) -> str:
        return str(payload.sub)

    async with serve(app) as client:
        missing = await client.get("/scoped")
        refresh = await client.get(
            "/scoped", headers=bearer(auth.create_refresh_token("a", scopes=["read"]))
        )
    assert (missing.status_code, missing.json()["error_type"]) == (401, "MissingTokenError")
    assert (refresh.status_code, refresh.json()["error_type"]) == (
        401,
        "AccessTokenRequiredError",
    )
