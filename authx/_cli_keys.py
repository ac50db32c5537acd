"""Key material for ``authx keys generate``: HMAC secrets, PEM key pairs and their files.

Secrets come from :mod:`secrets`, key pairs from ``cryptography``. A private key or
secret file is created with mode 0600 and an existing file is never overwritten
unless asked (then it is replaced, so a looser mode of the old file does not stay).
"""

from __future__ import annotations

import os
import secrets
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

__all__ = [
    "ALGORITHMS",
    "RSA_SIZES",
    "KeyFile",
    "KeyMaterial",
    "environment",
    "generate",
    "key_files",
    "write_key_files",
]

#: Every algorithm AuthX signs with, in the order ``--help`` lists them.
ALGORITHMS = (
    *("HS256", "HS384", "HS512"),
    *("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    *("ES256", "ES256K", "ES384", "ES512", "EdDSA"),
)
RSA_SIZES = (2048, 3072, 4096)

#: Bytes of randomness of a new HMAC secret: the hash's output size (RFC 7518, 3.2).
_SECRET_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ES256": ec.SECP256R1,
    "ES256K": ec.SECP256K1,
    "ES384": ec.SECP384R1,
    "ES512": ec.SECP521R1,
}
SECRET_FILE, PRIVATE_FILE, PUBLIC_FILE = "jwt-secret", "jwt-private.pem", "jwt-public.pem"


@dataclass(frozen=True)
class KeyMaterial:
    """A new HMAC ``secret``, or a PEM key pair, for ``algorithm``."""

    algorithm: str
    secret: str | None = None
    private_pem: bytes | None = None
    public_pem: bytes | None = None


@dataclass(frozen=True)
class KeyFile:
    """A file to write: its name in the output directory, content, mode and variable."""

    name: str
    content: bytes
    mode: int
    variable: str


def generate(algorithm: str, rsa_bits: int = 2048) -> KeyMaterial:
    """A new secret (HS*) or key pair (RS*, PS*, ES*, EdDSA) for ``algorithm``."""
    if algorithm in _SECRET_BYTES:
        return KeyMaterial(algorithm, secret=secrets.token_urlsafe(_SECRET_BYTES[algorithm]))
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    if algorithm in _CURVES:
        private = ec.generate_private_key(_CURVES[algorithm]())
    elif algorithm == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    elif algorithm[:2] in ("RS", "PS"):
        private = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    else:
        raise ValueError(f"unknown algorithm {algorithm!r}")
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyMaterial(algorithm, private_pem=private_pem, public_pem=public_pem)


def key_files(material: KeyMaterial) -> list[KeyFile]:
    """The files that hold ``material``: the secret, or the private and public keys."""
    if material.secret is not None:
        # No trailing newline: "$(cat file)" would strip it, other readers might not.
        return [KeyFile(SECRET_FILE, material.secret.encode(), 0o600, "JWT_SECRET_KEY")]
    if material.private_pem is None or material.public_pem is None:
        raise ValueError("no key material")
    return [
        KeyFile(PRIVATE_FILE, material.private_pem, 0o600, "JWT_PRIVATE_KEY"),
        KeyFile(PUBLIC_FILE, material.public_pem, 0o644, "JWT_PUBLIC_KEY"),
    ]


def write_key_files(directory: Path, files: list[KeyFile], force: bool) -> list[Path]:
    """Write ``files`` into ``directory`` (made if missing); FileExistsError names the
    files already there, before anything is written, unless ``force``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / file.name for file in files]
    existing = [str(path) for path in paths if path.exists() or path.is_symlink()]
    if existing and not force:
        raise FileExistsError(", ".join(existing))
    written: list[Path] = []
    try:
        for file, path in zip(files, paths, strict=True):
            (_replace if force else _create)(path, file.content, file.mode)
            written.append(path)
    except BaseException:
        for path in written:  # never leave half a key pair behind
            path.unlink(missing_ok=True)
        raise
    return paths


def _create(path: Path, content: bytes, mode: int) -> None:
    """Write a new file; O_EXCL refuses an existing file or symlink."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)


def _replace(path: Path, content: bytes, mode: int) -> None:
    """Write a temporary file (mode 0600 from the start), then rename it over ``path``."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def environment(material: KeyMaterial, paths: list[Path] | None) -> list[str]:
    """Shell lines setting the ``JWT_*`` variables: the secret itself when it was not
    written to a file, else ``"$(cat file)"`` (a private key is never printed)."""
    lines = [f"export JWT_ALGORITHM={material.algorithm}"]
    if paths is None:
        if material.secret is None:
            raise ValueError("a key pair is only ever written to files")
        return [*lines, f"export JWT_SECRET_KEY={shlex.quote(material.secret)}"]
    for file, path in zip(key_files(material), paths, strict=True):
        lines.append(f'export {file.variable}="$(cat {shlex.quote(str(path.resolve()))})"')
    return lines
