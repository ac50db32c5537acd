"""``authx keys generate``: every algorithm's keys sign tokens that AuthX and PyJWT verify."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
from click.testing import Result

from authx import AuthX, AuthXConfig
from authx._cli_keys import ALGORITHMS, PRIVATE_FILE, PUBLIC_FILE, SECRET_FILE
from authx.cli import ExitCode

from .conftest import Run, clean_environment

_EXPORT = re.compile(r'export (JWT_\w+)=(?:"\$\(cat (.+)\)"|(\S+))')


def exported(stdout: str) -> dict[str, str]:
    """The variables the printed ``export`` lines set, files read as the shell would."""
    values: dict[str, str] = {}
    for line in stdout.splitlines():
        match = _EXPORT.fullmatch(line)
        assert match, f"not an export line: {line!r}"
        name, path, literal = match.groups()
        values[name] = Path(path).read_text().rstrip("\n") if path else literal
    return values


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_generated_keys_sign_tokens_that_verify(
    algorithm: str, invoke: Callable[..., Result], tmp_path: Path
) -> None:
    out_dir = tmp_path / "keys"
    generated = invoke("keys", "generate", "--algorithm", algorithm, "--out-dir", str(out_dir))
    assert generated.exit_code == 0, generated.output
    env = exported(generated.stdout)
    assert env["JWT_ALGORITHM"] == algorithm

    created = invoke("token", "create", "--sub", "alice", "--scopes", "read", env=env)
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()

    payload = AuthX(config=AuthXConfig(**env))._decode_token(token)
    assert (payload.sub, payload.scopes) == ("alice", ["read"])
    verifying_key = env.get("JWT_PUBLIC_KEY") or env["JWT_SECRET_KEY"]
    claims = jwt.decode(token, verifying_key, algorithms=[algorithm], options={"require": ["exp"]})
    assert claims["sub"] == "alice"

    if algorithm.startswith("HS"):
        assert mode(out_dir / SECRET_FILE) == 0o600
        # RFC 7518 3.2: at least as many bytes as the hash's output.
        assert len(env["JWT_SECRET_KEY"].encode()) >= int(algorithm[2:]) // 8
    else:
        assert mode(out_dir / PRIVATE_FILE) == 0o600
        assert "PRIVATE KEY" not in generated.output  # the private key goes to its file only
        assert (out_dir / PUBLIC_FILE).read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_an_hmac_secret_is_printed_when_no_directory_is_given(
    invoke: Callable[..., Result],
) -> None:
    first, second = invoke("keys", "generate"), invoke("keys", "generate", "-a", "HS512")
    assert first.exit_code == second.exit_code == 0
    one, other = exported(first.stdout), exported(second.stdout)
    assert one["JWT_ALGORITHM"] == "HS256"
    assert other["JWT_ALGORITHM"] == "HS512"
    assert len(other["JWT_SECRET_KEY"]) > len(one["JWT_SECRET_KEY"]) >= 43
    assert one["JWT_SECRET_KEY"] != invoke("keys", "generate").stdout


def test_a_key_pair_needs_a_directory(invoke: Callable[..., Result]) -> None:
    result = invoke("keys", "generate", "-a", "ES256")
    assert result.exit_code == ExitCode.USAGE
    assert "--out-dir" in result.stderr
    assert "PRIVATE KEY" not in result.output


def test_existing_files_are_kept_unless_forced(
    invoke: Callable[..., Result], tmp_path: Path
) -> None:
    out_dir = tmp_path / "keys"
    assert invoke("keys", "generate", "-a", "EdDSA", "--out-dir", str(out_dir)).exit_code == 0
    private = (out_dir / PRIVATE_FILE).read_text()
    refused = invoke("keys", "generate", "-a", "EdDSA", "--out-dir", str(out_dir))
    assert refused.exit_code == ExitCode.FILE_EXISTS
    assert "--force" in refused.stderr
    assert "Traceback" not in refused.output
    assert (out_dir / PRIVATE_FILE).read_text() == private
    # A half-written pair is not left behind: the public key alone is refused too.
    (out_dir / PRIVATE_FILE).unlink()
    assert invoke("keys", "generate", "-a", "EdDSA", "--out-dir", str(out_dir)).exit_code == 6
    assert not (out_dir / PRIVATE_FILE).exists()

    # --force replaces the files, and a looser mode of the old file does not survive.
    (out_dir / PRIVATE_FILE).write_text("old")
    os.chmod(out_dir / PRIVATE_FILE, 0o644)
    forced = invoke("keys", "generate", "-a", "EdDSA", "--out-dir", str(out_dir), "--force")
    assert forced.exit_code == 0, forced.output
    assert mode(out_dir / PRIVATE_FILE) == 0o600
    assert (out_dir / PRIVATE_FILE).read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert sorted(p.name for p in out_dir.iterdir()) == [PRIVATE_FILE, PUBLIC_FILE]


BASH = shutil.which("bash")


@pytest.mark.skipif(BASH is None, reason="needs bash")
def test_the_printed_lines_configure_a_shell(tmp_path: Path) -> None:
    """The documented use, through the real console script: eval the output, then use it."""
    script = (
        'eval "$(authx keys generate --algorithm RS256 --out-dir keys)" && '
        "authx token create --sub alice | authx token inspect - --json"
    )
    bin_dir = str(Path(sys.executable).parent)
    env = clean_environment({"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"})
    done = subprocess.run(
        [BASH or "bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert '"valid": true' in done.stdout
    assert '"alg": "RS256"' in done.stdout
    assert "PRIVATE KEY" not in done.stdout + done.stderr


def test_python_dash_m_runs_the_command(authx_cmd: Callable[..., Run]) -> None:
    shown = authx_cmd("--help")
    assert shown.code == 0
    assert "keys" in shown.stdout
    assert "revoke" in shown.stdout
    assert authx_cmd("--version").stdout.startswith("authx, version")
    assert authx_cmd("nonsense").code == ExitCode.USAGE
