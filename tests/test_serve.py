"""`emall serve` on embedded defaults, as a new user runs it: start, use, kill -9, recover, stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from emall.demo.parties import DEMO_PASSWORD
from emall.embedded.meili import resolve_meili_binary
from tests.conftest import STATE

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-c", "from api.cli import main; main()", "serve", "--demo"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"not ready in {timeout} s:\n{log.read_text()[-3000:]}")


def _meili_children(pid: int) -> list[psutil.Process]:
    try:
        return [
            c for c in psutil.Process(pid).children(recursive=True) if "meilisearch" in c.name()
        ]
    except psutil.NoSuchProcess:
        return []


def _postmaster_pid(state: Path) -> int | None:
    pidfile = state / "pg" / "postmaster.pid"
    try:
        return int(pidfile.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _gone(pid: int, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def _stop_leftovers(state: Path) -> None:
    """After a failed run, stop whatever the test's server left, so nothing outlives the test."""
    pid = _postmaster_pid(state)
    if pid is not None and not _gone(pid, timeout=0):
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).terminate()
        _gone(pid, timeout=10)


def test_serve_runs_recovers_from_kill_9_and_stops_cleanly(tmp_path: Path) -> None:
    state = tmp_path / "state"
    try:
        _serve_kill_restart_stop(state, tmp_path)
    finally:
        _stop_leftovers(state)


def _serve_kill_restart_stop(state: Path, tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "MEILI_URL", "MEILI_MASTER_KEY"}
    }
    env |= {
        "EMALL_STATE_DIR": str(state),
        "EMALL_PORT": str(port),
        "MEILI_BIN": str(resolve_meili_binary(STATE, os.environ.get("MEILI_BIN"))),
        "EMALL_LOG_LEVEL": "WARNING",
    }
    log = tmp_path / "serve.log"

    first = _start(env, log)
    try:
        _wait_ready(base, first, log)
        token = httpx.post(
            f"{base}/api/v1/auth/token", json={"username": "nj_operator", "password": DEMO_PASSWORD}
        )
        assert token.status_code == 200, token.text
        me = httpx.get(
            f"{base}/api/v1/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
        )
        assert me.json()["organisation_kind"] == "operator"
        assert me.json()["region_code"] == "511000"
        meili = _meili_children(first.pid)
        assert len(meili) == 1
        postmaster = _postmaster_pid(state)
        assert postmaster is not None
    finally:
        first.kill()  # SIGKILL: no clean-up runs in the server process
        first.wait(10)

    # the Meilisearch child dies with its parent; nothing is left holding port or data
    assert _gone(meili[0].pid), "Meilisearch outlived a kill -9 of emall serve"

    second = _start(env, log)
    try:
        _wait_ready(base, second, log)
        token = httpx.post(
            f"{base}/api/v1/auth/token", json={"username": "nj_operator", "password": DEMO_PASSWORD}
        )
        assert token.status_code == 200, "demo seed must be idempotent across restarts"
        meili_second = _meili_children(second.pid)
        postmaster = _postmaster_pid(state)
        assert postmaster is not None
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0, log.read_text()[-3000:]

    # a clean shutdown leaves no process behind: not Meilisearch, not PostgreSQL
    assert all(_gone(p.pid) for p in meili_second)
    assert _gone(postmaster), "PostgreSQL still running after a clean shutdown"
