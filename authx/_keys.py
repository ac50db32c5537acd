"""Keys prepared once: PyJWT algorithm objects bound to their parsed keys."""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from jwt.algorithms import Algorithm, get_default_algorithms
from jwt.exceptions import InvalidKeyError

from authx.config import ASYMMETRIC_ALGORITHMS, SYMMETRIC_ALGORITHMS, AuthXConfig
from authx.exceptions import BadConfigurationError, InsecureKeyWarning

__all__ = ["KeySet", "keyset_for"]

_HEADER_CACHE_SIZE = 16

_ALGORITHMS: dict[str, Algorithm] = {
    name: alg for name, alg in get_default_algorithms().items() if name != "none"
}


def _algorithm(name: str, setting: str) -> Algorithm:
    try:
        return _ALGORITHMS[name]
    except KeyError:
        raise BadConfigurationError(
            f"{setting} {name!r} is not supported, use one of {sorted(_ALGORITHMS)}"
        ) from None


def _prepare(name: str, raw: str | bytes, setting: str) -> Any:
    alg = _algorithm(name, "JWT_ALGORITHM")
    try:
        return alg.prepare_key(raw)
    except (InvalidKeyError, ValueError, TypeError) as exc:
        # The message names the setting, never the key material.
        raise BadConfigurationError(
            f"{setting} is not a valid key for {name} ({type(exc).__name__})"
        ) from None


@dataclass(frozen=True)
class KeySet:
    """The signing key and the verifying keys (current first, then previous) per algorithm."""

    algorithm: str
    signer: tuple[Algorithm, Any] | None
    verifiers: dict[str, tuple[tuple[Algorithm, Any], ...]] = field(default_factory=dict)
    #: JWS headers seen on tokens whose signature verified with these keys (they repeat
    #: from token to token); bounded, and never filled by unverified input.
    headers: dict[bytes, dict[str, Any]] = field(default_factory=dict, compare=False)

    def remember_header(self, segment: bytes, header: dict[str, Any]) -> None:
        if len(self.headers) < _HEADER_CACHE_SIZE:
            self.headers[segment] = header

    def signing(self) -> tuple[Algorithm, Any]:
        if self.signer is None:
            raise BadConfigurationError(
                f"JWT_ALGORITHM {self.algorithm} needs JWT_PRIVATE_KEY to create tokens"
            )
        return self.signer


def _outside_authx() -> int:
    """The ``stacklevel`` of the first frame outside this package: the user's line."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _public_from_private(private: Any) -> Any:
    public_key = getattr(private, "public_key", None)
    return public_key() if callable(public_key) else None


def _build(
    algorithm: str,
    decode_algorithms: tuple[str, ...],
    secret: str | None,
    private: str | None,
    public: str | None,
    previous_secret: str | None,
    previous_public: str | None,
    provider: bool = False,
) -> KeySet:
    """The prepared keys; with an identity ``provider``, the application may have none,
    and decode algorithms of the other key family are the provider's."""
    if provider and not (secret or private or public):
        return KeySet(algorithm=algorithm, signer=None)
    signer: tuple[Algorithm, Any] | None = None
    verifiers: dict[str, tuple[tuple[Algorithm, Any], ...]] = {}
    #: setting -> PyJWT's complaint about its length (every HMAC key that verifies counts).
    short: dict[str, str] = {}
    if algorithm in SYMMETRIC_ALGORITHMS:
        if not secret:
            raise BadConfigurationError(
                f"JWT_ALGORITHM {algorithm} requires a key, please set JWT_SECRET_KEY"
            )
        alg = _algorithm(algorithm, "JWT_ALGORITHM")
        signer = (alg, _prepare(algorithm, secret, "JWT_SECRET_KEY"))
        complaint = alg.check_key_length(signer[1])
        if complaint:
            short["JWT_SECRET_KEY"] = complaint
    elif algorithm in ASYMMETRIC_ALGORITHMS:
        if not (private or public):
            hint = " (JWT_SECRET_KEY is only used by HS256/HS384/HS512)" if secret else ""
            raise BadConfigurationError(
                f"JWT_ALGORITHM {algorithm} is asymmetric and requires a PEM key, "
                f"please set JWT_PRIVATE_KEY and JWT_PUBLIC_KEY{hint}"
            )
        alg = _algorithm(algorithm, "JWT_ALGORITHM")
        if private:
            signer = (alg, _prepare(algorithm, private, "JWT_PRIVATE_KEY"))
    else:
        raise BadConfigurationError(f"JWT_ALGORITHM {algorithm!r} is not supported")

    for name in decode_algorithms:
        alg = _algorithm(name, "JWT_DECODE_ALGORITHMS")
        symmetric = name in SYMMETRIC_ALGORITHMS
        if symmetric != (algorithm in SYMMETRIC_ALGORITHMS):
            if provider:
                continue  # e.g. own HS256 tokens beside a provider's RS256 ones
            raise BadConfigurationError(
                f"JWT_DECODE_ALGORITHMS mixes {name} with JWT_ALGORITHM {algorithm}; "
                "one key family serves both"
            )
        keys: list[tuple[Algorithm, Any]] = []
        if symmetric:
            for setting, raw in (
                ("JWT_SECRET_KEY", secret),
                ("JWT_PREVIOUS_SECRET_KEY", previous_secret),
            ):
                if raw:
                    prepared = _prepare(name, raw, setting)
                    complaint = alg.check_key_length(prepared)
                    if complaint:
                        short.setdefault(setting, complaint)
                    keys.append((alg, prepared))
        else:
            if public:
                keys.append((alg, _prepare(name, public, "JWT_PUBLIC_KEY")))
            elif signer is not None:
                keys.append((alg, _public_from_private(signer[1])))
            if previous_public:
                keys.append((alg, _prepare(name, previous_public, "JWT_PREVIOUS_PUBLIC_KEY")))
        verifiers[name] = tuple(keys)
    for setting, complaint in short.items():
        warnings.warn(f"{setting}: {complaint}", InsecureKeyWarning, stacklevel=_outside_authx())
    return KeySet(algorithm=algorithm, signer=signer, verifiers=verifiers)


def keyset_for(config: AuthXConfig) -> KeySet:
    """The prepared keys for ``config`` (its owner keeps them until the config changes)."""
    return _build(
        config.JWT_ALGORITHM,
        tuple(config.decode_algorithms),
        config.JWT_SECRET_KEY,
        config.JWT_PRIVATE_KEY,
        config.JWT_PUBLIC_KEY,
        config.JWT_PREVIOUS_SECRET_KEY,
        config.JWT_PREVIOUS_PUBLIC_KEY,
        config.has_provider,
    )
