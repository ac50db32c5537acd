"""What a client is told when a ticket's subject was revoked, with the application's
message for RevokedTokenError switched off (``MSG_RevokedTokenError = None``)."""

from __future__ import annotations

import asyncio

from tests.websocket.test_tickets import make_app, redeem, refused, ticket_for


async def test_the_revocation_message_of_a_ticket_without_its_token() -> None:
    app, auth = make_app()
    auth.MSG_RevokedTokenError = None
    ticket = await ticket_for(auth, keep_token=False)
    await asyncio.sleep(0)
    await auth.revoke_subject("alice")
    assert refused(await redeem(app, ticket)) == (
        401,
        "RevokedTokenError",
        "Token has been revoked",
    )


async def test_the_revocation_message_of_a_ticket_with_its_token() -> None:
    app, auth = make_app()
    auth.MSG_RevokedTokenError = None
    ticket = await ticket_for(auth, keep_token=True)
    await asyncio.sleep(0)
    await auth.revoke_subject("alice")
    assert refused(await redeem(app, ticket)) == (
        401,
        "RevokedTokenError",
        "Token has been revoked",
    )
