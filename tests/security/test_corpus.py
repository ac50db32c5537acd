"""The attack corpus at every entry point of a live uvicorn server.

One test per attack class: each of its variants is presented at every entry point
that can carry it (HTTP header, cookie, query, JSON body; WebSocket query in both
rejection modes, header, subprotocol, cookie, ticket, first message, in-band
refresh). Each must be refused as an authentication failure (HTTP 401, or the
WebSocket handshake denied with 401, or close 4001; reason ``invalid_token``),
with no ERROR or Traceback in the server log, and with the token shown nowhere:
not in a body, a header, a close reason or a log line. Every entry point first
accepts a genuine token, so a refusal is the token's doing, not a broken entry
point's. A revoked token is refused as revoked (401 ``RevokedTokenError``, or close
4004; reason ``token_revoked``), and every respelling of it as unauthenticated.
"""

from __future__ import annotations

import pytest

from tests.conftest import LiveServer
from tests.security.conftest import KeyHost
from tests.security.corpus import (
    CORPUS,
    SERVER_PRIVATE_PEM,
    corpus,
    genuine,
    respellable,
    respellings,
)
from tests.security.entries import (
    ENTRIES,
    Entry,
    LogWatch,
    Seen,
    http_post,
    judge,
    leaks,
    log_errors,
    secrets_of,
)

#: The error a client is shown for an attack class, where the class has one.
ERROR_TYPES = {"too-large": "TokenTooLargeError"}
#: Lines of the server's private key: never in a response or a log line.
KEY_LINES = [line for line in SERVER_PRIVATE_PEM.splitlines() if "-----" not in line][:3]


async def _run(
    servers: dict[str, LiveServer],
    variants: tuple[tuple[str, str], ...] | list[tuple[str, str]],
    error_type: str | None = None,
    entries: tuple[Entry, ...] = ENTRIES,
    revoked: frozenset[str] = frozenset(),
) -> None:
    """Present every variant at every entry; those labelled in ``revoked`` must be
    refused as revoked (close 4004, ``token_revoked``), the others as unauthenticated."""
    watch = LogWatch(*servers.values())
    problems: list[str] = []
    secrets = [s for _, token in variants for s in secrets_of(token)] + KEY_LINES
    for entry in entries:
        server = servers[entry.mode]
        watch.mark(entry.name)
        control = await entry.present(server, genuine())
        assert control.accepted, f"{entry}: a genuine token is not accepted: {control}"
        secrets += control.secrets
        carried = 0
        for label, token in variants:
            if not entry.carries(token):
                continue
            carried += 1
            seen: Seen = await entry.present(server, token)
            why = judge(entry, seen, error_type, revoked=label in revoked)
            if why:
                problems.append(f"{entry} / {label}: {why}")
            secrets += seen.secrets
            leaked = leaks(seen, secrets_of(token) + KEY_LINES)
            if leaked:
                problems.append(f"{entry} / {label}: token shown to the client: {leaked}")
        assert carried or entry.name.startswith("ws-subprotocol"), f"{entry} carried nothing"
    phases = watch.read()
    for phase, text in phases.items():
        errors = log_errors(text)
        if errors:
            problems.append(f"{phase or 'server'}: server logged errors: {errors[:3]}")
    log = "".join(phases.values())
    leaked_in_log = sorted({s[:24] + "..." for s in secrets if s in log})
    if leaked_in_log:
        problems.append(f"tokens in the server log: {leaked_in_log}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("attack", list(CORPUS))
async def test_attack_is_refused_at_every_entry_point(
    attack: str, servers: dict[str, LiveServer], key_host: KeyHost
) -> None:
    await _run(servers, corpus(attack, key_host.url), ERROR_TYPES.get(attack))
    if attack == "embedded-keys":
        # jku / x5u name a host the attacker controls: it must never be asked.
        assert key_host.requests == []


@pytest.mark.parametrize("entry", ENTRIES, ids=str)
async def test_revoked_token_is_refused_in_every_spelling(
    entry: Entry, servers: dict[str, LiveServer]
) -> None:
    """The seed's blocklist callback compares raw strings: a respelled revoked token
    must not slip past it (HTTP, handshake, ticket, first message, in-band refresh)."""
    server = servers[entry.mode]
    token = respellable()
    assert (await entry.present(server, token)).accepted
    await http_post(server, f"/test/revoke?token={token}")
    variants = [("exact", token), *respellings(token)]
    await _run(servers, variants, entries=(entry,), revoked=frozenset({"exact"}))
    # The exact token is refused as revoked, wherever the client can read why.
    seen = await entry.present(server, token)
    assert seen.error_type in (None, "RevokedTokenError"), seen
    assert (seen.code, seen.reason) == (entry.revoked, "token_revoked"), seen
