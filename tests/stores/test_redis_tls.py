"""The Redis store over TLS with client certificates and an ACL user, as managed Redis needs.

The whole store contract runs over TLS too (the ``redis-tls`` kind of ``conftest.py``).
"""

from __future__ import annotations

import logging
import time
from urllib.parse import quote

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError

from authx import AuthXConfig
from authx._revocation import Revocations, redact_url
from authx.exceptions import StoreUnavailableError
from authx.schema import TokenPayload
from authx.stores import RevocationEvent
from authx.stores._redis_urls import parse_redis_url
from authx.stores.redis import RedisStore
from tests.conftest import SECRET

from .conftest import PASSWORD, RedisTLS
from .test_contract import Inbox


def test_the_url_carries_tls_files_and_the_acl_user(redis_tls: RedisTLS) -> None:
    parsed = parse_redis_url(redis_tls.url(prefix="p", wait_timeout="0.25"))

    assert parsed.deployment == "server"
    assert parsed.nodes == (("127.0.0.1", redis_tls.server.port),)
    assert (parsed.prefix, parsed.wait_replicas, parsed.wait_timeout) == ("p", None, 0.25)
    options = parsed.connection
    assert (options["username"], options["password"], options["db"]) == ("authx", PASSWORD, 0)
    assert options["ssl"] is True
    assert options["ssl_ca_certs"] == str(redis_tls.files.ca)
    assert options["ssl_certfile"] == str(redis_tls.files.client_cert)
    assert options["ssl_keyfile"] == str(redis_tls.files.client_key)
    assert options["ssl_cert_reqs"] == "required"


async def test_the_store_works_over_tls_as_its_acl_user(redis_tls: RedisTLS) -> None:
    store, other = RedisStore(redis_tls.url(prefix="tls")), RedisStore(redis_tls.url(prefix="tls"))
    inbox = Inbox()
    try:
        await store.subscribe(inbox)
        await other.revoke_token("jti-1", time.time() + 60)
        await other.put_ticket("t-1", {"sub": "alice"}, ttl=30)
        await other.publish(RevocationEvent("token", "jti-1"))

        assert await store.is_revoked("jti-1", None, None)
        assert await store.take_ticket("t-1") == {"sub": "alice"}
        assert await inbox.wait_for(1) == [RevocationEvent("token", "jti-1")]
        assert await store._redis.acl_whoami() == "authx"
    finally:
        await store.close()
        await other.close()


@pytest.mark.parametrize("tls", [False, True], ids=["plain text", "tls without certificate"])
def test_the_server_refuses_plain_text_and_clients_without_a_certificate(
    redis_tls: RedisTLS, tls: bool
) -> None:
    # What makes the other tests proof of TLS with a client certificate.
    options = {"ssl": True, "ssl_ca_certs": str(redis_tls.files.ca)} if tls else {}
    client = redis_tls.server.admin(username="authx", password=PASSWORD, **options)
    with client, pytest.raises(redis.ConnectionError):
        client.ping()


REFUSALS = {
    "another CA": {"ca": "other"},
    "a wrong password": {"password": "not-the-password"},
    "no client certificate": {"client_certificate": False},
}


