"""The public names: ``authx.__all__`` and the module paths AuthX users import from."""

from __future__ import annotations

import importlib

import pytest

import authx

ISSUE_NAMES = {
    "AuthX",
    "AuthXConfig",
    "AuthXDependency",
    "TokenPayload",
    "RequestToken",
    "TokenResponse",
    "AuthXException",
    "BadConfigurationError",
    "JWTDecodeError",
    "TokenExpiredError",
    "TokenInvalidSignatureError",
    "TokenInvalidAudienceError",
    "TokenInvalidIssuerError",
    "CSRFError",
    "TokenError",
    "MissingTokenError",
    "MissingCSRFTokenError",
    "TokenTypeError",
    "AccessTokenRequiredError",
    "RefreshTokenRequiredError",
    "RevokedTokenError",
    "TokenRequiredError",
    "FreshTokenRequiredError",
    "InsufficientScopeError",
}


def test_all_is_sorted_and_unique() -> None:
    assert authx.__all__ == sorted(set(authx.__all__))


@pytest.mark.parametrize("name", authx.__all__)
def test_every_name_in_all_is_importable(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from authx import {name}", namespace)  # noqa: S102 - the import statement is the test
    assert namespace[name] is getattr(authx, name)


def test_issue_names_are_public() -> None:
    assert set(authx.__all__) >= ISSUE_NAMES


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("authx.config", ["AuthXConfig"]),
        ("authx.schema", ["TokenPayload", "RequestToken", "TokenResponse"]),
        ("authx.dependencies", ["AuthXDependency"]),
        ("authx.main", ["AuthX"]),
        (
            "authx.exceptions",
            sorted(n for n in ISSUE_NAMES if n.endswith(("Error", "Exception"))),
        ),
    ],
)
def test_compat_module_paths(module: str, names: list[str]) -> None:
    imported = importlib.import_module(module)
    for name in names:
        assert getattr(imported, name) is getattr(authx, name), name


def test_token_module_functions() -> None:
    from authx.token import create_token, decode_token

    secret = "s" * 64
    token = create_token("alice", secret, algorithm="HS256", audience="api", issuer="me")
    claims = decode_token(token, secret, algorithms=["HS256"], audience="api", issuer="me")
    assert claims["sub"] == "alice"


@pytest.mark.parametrize(
    "module",
    ["authx", "authx.config", "authx.schema", "authx.exceptions", "authx.token", "authx.main"],
)
def test_module_all_names_exist(module: str) -> None:
    imported = importlib.import_module(module)
    for name in imported.__all__:
        assert hasattr(imported, name), f"{module}.{name}"


def test_import_does_not_configure_logging() -> None:
    """Importing AuthX must not install root handlers (AuthX 1.x called basicConfig)."""
    import logging
    import subprocess
    import sys

    code = "import logging, authx; print(len(logging.getLogger().handlers))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"
    assert logging.getLogger("authx").level == logging.NOTSET
