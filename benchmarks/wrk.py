"""wrk, the one load generator of the HTTP benchmarks.

A ``Target`` is a base URL, headers and a list of requests; ``rotate.lua`` sends them in turn
over ``concurrency`` keep-alive connections (one wrk thread), and reports requests, errors and
latency percentiles as JSON. ``compare`` measures emall and its baseline in alternating
rounds (subject, baseline, subject, …), so that a burst of noise on the machine hits both.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from benchmarks.harness import (
    Comparison,
    Context,
    MachineUse,
    Measurement,
    Processes,
    Timing,
    cpu_delta,
    cpu_snapshot,
    cpu_table,
    machine_delta,
    machine_snapshot,
)

SCRIPT = Path(__file__).with_name("rotate.lua")


class WrkError(RuntimeError):
    pass


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise WrkError(
            "wrk is not installed: `apt-get install wrk` (Debian/Ubuntu) or `brew install wrk`; "
            "bin/dev bench installs it when run as root"
        )
    return found


def wrk_version() -> str:
    import subprocess

    done = subprocess.run([wrk_binary(), "-v"], capture_output=True, text=True, check=False)
    match = re.search(r"wrk (\S+)", done.stdout + done.stderr)
    return match.group(1) if match else "unknown"


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # path and query string, already encoded
    body: bytes = b""


@dataclass
class Target:
    label: str
    base_url: str
    requests: list[Request]
    headers: dict[str, str] = field(default_factory=dict)
    _file: Path | None = None

    def file(self, directory: Path) -> Path:
        """The requests file rotate.lua reads (written once)."""
        if self._file is None:
            lines = [f"H\t{k}\t{v}" for k, v in self.headers.items()]
            for r in self.requests:
                body = r.body.decode()
                if any(c in s for s in (r.path, body) for c in "\t\n"):
                    raise ValueError(f"a tab or newline in a request: {r}")
                lines.append(f"R\t{r.method}\t{r.path}\t{body}")
            descriptor, name = tempfile.mkstemp(dir=directory, prefix="wrk-", suffix=".tsv")
            with open(descriptor, "w", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")
            self._file = Path(name)
        return self._file


class WrkRun(msgspec.Struct):
    requests: int
    duration_us: int
    bytes: int
    connect_errors: int
    read_errors: int
    write_errors: int
    status_errors: int
    timeouts: int
    p50_us: int
    p90_us: int
    p99_us: int
    max_us: int
    mean_us: float

    @property
    def per_second(self) -> float:
        return self.requests / (self.duration_us / 1e6) if self.duration_us else 0.0

    @property
    def errors(self) -> int:
        return (
            self.connect_errors
            + self.read_errors
            + self.write_errors
            + self.status_errors
            + self.timeouts
        )


async def run_wrk(
    target: Target, directory: Path, *, connections: int, seconds: float, timeout_s: int = 10
) -> WrkRun:
    process = await asyncio.create_subprocess_exec(
        wrk_binary(),
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={timeout_s}s",
        "-s",
        str(SCRIPT),
        target.base_url,
        "--",
        str(target.file(directory)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    text = out.decode(errors="replace")
    for line in text.splitlines():
        if line.startswith("WRKJSON "):
            run = msgspec.json.decode(line.removeprefix("WRKJSON "), type=WrkRun)
            if run.status_errors:
                raise WrkError(
                    f"{target.label}: {run.status_errors} of {run.requests} responses were not "
                    "2xx/3xx; the benchmark's requests are wrong"
                )
            return run
    raise WrkError(f"wrk gave no figures for {target.label}: {text} {err.decode()}")


Measured = tuple[WrkRun, dict[str, float], MachineUse]  # one round: figures, CPU, machine


async def _measured(
    target: Target,
    directory: Path,
    processes: Processes,
    *,
    connections: int,
    seconds: float,
) -> Measured:
    before, machine_before = cpu_snapshot(processes), machine_snapshot()
    run = await run_wrk(target, directory, connections=connections, seconds=seconds)
    machine = machine_delta(machine_before, machine_snapshot())
    return run, cpu_delta(before, cpu_snapshot(processes)), machine


def _measurement(label: str, runs: list[Measured]) -> Measurement:
    total = sum(r.requests for r, _, _ in runs)
    cpu: dict[str, float] = {}
    machine = MachineUse()
    for _, delta, used in runs:
        machine += used
        for name, seconds in delta.items():
            cpu[name] = cpu.get(name, 0.0) + seconds
    return Measurement(
        label=label,
        per_second=statistics.median(r.per_second for r, _, _ in runs),
        p50_ms=statistics.median(r.p50_us for r, _, _ in runs) / 1000,
        p99_ms=statistics.median(r.p99_us for r, _, _ in runs) / 1000,
        rounds=len(runs),
        requests=total,
        errors=sum(r.errors for r, _, _ in runs),
        cpu_us={name: seconds * 1e6 / total for name, seconds in cpu.items()} if total else {},
        machine=machine,
    )


async def compare(
    subject: Target,
    baseline: Target,
    *,
    concurrency: int,
    timing: Timing,
    processes: Processes,
    directory: Path,
) -> tuple[Measurement, Measurement]:
    """Warm both up, then alternate measured rounds; medians of the rounds."""
    for target in (subject, baseline):
        await run_wrk(target, directory, connections=concurrency, seconds=timing.warmup_seconds)
    runs: dict[str, list[Measured]] = {"s": [], "b": []}
    for _ in range(timing.rounds):
        for key, target in (("s", subject), ("b", baseline)):
            runs[key].append(
                await _measured(
                    target, directory, processes, connections=concurrency, seconds=timing.seconds
                )
            )
    return _measurement(subject.label, runs["s"]), _measurement(baseline.label, runs["b"])


async def compare_in(
    ctx: Context,
    subject: Target,
    baseline: Target,
    *,
    concurrency: int,
    timing: Timing | None = None,
) -> tuple[Measurement, Measurement]:
    """``compare`` with the processes and work folder of a data size's context, and its timing
    unless ``timing`` is given."""
    return await compare(
        subject,
        baseline,
        concurrency=concurrency,
        timing=timing or ctx.timing,
        processes=ctx.processes,
        directory=ctx.workdir,
    )


# -- where the time goes ---------------------------------------------------------------------

_AREAS = (
    ("litestar", "Litestar (routing, parameters, DI, responses)"),
    ("asyncpg", "asyncpg (PostgreSQL protocol)"),
    ("httpx2", "httpx2/httpcore2 (the Meilisearch client)"),
    ("httpcore2", "httpx2/httpcore2 (the Meilisearch client)"),
    ("meilisearch_python_sdk", "Meilisearch SDK"),
    ("msgspec", "msgspec"),
    ("uvicorn", "uvicorn and httptools (HTTP server)"),
    ("httptools", "uvicorn and httptools (HTTP server)"),
    ("jwt", "PyJWT (token check)"),
    ("asyncio", "asyncio event loop"),
    ("uvloop", "asyncio event loop"),
    ("anyio", "anyio"),
    ("emall", "emall library"),
    ("api", "emall API layer"),
)


def _area(frame: str) -> str:
    """A py-spy frame ``name (path/to/file.py:12)`` to the package it runs in."""
    start = frame.rfind("(")
    path = frame[start + 1 :] if start >= 0 else frame
    parts = path.replace("\\", "/").split("/")
    for part in parts:
        for package, area in _AREAS:
            if part == package or part.startswith(package + "."):
                return area
    return "other (stdlib, interpreter)"


def summarize_py_spy(raw: str, *, top: int = 12) -> str:
    """Markdown: CPU samples of the server by package and by function (self and total)."""
    stacks: list[tuple[list[str], int]] = []
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    total = sum(n for _, n in stacks)
    if not total:
        return "py-spy took no samples."
    areas: dict[str, int] = {}
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    for frames, n in stacks:
        leaf = frames[-1]
        areas[_area(leaf)] = areas.get(_area(leaf), 0) + n
        own[leaf] = own.get(leaf, 0) + n
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n

    def share(n: int) -> str:
        return f"{100 * n / total:.1f}%"

    lines = [f"py-spy, {total:,} samples of the server process (CPU only, idle excluded):", ""]
    lines += ["| where (leaf frame's package) | share |", "|---|---|"]
    lines += [f"| {a} | {share(n)} |" for a, n in sorted(areas.items(), key=lambda x: -x[1])]
    lines += ["", "| top frames by own time | share |", "|---|---|"]
    lines += [f"| `{f}` | {share(n)} |" for f, n in sorted(own.items(), key=lambda x: -x[1])[:top]]
    interesting = [
        (f, n)
        for f, n in sorted(inclusive.items(), key=lambda x: -x[1])
        if any(p in f for p in ("emall/", "api/", "litestar/routes", "litestar/_kwargs"))
        and n < total
    ]
    if interesting:
        lines += ["", "| emall and Litestar frames by total time | share |", "|---|---|"]
        lines += [f"| `{f}` | {share(n)} |" for f, n in interesting[:top]]
    return "\n".join(lines)


def py_spy_binary() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


async def py_spy_profile(
    pid: int, target: Target, directory: Path, *, connections: int, seconds: int
) -> str:
    """Record the server with py-spy while wrk drives ``target``; the summary as markdown."""
    spy = py_spy_binary()
    if spy is None:
        return "py-spy is not installed (it is a dev dependency: `uv sync`)."
    out = directory / f"py-spy-{pid}-{target.label.replace(' ', '_').replace('/', '_')}.txt"
    recorder = await asyncio.create_subprocess_exec(
        spy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(seconds),
        "--rate",
        "250",
        "--format",
        "raw",
        "--nonblocking",
        "--output",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    await asyncio.sleep(0.3)  # attached before the load starts
    await run_wrk(target, directory, connections=connections, seconds=seconds + 1)
    _, err = await recorder.communicate()
    if recorder.returncode != 0 or not out.exists():
        return f"py-spy failed: {err.decode(errors='replace').strip()[:500]}"
    return summarize_py_spy(out.read_text())


async def explain_misses(
    ctx: Context,
    comparisons: list[Comparison],
    target: Target,
    needed: Callable[[Comparison], str],
) -> None:
    """Fill ``profile`` of each missed target: CPU per request, what the target needs, and one
    py-spy recording per benchmark (at concurrency 8 when that missed, else the first miss)."""
    missed = [c for c in comparisons if c.met is False]
    if not missed:
        return
    chosen = next((c for c in missed if c.concurrency == 8), missed[0])
    recording = await py_spy_profile(
        ctx.server.pid,
        target,
        ctx.workdir,
        connections=chosen.concurrency,
        seconds=ctx.profile_seconds,
    )
    for c in missed:
        where = (
            recording
            if c is chosen
            else f"(py-spy: see concurrency {chosen.concurrency}, recorded under that load.)"
        )
        c.profile = "\n\n".join(
            p for p in (cpu_table(c.subject, c.baseline), needed(c), where) if p
        )
