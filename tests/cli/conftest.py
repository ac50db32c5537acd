"""Fixtures for the ``authx`` command: the real console script in a subprocess, click's
runner in-process, and the session's redis-server (the store tests' fixtures)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from authx.cli import main
from tests.conftest import SECRET
from tests.stores.conftest import redis_proc, redis_url

__all__ = ["SECRET", "Run", "redis_proc", "redis_url"]


@dataclass
class Run:
    """What one run of the command printed, and its exit status."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def clean_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The test process's environment without its JWT_* settings, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("JWT_")}
    return {**base, **env}


@pytest.fixture
def authx_cmd(tmp_path: Path) -> Callable[..., Run]:
    """``authx_cmd(*args, env={...}, input=None)``: ``python -m authx`` in a subprocess."""

    def run(*args: str, env: Mapping[str, str] | None = None, input: str | None = None) -> Run:
        done = subprocess.run(
            [sys.executable, "-m", "authx", *args],
            env=clean_environment(env or {}),
            cwd=tmp_path,
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return Run(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Result]:
    """``invoke(*args, env={...}, input=None)``: the command in-process, with click's runner."""
    for name in list(os.environ):
        if name.upper().startswith("JWT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)

    def run(*args: str, env: Mapping[str, str] | None = None, input: str | None = None) -> Result:
        return CliRunner().invoke(main, list(args), env=dict(env or {}), input=input)

    return run
