"""AuthXConfig: the defaults issue 2 lists, environment variables and configuration errors."""

from __future__ import annotations

import warnings
from datetime import timedelta
from typing import Any

import pytest
from core_support import SECRET, bearer, get_access, key_pair, make_config, serve, short_secret

from authx import AuthX, AuthXConfig, BadConfigurationError
from authx.exceptions import InsecureKeyWarning

DEFAULTS: dict[str, Any] = {
    "JWT_SECRET_KEY": None,
    "JWT_ALGORITHM": "HS256",
    "JWT_PRIVATE_KEY": None,
    "JWT_PUBLIC_KEY": None,
    "JWT_PREVIOUS_SECRET_KEY": None,
    "JWT_PREVIOUS_PUBLIC_KEY": None,
    "JWT_ACCESS_TOKEN_EXPIRES": timedelta(minutes=15),
    "JWT_REFRESH_TOKEN_EXPIRES": timedelta(days=20),
    "JWT_ENCODE_ISSUER": None,
    "JWT_DECODE_ISSUER": None,
    "JWT_ENCODE_AUDIENCE": None,
    "JWT_DECODE_AUDIENCE": None,
    "JWT_DECODE_LEEWAY": 0,
    "JWT_ENCODE_NBF": True,
    "JWT_IDENTITY_CLAIM": "sub",
    "JWT_TOKEN_LOCATION": ["headers"],
    "JWT_HEADER_NAME": "Authorization",
    "JWT_HEADER_TYPE": "Bearer",
    "JWT_QUERY_STRING_NAME": "token",
    "JWT_JSON_KEY": "access_token",
    "JWT_REFRESH_JSON_KEY": "refresh_token",
    "JWT_ACCESS_COOKIE_NAME": "access_token_cookie",
    "JWT_REFRESH_COOKIE_NAME": "refresh_token_cookie",
    "JWT_ACCESS_COOKIE_PATH": "/",
    "JWT_REFRESH_COOKIE_PATH": "/",
    "JWT_COOKIE_DOMAIN": None,
    "JWT_COOKIE_SECURE": True,
    "JWT_COOKIE_SAMESITE": "lax",
    "JWT_COOKIE_HTTP_ONLY": True,
    "JWT_COOKIE_MAX_AGE": None,
    "JWT_COOKIE_CSRF_PROTECT": True,
    "JWT_CSRF_IN_COOKIES": True,
    "JWT_CSRF_METHODS": ["POST", "PUT", "PATCH", "DELETE"],
    "JWT_ACCESS_CSRF_COOKIE_NAME": "csrf_access_token",
    "JWT_REFRESH_CSRF_COOKIE_NAME": "csrf_refresh_token",
    "JWT_ACCESS_CSRF_HEADER_NAME": "X-CSRF-TOKEN",
    "JWT_REFRESH_CSRF_HEADER_NAME": "X-CSRF-TOKEN",
    "JWT_CSRF_CHECK_FORM": False,
    "JWT_ACCESS_CSRF_FIELD_NAME": "csrf_token",
    "JWT_REFRESH_CSRF_FIELD_NAME": "csrf_token",
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No JWT_* variable from the outer environment leaks into a config."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("JWT_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize(("setting", "expected"), DEFAULTS.items())
def test_defaults(clean_env: pytest.MonkeyPatch, setting: str, expected: Any) -> None:
    assert getattr(AuthXConfig(), setting) == expected


def test_decode_algorithms_default_to_hs256(clean_env: pytest.MonkeyPatch) -> None:
    config = AuthXConfig()
    assert config.JWT_DECODE_ALGORITHMS == ["HS256"]
    assert config.decode_algorithms == ["HS256"]


@pytest.mark.parametrize("algorithm", ["HS512", "RS256", "EdDSA"])
def test_decode_algorithms_follow_algorithm_when_unset(algorithm: str) -> None:
    config = AuthXConfig(JWT_ALGORITHM=algorithm)
    assert [algorithm] == config.JWT_DECODE_ALGORITHMS
    assert config.decode_algorithms == [algorithm]


def test_explicit_decode_algorithms_are_kept() -> None:
    config = make_config(JWT_ALGORITHM="HS256", JWT_DECODE_ALGORITHMS=["HS256", "HS512"])
    assert config.decode_algorithms == ["HS256", "HS512"]


async def test_decode_algorithms_limit_what_verifies() -> None:
    """A token signed with HS512 is refused unless HS512 is a decode algorithm."""
    signer = AuthX(config=make_config(JWT_ALGORITHM="HS512"))
    token = signer.create_access_token("alice")
    strict = AuthX(config=make_config(JWT_ALGORITHM="HS256"))
    lenient = AuthX(
        config=make_config(JWT_ALGORITHM="HS256", JWT_DECODE_ALGORITHMS=["HS256", "HS512"])
    )
    statuses = [(await get_access(verifier, token)).status_code for verifier in (strict, lenient)]
    assert statuses == [401, 200]


def test_environment_variables_are_read(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("JWT_SECRET_KEY", SECRET)
    clean_env.setenv("jwt_header_type", "Token")
    clean_env.setenv("JWT_TOKEN_LOCATION", '["headers", "cookies"]')
    clean_env.setenv("JWT_ACCESS_TOKEN_EXPIRES", "3600")
    clean_env.setenv("JWT_COOKIE_SECURE", "false")
    config = AuthXConfig()
    assert config.JWT_SECRET_KEY == SECRET
    assert config.JWT_HEADER_TYPE == "Token"
    assert config.JWT_TOKEN_LOCATION == ["headers", "cookies"]
    assert timedelta(hours=1) == config.JWT_ACCESS_TOKEN_EXPIRES
    assert config.JWT_COOKIE_SECURE is False


def test_arguments_win_over_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("JWT_HEADER_NAME", "X-From-Env")
    assert AuthXConfig(JWT_HEADER_NAME="X-From-Argument").JWT_HEADER_NAME == "X-From-Argument"


async def test_environment_config_authenticates(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("JWT_SECRET_KEY", SECRET)
    clean_env.setenv("JWT_HEADER_NAME", "X-Auth")
    clean_env.setenv("JWT_HEADER_TYPE", "")
    auth = AuthX(config=AuthXConfig())
    token = auth.create_access_token("env")
    async with serve(auth) as client:
        ok = await client.get("/access", headers={"X-Auth": token})
        missing = await client.get("/access", headers=bearer(token))
    assert ok.status_code == 200
    assert ok.json()["sub"] == "env"
    assert missing.status_code == 401


def test_unknown_keyword_is_refused() -> None:
    with pytest.raises(BadConfigurationError, match="JWT_NOT_A_SETTING"):
        AuthXConfig(JWT_NOT_A_SETTING=1)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("JWT_WS_REJECTION", "closed"),
        ("JWT_DECODE_LEEWAY", -1),
        ("JWT_WS_CONNECTION_LIMIT", "drop"),
        ("JWT_MAX_TOKEN_SIZE", 0),
        ("JWT_COOKIE_SAMESITE", "sometimes"),
    ],
)
def test_bad_values_are_bad_configuration(setting: str, value: Any) -> None:
    # The README promises BadConfigurationError naming the setting, never pydantic's error.
    with pytest.raises(BadConfigurationError, match=setting):
        AuthXConfig(**{setting: value})


def test_bad_configuration_never_echoes_the_value() -> None:
    with pytest.raises(BadConfigurationError) as caught:
        AuthXConfig(JWT_SECRET_KEY=["super-secret-value"])  # type: ignore[arg-type]
    assert "super-secret-value" not in str(caught.value)


@pytest.mark.parametrize(
    ("build", "setting"),
    [
        pytest.param(
            lambda: make_config(JWT_TOKEN_LOCATION=["headers", "body"]),
            "JWT_TOKEN_LOCATION",
            id="unknown-location",
        ),
        pytest.param(
            lambda: make_config(JWT_ALGORITHM="HS257"), "JWT_ALGORITHM", id="unknown-algorithm"
        ),
        pytest.param(lambda: make_config(JWT_ALGORITHM="none"), "JWT_ALGORITHM", id="alg-none"),
        pytest.param(
            lambda: make_config(JWT_DECODE_ALGORITHMS=["HS256", "XX1"]),
            "JWT_DECODE_ALGORITHMS",
            id="unknown-decode-algorithm",
        ),
        pytest.param(
            lambda: AuthX(config=AuthXConfig(JWT_SECRET_KEY=None)),
            "JWT_SECRET_KEY",
            id="hs256-without-secret",
        ),
        pytest.param(
            lambda: AuthX(config=AuthXConfig(JWT_ALGORITHM="RS256", JWT_SECRET_KEY=SECRET)),
            "JWT_PRIVATE_KEY",
            id="rs256-with-secret-only",
        ),
        pytest.param(
            lambda: AuthX(
                config=make_config(JWT_ALGORITHM="RS256", JWT_PRIVATE_KEY="not a pem key")
            ),
            "JWT_PRIVATE_KEY",
            id="rs256-with-garbage-key",
        ),
    ],
)
def test_bad_configuration_names_the_setting(build: Any, setting: str) -> None:
    with pytest.raises(BadConfigurationError, match=setting):
        build()


def test_asymmetric_error_hints_that_secret_is_for_hmac() -> None:
    with pytest.raises(BadConfigurationError) as caught:
        AuthX(config=AuthXConfig(JWT_ALGORITHM="ES256", JWT_SECRET_KEY=SECRET))
    assert "JWT_SECRET_KEY" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_bad_key_error_does_not_show_the_key() -> None:
    garbage = "-----BEGIN PRIVATE KEY-----\nnot-really-a-key\n-----END PRIVATE KEY-----\n"
    with pytest.raises(BadConfigurationError) as caught:
        AuthX(config=make_config(JWT_ALGORITHM="RS256", JWT_PRIVATE_KEY=garbage))
    assert "not-really-a-key" not in str(caught.value)


def test_public_key_only_verifies_but_cannot_sign() -> None:
    private, public = key_pair("RS256")
    signer = AuthX(config=AuthXConfig(JWT_ALGORITHM="RS256", JWT_PRIVATE_KEY=private))
    verifier = AuthX(config=AuthXConfig(JWT_ALGORITHM="RS256", JWT_PUBLIC_KEY=public))
    token = signer.create_access_token("alice")
    assert verifier._decode_token(token).sub == "alice"
    with pytest.raises(BadConfigurationError, match="JWT_PRIVATE_KEY"):
        verifier.create_access_token("alice")


def test_short_secret_warns_once() -> None:
    secret = short_secret()
    with pytest.warns(InsecureKeyWarning, match="JWT_SECRET_KEY") as record:
        auth = AuthX(config=AuthXConfig(JWT_SECRET_KEY=secret))
    assert len(record) == 1
    assert secret not in str(record[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        token = auth.create_access_token("alice")
        assert auth._decode_token(token).sub == "alice"
        auth.create_refresh_token("alice")


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"JWT_PREVIOUS_SECRET_KEY": "short"}, "JWT_PREVIOUS_SECRET_KEY"),
        # 40 bytes are enough for HS256 but not for HS512, which also verifies here.
        ({"JWT_DECODE_ALGORITHMS": ["HS256", "HS512"]}, "JWT_SECRET_KEY"),
    ],
)
def test_short_verifying_secret_warns(overrides: dict[str, Any], setting: str) -> None:
    secret = "x" * 24 + short_secret()  # 40 bytes
    settings = {"JWT_SECRET_KEY": secret, **overrides}
    if "JWT_PREVIOUS_SECRET_KEY" in settings:
        settings["JWT_PREVIOUS_SECRET_KEY"] = short_secret()
    with pytest.warns(InsecureKeyWarning) as record:
        AuthX(config=AuthXConfig(**settings))
    assert [str(w.message).split(":")[0] for w in record] == [setting]


