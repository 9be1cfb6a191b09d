"""The emall command: its commands, their help, and start-up refusal of bad settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def emall(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from api.cli import main; main()", *args],
        cwd=REPO,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_top_level_help_lists_emall_commands(tmp_path: Path) -> None:
    result = emall("--help", env={**os.environ, "EMALL_STATE_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    for command in ("serve", "db", "seed", "worker", "catalogue", "search"):
        assert command in result.stdout


@pytest.mark.parametrize(
    "command",
    [
        ("serve",),
        ("db",),
        ("db", "migrate"),
        ("db", "status"),
        ("seed",),
        ("seed", "demo"),
        ("worker",),
    ],
)
def test_every_command_has_help(command: tuple[str, ...], tmp_path: Path) -> None:
    result = emall(*command, "--help", env={**os.environ, "EMALL_STATE_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_bad_setting_stops_start_up_naming_the_variable(tmp_path: Path) -> None:
    env = {**os.environ, "EMALL_STATE_DIR": str(tmp_path), "EMALL_PORT": "eighty"}
    result = emall("db", "migrate", env=env)
    assert result.returncode == 2
    assert "EMALL_PORT: expected a port 1-65535, got 'eighty'" in result.stderr
