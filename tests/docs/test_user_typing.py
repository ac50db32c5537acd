"""A user's application type-checks under ``mypy --strict`` without annotating AuthX.

The quick start and a typed snippet (``Annotated`` dependencies, ``assert_type`` on what
the dependencies and ``AuthX[User]`` give) are checked by mypy in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

TYPED_APP = """
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request, WebSocket
from typing_extensions import assert_type

from authx import AuthX, AuthXConfig, TokenPayload
from authx.schema import RequestToken

app = FastAPI()
auth = AuthX(config=AuthXConfig(JWT_SECRET_KEY="change-me-to-32-bytes-or-more-please"))


@dataclass
class User:
    name: str


users: AuthX[User] = AuthX(config=AuthXConfig(JWT_SECRET_KEY="change-me-to-32-bytes-or-more"))
Payload = Annotated[TokenPayload, Depends(auth.access_token_required)]


@app.get("/me")
async def me(payload: Payload) -> dict[str, str | None]:
    assert_type(payload, TokenPayload)
    return {"user": payload.sub}


@app.get("/admin")
async def admin(payload: TokenPayload = auth.ACCESS_REQUIRED) -> str | None:
    return payload.sub


@app.websocket("/ws")
async def ws(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
    await websocket.accept()


async def check(request: Request) -> None:
    assert_type(await auth.access_token_required(request), TokenPayload)
    assert_type(await auth.scopes_required("read")(request), TokenPayload)
    assert_type(await users.get_current_subject(request), User)
    assert_type(await auth.get_access_token_from_request(request), RequestToken)
    assert_type(auth.create_access_token(uid="alice"), str)
    assert_type(auth.create_access_token(uid="alice"), int)  # the canary: mypy must say no
"""


def test_user_code_passes_mypy_strict(tmp_path: Path) -> None:
    typed = tmp_path / "typed_app.py"
    typed.write_text(TYPED_APP)
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--config-file",
            str(config),
            str(typed),
            str(ROOT / "examples" / "quickstart.py"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    # Only the canary: the quick start and every other line of the typed app pass.
    assert len(errors) == 1, result.stdout + result.stderr
    assert 'not "int"' in errors[0], errors
