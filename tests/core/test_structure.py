"""The shape of the package, as the redesign promised it: narrow components, no
module reaching back into ``authx.main``, small modules that say what they own."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import pytest

import authx
from authx import AuthXConfig

PACKAGE = Path(authx.__file__).resolve().parent
MODULES = sorted(PACKAGE.rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, under ``TYPE_CHECKING`` too."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_only_the_package_init_imports_main() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in MODULES
        if path != PACKAGE / "__init__.py" and "authx.main" in imported_modules(path)
    ]
    assert offenders == []


def test_modules_are_small_and_say_what_they_own() -> None:
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in MODULES}
    assert sizes["main.py"] <= 300
    assert {name: size for name, size in sizes.items() if size > 400} == {}
    undocumented = [
        str(path.relative_to(PACKAGE))
        for path in MODULES
        if path.read_text().strip() and ast.get_docstring(ast.parse(path.read_text())) is None
    ]
    assert undocumented == []


def test_starlette_private_attributes_are_touched_in_one_module() -> None:
    touching = sorted(
        str(path.relative_to(PACKAGE))
        for path in MODULES
        if any(
            marker in path.read_text()
            for marker in ("websocket._send", "websocket._receive", "starlette.exception_handlers")
        )
    )
    assert touching == ["_starlette.py"]


@pytest.mark.parametrize("name", ["NoAuthorizationError", "AuthxArgumentDeprecationWarning"])
def test_dead_public_names_still_import_with_a_warning(name: str) -> None:
    from authx import exceptions

    with pytest.warns(DeprecationWarning, match=name):
        assert isinstance(getattr(exceptions, name), type)


def test_unused_model_argument_warns() -> None:
    with pytest.warns(DeprecationWarning, match="model"):
        authx.AuthX(config=AuthXConfig(JWT_SECRET_KEY="s" * 64), model=dict)


@pytest.mark.parametrize("attribute", ["private_key", "public_key", "previous_public_key"])
def test_config_key_helpers_warn(attribute: str) -> None:
    config = AuthXConfig(JWT_SECRET_KEY="s" * 64)
    with pytest.warns(DeprecationWarning, match=attribute):
        getattr(config, attribute)


def test_each_authx_owns_its_config_and_keys() -> None:
    first, second = authx.AuthX(), authx.AuthX()
    assert first.config is not second.config
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one = authx.AuthX(config=AuthXConfig(JWT_SECRET_KEY="s" * 64))
        two = authx.AuthX(config=AuthXConfig(JWT_SECRET_KEY="s" * 64))
    token = one.create_access_token("alice")
    assert two._decode_token(token).sub == "alice"
    # A short secret warns for every AuthX that uses it, not once per process.
    for _ in range(2):
        with pytest.warns(authx.exceptions.InsecureKeyWarning):
            authx.AuthX(config=AuthXConfig(JWT_SECRET_KEY="short"))


async def test_load_config_moves_keys_and_store_along() -> None:
    auth = authx.AuthX(config=AuthXConfig(JWT_SECRET_KEY="a" * 64))
    old = auth.create_access_token("alice")
    auth.load_config(AuthXConfig(JWT_SECRET_KEY="b" * 64, JWT_STORE_URL="sqlite:///:memory:"))
    with pytest.raises(authx.exceptions.TokenInvalidSignatureError):
        auth._decode_token(old)
    assert auth._decode_token(auth.create_access_token("alice")).sub == "alice"
    store = await auth.get_store()
    try:
        assert store.url == "sqlite:///:memory:"
    finally:
        await store.close()
