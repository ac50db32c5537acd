"""The ``authx`` command: keys, test tokens, token inspection and revocation from a shell.

Settings come from the same ``JWT_*`` environment variables the servers read
(:class:`~authx.AuthXConfig`), so a command sees what a server would. Exit codes:

== =====================================================================
0  success (``inspect``: the token is valid)
1  the token is invalid: verification failed, or it cannot be revoked
2  usage error: unknown option, bad value, missing argument (click's)
3  configuration error: a ``JWT_*`` variable is invalid or a key is missing
4  the store (or an identity provider's keys) cannot be reached
5  ``JWT_STORE_URL`` is process-local (``memory://``): nothing would reach a server
6  key files already exist (``--force`` replaces them)
== =====================================================================
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import click

from authx import AuthX, AuthXConfig, __version__
from authx._cli_errors import (
    CommandError,
    CommandGroup,
    ExitCode,
    FilesExist,
    StoreNotShared,
    StoreUnreachable,
)
from authx._cli_inspect import render_json, render_text, unverified_report, verified_report
from authx._cli_keys import ALGORITHMS, RSA_SIZES, environment, generate, key_files, write_key_files
from authx._cli_store import missing_sqlite_file, safe_name, unshared_reason
from authx.exceptions import StoreUnavailableError
from authx.token import RESERVED_CLAIMS

__all__ = ["ExitCode", "main"]


class _EchoHandler(logging.Handler):
    """The library's warnings (store outages; passwords already masked) on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(self.format(record), err=True)


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="authx")
@click.pass_context
def main(ctx: click.Context) -> None:
    """AuthX from a shell: generate keys, create and inspect tokens, revoke them.

    Settings are read from the JWT_* environment variables, as the servers read them.
    """
    logger = logging.getLogger("authx")
    handler = _EchoHandler(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logger.addHandler(handler)
    ctx.call_on_close(lambda: logger.removeHandler(handler))


def _authx(config: AuthXConfig, *, keys: bool = True) -> AuthX[Any]:
    """An AuthX for ``config``; with ``keys``, its keys are prepared (and checked) now."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if keys:
            auth: AuthX[Any] = AuthX(config=config)
        else:
            auth = AuthX()
            auth.load_config(config, prepare_keys=False)
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    return auth


# keys ----------------------------------------------------------------------


@main.group()
def keys() -> None:
    """Signing keys."""


@keys.command("generate")
@click.option(
    "--algorithm", "-a", type=click.Choice(ALGORITHMS), default="HS256", show_default=True
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the secret or key pair here (required for key pairs).",
)
@click.option("--force", is_flag=True, help="Replace key files that already exist.")
@click.option(
    "--rsa-bits",
    type=click.Choice([str(size) for size in RSA_SIZES]),
    default="2048",
    show_default=True,
    help="RSA modulus size (RS*, PS*).",
)
def keys_generate(algorithm: str, out_dir: Path | None, force: bool, rsa_bits: str) -> None:
    """Generate a secret or a key pair; print the JWT_* variables to set.

    The lines on stdout are shell exports: eval "$(authx keys generate ...)".
    Without --out-dir an HMAC secret is printed; a key pair is only ever written to
    files (the private key with mode 0600).
    """
    if out_dir is None and not algorithm.startswith("HS"):
        raise click.UsageError(f"{algorithm} keys are written to files: pass --out-dir DIR")
    material = generate(algorithm, int(rsa_bits))
    paths: list[Path] | None = None
    if out_dir is not None:
        try:
            paths = write_key_files(out_dir, key_files(material), force)
        except FileExistsError as exc:
            raise FilesExist(f"not overwriting {exc} (--force replaces them)") from None
        except OSError as exc:
            raise click.FileError(str(exc.filename or out_dir), exc.strerror) from None
        click.echo(f"# wrote {', '.join(str(path) for path in paths)}", err=True)
        if material.public_pem is not None:
            click.echo("# servers that only verify tokens need JWT_PUBLIC_KEY alone", err=True)
    for line in environment(material, paths):
        click.echo(line)


# token ---------------------------------------------------------------------


@main.group()
def token() -> None:
    """Create tokens for tests, inspect any token."""


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(-?)((?:\d+[smhdw])+|\d+(?:\.\d+)?)")


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """``3600`` (seconds), ``15m``, ``1h30m``, ``7d``: a timedelta (``-5m`` is in the past);
    ``never``: the string itself; None when not given."""
    if value is None:
        return None
    text = value.strip().lower()
    if text in ("never", "none"):
        return "never"
    match = _DURATION.fullmatch(text)
    if match is None:
        raise click.BadParameter(f"{value!r} is not a duration such as 3600, 15m, 1h, 7d or never")
    sign, amount = match.groups()
    seconds: float
    if amount[-1] in _UNITS:
        seconds = sum(int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)([smhdw])", amount))
    else:
        seconds = float(amount)
    try:
        return timedelta(seconds=-seconds if sign else seconds)
    except OverflowError:
        raise click.BadParameter(f"{value!r} is too long a duration") from None


def _claim(text: str) -> tuple[str, Any]:
    name, separator, raw = text.partition("=")
    if not separator or not name:
        raise click.BadParameter(f"{text!r} is not KEY=VALUE", param_hint="--claim")
    if name in RESERVED_CLAIMS:
        raise click.BadParameter(
            f"{name!r} is set by the token itself (use --sub, --scopes, --expires, --type, "
            "--fresh or --audience)",
            param_hint="--claim",
        )
    try:
        return name, json.loads(raw, parse_constant=_not_json)
    except ValueError:
        return name, raw


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity stay strings


@token.command("create")
@click.option("--sub", required=True, help="The subject (JWT_IDENTITY_CLAIM).")
@click.option("--scopes", "scope_list", metavar="A,B", help="Comma-separated scopes.")
@click.option("--scope", "scope_items", multiple=True, help="A scope (repeatable).")
@click.option(
    "--expires",
    callback=_duration,
    metavar="DURATION",
    help="Lifetime: 3600, 15m, 1h, 7d or never (default: JWT_*_TOKEN_EXPIRES).",
)
@click.option(
    "--type", "kind", type=click.Choice(["access", "refresh"]), default="access", show_default=True
)
@click.option("--fresh", is_flag=True, help="A fresh access token.")
@click.option("--audience", multiple=True, help="The aud claim (default JWT_ENCODE_AUDIENCE).")
@click.option("--claim", "claims", multiple=True, metavar="KEY=VALUE", help="Extra claim (JSON).")
def token_create(
    sub: str,
    scope_list: str | None,
    scope_items: Sequence[str],
    expires: timedelta | str | None,
    kind: Literal["access", "refresh"],
    fresh: bool,
    audience: Sequence[str],
    claims: Sequence[str],
) -> None:
    """Print a token signed with the configured key, for tests.

    A --claim value is JSON when it parses as JSON (3, true, ["a"]), else a string.
    """
    if not sub:
        raise click.BadParameter("the subject is empty", param_hint="--sub")
    if fresh and kind == "refresh":
        raise click.UsageError("--fresh applies to access tokens only")
    scopes = [s.strip() for s in (scope_list or "").split(",") if s.strip()] + list(scope_items)
    data = dict(_claim(text) for text in claims)
    setting = "JWT_ACCESS_TOKEN_EXPIRES" if kind == "access" else "JWT_REFRESH_TOKEN_EXPIRES"
    auth = _authx(AuthXConfig(**({setting: None} if expires == "never" else {})))
    expiry = expires if isinstance(expires, timedelta) else None
    options: dict[str, Any] = {
        "expiry": expiry,
        "data": data or None,
        "audience": list(audience) or None,
        "scopes": scopes or None,
    }
    if kind == "access":
        encoded = auth.create_access_token(sub, fresh=fresh, **options)
    else:
        encoded = auth.create_refresh_token(sub, **options)
    click.echo(encoded)


def _read_token(text: str) -> str:
    """The argument, or stdin for ``-`` (keeps the token out of the shell history)."""
    if text == "-":
        text = sys.stdin.read()
    if not text.strip():
        raise click.BadParameter("the token is empty")
    return text.strip()


@token.command("inspect")
@click.argument("text", metavar="TOKEN|-")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@click.option("--type", "kind", type=click.Choice(["access", "refresh"]), help="Require this type.")
@click.option("--no-store", is_flag=True, help="Do not ask JWT_STORE_URL about revocation.")
@click.option("--no-verify", is_flag=True, help="Only decode: no key or store is needed.")
def token_inspect(
    text: str,
    as_json: bool,
    kind: Literal["access", "refresh"] | None,
    no_store: bool,
    no_verify: bool,
) -> None:
    """Show a token, verify it, and say why it fails.

    The header and claims (dates spelled out), then the verdict: signature, claims
    and the revocation store (JWT_STORE_URL) checked as a server checks them.

    Exit status 0 when valid, 1 when invalid, 4 when the store cannot answer.
    """
    encoded = _read_token(text)
    config = AuthXConfig()
    if no_verify:
        report = unverified_report(encoded, config)
    else:
        auth = _authx(config)
        report = asyncio.run(verified_report(auth, encoded, kind, not no_store))
    click.echo(render_json(report) if as_json else render_text(report))
    if report.reason is not None:
        unavailable = report.reason == "store_unavailable"
        code = ExitCode.STORE_UNAVAILABLE if unavailable else ExitCode.TOKEN_INVALID
        click.get_current_context().exit(int(code))


# revoke --------------------------------------------------------------------


@main.group()
def revoke() -> None:
    """Revoke in the servers' store (JWT_STORE_URL); they close the connections."""


def _shared_store(config: AuthXConfig) -> str:
    """The store's name for messages, once sure that servers share it."""
    url = config.JWT_STORE_URL
    reason = unshared_reason(url)
    if reason is not None:
        raise StoreNotShared(reason)
    missing = missing_sqlite_file(url)
    if missing is not None:
        raise StoreUnreachable(
            f"no SQLite store at {missing}: servers create the file when they first use it, "
            "so check JWT_STORE_URL (a relative path is relative to the current directory)"
        )
    return safe_name(url)


async def _revoke(auth: AuthX[Any], kind: Literal["token", "subject"], value: str) -> None:
    # Opened first, so that it is closed whatever happens next.
    store = await auth.get_store()
    try:
        if kind == "token":
            await auth.revoke_token(value)
        else:
            await auth.revoke_subject(value)
    finally:
        await store.close()


def _run_revocation(kind: Literal["token", "subject"], value: str) -> str:
    config = AuthXConfig()
    name = _shared_store(config)
    auth = _authx(config, keys=False)
    try:
        asyncio.run(_revoke(auth, kind, value))
    except StoreUnavailableError:
        raise StoreUnreachable(
            f"the revocation was not confirmed by {name}; run the command again once the "
            "store answers (repeating a revocation is harmless)"
        ) from None
    return name


@revoke.command("token")
@click.argument("text", metavar="TOKEN_OR_JTI|-")
def revoke_token(text: str) -> None:
    """Revoke one token (the token itself, or its jti) until it expires.

    The token is not verified: its jti is taken as written. Servers sharing the
    store close the connections that hold it (4004 token_revoked).
    """
    value = _read_token(text)
    try:
        name = _run_revocation("token", value)
    except ValueError as exc:
        raise CommandError(f"cannot revoke: {exc}") from None
    shown = "the token" if value.count(".") == 2 else f"jti {json.dumps(value)}"
    click.echo(f"revoked {shown} in {name}")


@revoke.command("subject")
@click.argument("sub")
def revoke_subject(sub: str) -> None:
    """Revoke every token of SUB issued until now.

    Servers sharing the store close SUB's connections (4004 token_revoked) and
    refuse those tokens; tokens issued afterwards are accepted.
    """
    if not sub:
        raise click.BadParameter("the subject is empty")
    name = _run_revocation("subject", sub)
    moment = datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    click.echo(f"revoked every token of subject {json.dumps(sub)} issued until {moment} in {name}")