def test_long_secret_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        auth = AuthX(config=AuthXConfig(JWT_SECRET_KEY="x" * 32 + short_secret()))
        auth.create_access_token("alice")


def test_short_secret_warning_points_at_the_callers_line() -> None:
    with pytest.warns(InsecureKeyWarning) as record:
        AuthX(config=AuthXConfig(JWT_SECRET_KEY=short_secret()))
    assert record[0].filename == __file__


@pytest.mark.parametrize(
    "origin",
    ["https://App.example.com", "https://app.example.com/", "app.example.com", "https://a.b/c"],
)
def test_allowed_origins_must_be_written_as_browsers_send_them(origin: str) -> None:
    # An entry that can never equal a browser's Origin header would silently refuse everyone.
    with pytest.raises(BadConfigurationError, match="JWT_WS_ALLOWED_ORIGINS"):
        AuthXConfig(JWT_WS_TOKEN_LOCATION=["cookies"], JWT_WS_ALLOWED_ORIGINS=[origin])


@pytest.mark.parametrize(
    "origin", ["https://app.example.com", "http://127.0.0.1:8000", "http://[::1]:8000"]
)
def test_real_origins_are_accepted(origin: str) -> None:
    config = AuthXConfig(JWT_WS_TOKEN_LOCATION=["cookies"], JWT_WS_ALLOWED_ORIGINS=[origin])
    assert [origin] == config.JWT_WS_ALLOWED_ORIGINS