@pytest.mark.parametrize("refusal", list(REFUSALS))
async def test_a_refused_connection_fails_closed_and_the_log_masks_the_password(
    redis_tls: RedisTLS, refusal: str, caplog: pytest.LogCaptureFixture
) -> None:
    options = dict(REFUSALS[refusal])
    if options.get("ca") == "other":
        options["ca"] = redis_tls.files.other_ca  # type: ignore[assignment]
    url = redis_tls.url(**options)  # type: ignore[arg-type]
    store = RedisStore(url)
    try:
        started = time.monotonic()
        with pytest.raises(RedisConnectionError):
            await store.is_revoked("jti", "alice", time.time())
        assert time.monotonic() - started < 2.0
    finally:
        await store.close()

    caplog.set_level(logging.WARNING, logger="authx")
    revocations = Revocations(lambda: AuthXConfig(JWT_SECRET_KEY=SECRET, JWT_STORE_URL=url))
    try:
        with pytest.raises(StoreUnavailableError) as refused:
            await revocations.revoke_token("jti-1")
        assert refused.value.status_code == 503
        with pytest.raises(StoreUnavailableError):
            await revocations.is_revoked(TokenPayload(sub="alice", jti="jti-2"))
    finally:
        current = revocations.current_store()
        if current is not None:
            await current.close()

    lines = [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(lines) == 2
    masked = f"rediss://authx:***@127.0.0.1:{redis_tls.server.port}/0?"
    assert all(masked in line and redact_url(url) in line for line in lines)
    for secret in (PASSWORD, quote(PASSWORD, safe=""), "not-the-password"):
        assert secret not in caplog.text


@pytest.mark.parametrize("deployment", ["redis_tls", "redis_tls_sentinel", "redis_tls_cluster"])
async def test_a_least_privileged_user_without_info_uses_the_whole_store(
    deployment: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    # "limited": its keys and channel; +@read +@write +@pubsub +@scripting +@connection
    # +time (the rate-limit script reads the server's clock), and +cluster|slots.
    # wait_replicas=auto asks INFO how many replicas there are; without INFO a
    # revocation goes on (as before WAIT existed), and the log says once how to do better.
    caplog.set_level(logging.WARNING, logger="authx")
    servers = request.getfixturevalue(deployment)
    if isinstance(servers, RedisTLS):
        url = servers.url(user="limited", prefix="tls-limited")
    else:
        url = servers.replace("//authx:", "//limited:", 1) + "&prefix=tls-limited"
    store, other = RedisStore(url), RedisStore(url)
    inbox = Inbox()
    try:
        await store.subscribe(inbox)
        for n in range(3):
            await other.revoke_token(f"jti-{n}", time.time() + 60)
        await other.revoke_subject("alice", time.time(), time.time() + 60)
        await other.put_ticket("t-1", {"sub": "alice"}, ttl=30)
        await other.publish(RevocationEvent("token", "jti-2"))

        assert await store.is_revoked("jti-2", None, None)
        assert await store.revoked_among([(None, "alice", 1.0)]) == [True]
        assert await store.take_ticket("t-1") == {"sub": "alice"}
        assert await store.take_token("peer", 1, 1) == 0.0
        await store.add_penalty("peer", 1, 1, cost=1)
        assert await inbox.wait_for(1) == [RevocationEvent("token", "jti-2")]
    finally:
        await store.close()
        await other.close()
    warnings = [r.getMessage() for r in caplog.records if "INFO" in r.getMessage()]
    assert len(warnings) == 1
    assert "wait_replicas=N" in warnings[0]


@pytest.mark.parametrize("deployment", ["redis_tls_sentinel", "redis_tls_cluster"])
async def test_sentinel_and_cluster_work_over_tls(
    deployment: str, request: pytest.FixtureRequest
) -> None:
    url = f"{request.getfixturevalue(deployment)}&prefix=tls-{deployment}"
    store, other = RedisStore(url), RedisStore(url)
    inbox = Inbox()
    try:
        await store.subscribe(inbox)
        await other.revoke_token("jti-1", time.time() + 60)
        await other.revoke_subject("alice", time.time(), time.time() + 60)
        await other.put_ticket("t-1", {"sub": "alice"}, ttl=30)
        await other.publish(RevocationEvent("token", "jti-1"))

        assert await store.revoked_among([("jti-1", None, None), (None, "alice", 1.0)]) == [
            True,
            True,
        ]
        assert await store.take_ticket("t-1") == {"sub": "alice"}
        assert await store.take_token("peer", 1, 2) == 0.0
        assert await inbox.wait_for(1) == [RevocationEvent("token", "jti-1")]
    finally:
        await store.close()
        await other.close()
