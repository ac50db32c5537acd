"""The PyPI ``authx`` package, installed in a virtual environment of its own for a
side-by-side comparison: never a dependency of this project, never imported here.

The environment lives in ``.bench-cache/pypi-authx`` (made once, then reused).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["PYPI_VERSION", "pypi_app_dir", "pypi_python"]

PYPI_VERSION = "1.7.1"
ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".bench-cache" / "pypi-authx"
INSTALL_TIMEOUT = 300


def pypi_python() -> Path | str:
    """The environment's interpreter, or the reason it could not be made."""
    python = VENV / "bin" / "python"
    marker = VENV / f".installed-{PYPI_VERSION}"
    if marker.exists():
        return python
    try:
        if not python.exists():
            subprocess.run(
                [sys.executable, "-m", "venv", str(VENV)], check=True, timeout=INSTALL_TIMEOUT
            )
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                f"authx=={PYPI_VERSION}",
                "uvicorn",
                "websockets",
            ],
            check=True,
            timeout=INSTALL_TIMEOUT,
            capture_output=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"could not install authx=={PYPI_VERSION} in {VENV}: {type(exc).__name__}"
    marker.touch()
    return python


def pypi_app_dir(tmp: Path) -> Path:
    """A directory holding only the competitor's app module (``pypi_ws_app``)."""
    target = tmp / "pypi-app"
    target.mkdir()
    shutil.copy(ROOT / "bench" / "_pypi_ws_app.py", target / "pypi_ws_app.py")
    return target
