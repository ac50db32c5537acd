"""``authx revoke``: revocations written to the shared store, and the stores it refuses."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from authx import AuthX, AuthXConfig
from authx.cli import ExitCode
from authx.stores import store_from_url

from .conftest import SECRET, Run

issuer = AuthX(config=AuthXConfig(JWT_SECRET_KEY=SECRET))


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    """A SQLite store file a server has already opened."""
    url = f"sqlite:///{tmp_path / 'authx.db'}"
    store = store_from_url(url)
    await store.is_revoked("nothing", None, None)
    await store.close()
    return url


@pytest.fixture
def shared_redis_url(redis_url: str) -> str:
    """The session's Redis, with a key prefix of this test's own."""
    return f"{redis_url}?prefix=cli-{uuid.uuid4().hex[:12]}"


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_revoke_subject_in_a_shared_store(
    kind: str, request: pytest.FixtureRequest, authx_cmd: Callable[..., Run]
) -> None:
    url = request.getfixturevalue("sqlite_url" if kind == "sqlite" else "shared_redis_url")
    env = {"JWT_SECRET_KEY": SECRET, "JWT_STORE_URL": url}
    alice, bob = issuer.create_access_token("alice"), issuer.create_access_token("bob")

    done = authx_cmd("revoke", "subject", "alice", env=env)
    assert done.code == 0, done.stderr
    assert done.stdout.startswith('revoked every token of subject "alice" issued until ')

    for token, revocation, code in ((alice, "subject_revoked", 1), (bob, "not_revoked", 0)):
        shown = authx_cmd("token", "inspect", "--json", token, env=env)
        assert shown.code == code, shown.output
        assert json.loads(shown.stdout)["revocation"] == revocation
    shown = authx_cmd("token", "inspect", alice, env=env)
    assert 'every token of subject "alice"' in shown.stdout
    assert SECRET not in shown.output + done.output


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
@pytest.mark.parametrize("by", ["token", "jti", "stdin"])
def test_revoke_one_token(
    kind: str, by: str, request: pytest.FixtureRequest, invoke: Callable[..., Result]
) -> None:
    url = request.getfixturevalue("sqlite_url" if kind == "sqlite" else "shared_redis_url")
    env = {"JWT_SECRET_KEY": SECRET, "JWT_STORE_URL": url}
    token, other = issuer.create_access_token("dave"), issuer.create_access_token("dave")
    jti = issuer._decode_token(token).jti
    assert jti is not None
    argument = {"token": token, "jti": jti, "stdin": "-"}[by]

    done = invoke("revoke", "token", argument, env=env, input=token if by == "stdin" else None)
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith("revoked ")

    report = json.loads(invoke("token", "inspect", "--json", token, env=env).stdout)
    assert (report["reason"], report["revocation"]) == ("revoked", "token_revoked")
    assert json.loads(invoke("token", "inspect", "--json", other, env=env).stdout)["valid"]


def test_a_malformed_token_cannot_be_revoked(
    sqlite_url: str, invoke: Callable[..., Result]
) -> None:
    env = {"JWT_STORE_URL": sqlite_url}
    for text in ("not.a.token", issuer.create_access_token("x").rsplit(".", 1)[0] + ".!"):
        done = invoke("revoke", "token", text, env=env)
        assert done.exit_code == ExitCode.TOKEN_INVALID
        assert done.stderr.startswith("Error: cannot revoke: ")


@pytest.mark.parametrize("url", ["", "memory://", "sqlite:///:memory:"])
def test_a_process_local_store_is_refused(url: str, authx_cmd: Callable[..., Run]) -> None:
    env = {"JWT_STORE_URL": url} if url else {}
    for args in (("revoke", "subject", "alice"), ("revoke", "token", "some-jti")):
        run = authx_cmd(*args, env=env)
        assert run.code == ExitCode.STORE_NOT_SHARED
        assert "reach no server" in run.stderr or "private to this command" in run.stderr
        assert run.stdout == ""
        assert "Traceback" not in run.stderr


def test_a_missing_sqlite_file_is_refused(tmp_path: Path, invoke: Callable[..., Result]) -> None:
    run = invoke("revoke", "subject", "alice", env={"JWT_STORE_URL": "sqlite:///typo.db"})
    assert run.exit_code == ExitCode.STORE_UNAVAILABLE
    assert f"no SQLite store at {tmp_path / 'typo.db'}" in run.stderr
    assert not (tmp_path / "typo.db").exists()  # nothing was created


def test_an_unreachable_store(authx_cmd: Callable[..., Run]) -> None:
    env = {"JWT_SECRET_KEY": SECRET, "JWT_STORE_URL": "redis://admin:hunter2@127.0.0.1:1/0"}
    for args in (("revoke", "subject", "alice"), ("revoke", "token", "some-jti")):
        run = authx_cmd(*args, env=env)
        assert run.code == ExitCode.STORE_UNAVAILABLE, run.output
        assert "redis://admin:***@127.0.0.1:1/0" in run.stderr
        assert "not confirmed" in run.stderr
        assert "again" in run.stderr
        assert "hunter2" not in run.output
        assert "Traceback" not in run.output
    shown = authx_cmd("token", "inspect", issuer.create_access_token("alice"), env=env)
    assert shown.code == ExitCode.STORE_UNAVAILABLE
    assert "result: unknown (store_unavailable): cannot check revocation" in shown.stdout
    assert "hunter2" not in shown.output
    assert SECRET not in shown.output
    assert "Traceback" not in shown.output


def test_a_bad_store_url_is_a_configuration_error(invoke: Callable[..., Result]) -> None:
    run = invoke("revoke", "subject", "alice", env={"JWT_STORE_URL": "redis://:pw@host:port/0"})
    assert run.exit_code == ExitCode.CONFIGURATION
    assert "JWT_STORE_URL" in run.stderr
    assert "Traceback" not in run.output
