"""What every benchmark shares: measurements, targets, the machine, the server, the report.

A benchmark measures emall and a raw baseline (raw SQL, raw Meilisearch, a bare route) in the
same run, on the same data, and reports both with their ratio. Figures are medians over
repeated rounds.

* ``measure`` times an in-process Python operation (for library-level benchmarks).
* HTTP benchmarks use wrk (``benchmarks.wrk``) against ``api_server``: the real app under
  uvicorn in its own process, as ``emall serve`` runs it.
* ``render`` writes RESULTS.md: the machine, then one section per data size with a table of
  every figure, its baseline, the ratio, the target and whether it was met, then the profiles
  of missed targets.
"""

from __future__ import annotations

import asyncio
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from benchmarks.dataset import Dataset
from emall.settings import Settings


@dataclass
class Measurement:
    """Throughput (per second) and latencies (ms) of one thing at one concurrency.

    ``cpu_us`` is the CPU time per request (µs) of each component (emall, postgres,
    meilisearch, wrk) over the measured rounds, when the benchmark could see the processes.
    """

    label: str
    per_second: float
    p50_ms: float
    p99_ms: float
    rounds: int = 0
    requests: int = 0
    errors: int = 0
    cpu_us: dict[str, float] = field(default_factory=dict)
    machine: MachineUse | None = None  # the whole machine over the measured rounds


@dataclass
class Comparison:
    benchmark: str
    concurrency: int
    subject: Measurement
    baseline: Measurement
    unit: str = "req/s"
    notes: list[str] = field(default_factory=list)
    data_size: str = ""  # the section it belongs to; "" for the run's default data size
    target: str = ""  # the target in words, e.g. "≥ 0.75× raw throughput"
    met: bool | None = None  # None: no target at this level
    ratio_kind: str = "throughput"  # "throughput": subject/baseline rate; "latency": p99/p99
    profile: str = ""  # for a missed target: where the time goes (markdown)

    @property
    def ratio(self) -> float:
        if self.ratio_kind == "latency":
            return self.subject.p99_ms / self.baseline.p99_ms if self.baseline.p99_ms else 0.0
        return (
            self.subject.per_second / self.baseline.per_second if self.baseline.per_second else 0.0
        )

    @property
    def p99_overhead_ms(self) -> float:
        return self.subject.p99_ms - self.baseline.p99_ms


def _percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(share * (len(sorted_values) - 1))))
    return sorted_values[index]


def percentile(values: list[float], share: float) -> float:
    return _percentile(sorted(values), share)


async def measure(
    label: str,
    operation: Callable[[int], Awaitable[None]],
    *,
    concurrency: int,
    requests_per_round: int,
    rounds: int = 5,
    warmup: int = 50,
) -> Measurement:
    """Run ``operation(i)`` ``requests_per_round`` times per round at a fixed concurrency, in
    this process (for library-level work; HTTP benchmarks use wrk)."""
    for i in range(warmup):
        await operation(i)
    rates: list[float] = []
    latencies: list[float] = []
    for _ in range(rounds):
        counter = iter(range(requests_per_round))

        async def lane(counter: Iterator[int] = counter) -> None:
            for i in counter:
                started = time.perf_counter()
                await operation(i)
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        rates.append(requests_per_round / (time.perf_counter() - started))
    latencies.sort()
    return Measurement(
        label=label,
        per_second=statistics.median(rates),
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        rounds=rounds,
        requests=rounds * requests_per_round,
    )


# -- processes and their CPU time -----------------------------------------------------------


@dataclass
class Processes:
    """The processes whose CPU time a benchmark accounts for (pids; None when external)."""

    postgres: int | None = None  # the postmaster: its children are the backends
    meilisearch: int | None = None
    emall: int | None = None  # the uvicorn server under test

    def groups(self) -> dict[str, int]:
        return {
            name: pid
            for name, pid in (
                ("emall", self.emall),
                ("postgres", self.postgres),
                ("meilisearch", self.meilisearch),
            )
            if pid is not None
        }


def postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _tree_cpu_seconds(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        total = 0.0
        for proc in (root, *root.children(recursive=True)):
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                continue
        return total
    except psutil.Error:
        return 0.0


@dataclass(frozen=True)
class MachineUse:
    """The whole machine's CPU over some rounds, from /proc/stat: what the accounted processes
    leave unexplained (other processes, kernel threads, interrupts) and what the hypervisor
    took (steal). Either can make one round of a shared two-core machine slower than another."""

    busy_s: float = 0.0  # user, nice, system, irq and softirq time of all cores
    steal_s: float = 0.0
    wall_s: float = 0.0

    def __add__(self, other: MachineUse) -> MachineUse:
        return MachineUse(
            self.busy_s + other.busy_s, self.steal_s + other.steal_s, self.wall_s + other.wall_s
        )

    def steal_share(self) -> float:
        """Steal as a share of the cores' time."""
        cores = os.cpu_count() or 1
        return self.steal_s / (self.wall_s * cores) if self.wall_s else 0.0


def machine_snapshot() -> MachineUse:
    """The machine's CPU seconds so far (zeros where /proc/stat cannot be read)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return MachineUse(wall_s=time.monotonic())
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return MachineUse(
        busy_s=(user + nice + system + irq + softirq) / tick,
        steal_s=steal / tick,
        wall_s=time.monotonic(),
    )


def machine_delta(before: MachineUse, after: MachineUse) -> MachineUse:
    return MachineUse(
        max(0.0, after.busy_s - before.busy_s),
        max(0.0, after.steal_s - before.steal_s),
        max(0.0, after.wall_s - before.wall_s),
    )


def cpu_snapshot(processes: Processes) -> dict[str, float]:
    """CPU seconds so far of each group, and of this process's finished children (wrk)."""
    snapshot = {name: _tree_cpu_seconds(pid) for name, pid in processes.groups().items()}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    snapshot["wrk"] = children.ru_utime + children.ru_stime
    return snapshot


def cpu_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    return {name: max(0.0, after[name] - before.get(name, 0.0)) for name in after}


class QueryRecorder:
    """Stands in for a connection: records the query a library function sends, and runs it.

    The bare routes take their SQL from the library this way, so that they cannot drift
    apart from what emall runs."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.query = ""

    async def fetchrow(self, query: str, *args: Any) -> Any:
        self.query = query
        return await self.pool.fetchrow(query, *args)


# -- the machine ------------------------------------------------------------------------------


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str]:
    try:
        with open("/proc/meminfo") as meminfo:
            kb = int(meminfo.readline().split()[1])
        memory = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        memory = "unknown"
    return {
        "cores": str(os.cpu_count()),
        "memory": memory,
        "cpu": _cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "litestar": _version("litestar"),
        "uvicorn": _version("uvicorn"),
        "asyncpg": _version("asyncpg"),
        "msgspec": _version("msgspec"),
        "meilisearch-python-sdk": _version("meilisearch-python-sdk"),
    }


# -- the server under test --------------------------------------------------------------------


@dataclass
class Server:
    base_url: str
    pid: int


async def settle(
    database_url: str, meili_url: str, meili_key: str, *, within: float = 180.0
) -> str:
    """Wait until neither Meilisearch nor PostgreSQL is still working off an earlier step.

    Building a data set or the sync lag benchmark leaves Meilisearch tasks and autovacuum
    runs behind, which would share the cores with the next measurement. Waits until
    Meilisearch has no enqueued or processing task and no autovacuum worker runs, for at most
    ``within`` seconds; "" when quiet, else what was still running (for the report).
    """
    deadline = time.monotonic() + within
    busy = ""
    conn = await asyncpg.connect(database_url)
    try:
        async with httpx.AsyncClient(
            base_url=meili_url, headers={"Authorization": f"Bearer {meili_key}"}, timeout=30
        ) as meili:
            while True:
                tasks = await meili.get(
                    "/tasks", params={"statuses": "enqueued,processing", "limit": 1}
                )
                tasks.raise_for_status()
                pending = int(tasks.json()["total"])
                vacuums = await conn.fetchval(
                    "select count(*) from pg_stat_activity where backend_type = 'autovacuum worker'"
                )
                if not pending and not vacuums:
                    return ""
                busy = f"{pending} Meilisearch tasks and {vacuums} autovacuum workers"
                if time.monotonic() > deadline:
                    return f"still busy after {within:.0f} s: {busy}"
                await asyncio.sleep(0.5)
    finally:
        await conn.close()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def served(
    module: str, args: list[str], env: Mapping[str, str], *, what: str, ready: str
) -> AsyncIterator[Server]:
    """``python -m module *args --port N`` on a free port, until the block ends.

    Ready once ``GET ready`` answers without a server error (within 30 s).
    """
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args, "--port", str(port)], env={**os.environ, **env}
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as probe:
            for _ in range(600):
                if process.poll() is not None:
                    raise RuntimeError(f"{what} exited with {process.returncode}")
                try:
                    if (await probe.get(f"{base}{ready}")).status_code < 500:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError(f"{what} did not answer {ready} within 30 s")
        yield Server(base_url=base, pid=process.pid)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@asynccontextmanager
async def api_server(
    env: Mapping[str, str], *, factory: str = "benchmarks.bench_offer:bench_app"
) -> AsyncIterator[Server]:
    """The app under uvicorn (one worker, uvloop and httptools, with the protocol and options
    of ``emall serve``: ``api.server``) in its own process, until the block ends.

    ``env`` must hold DATABASE_URL, MEILI_URL, MEILI_MASTER_KEY and EMALL_STATE_DIR. The load
    generator never shares the server's interpreter.
    """
    # api.server: uvicorn as `emall serve` runs it
    async with served("api.server", [factory], env, what="the API server", ready="/health") as s:
        yield s


# -- what an HTTP benchmark is given -----------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """wrk rounds: ``rounds`` measured rounds of ``seconds`` per side, after a warm-up."""

    rounds: int = 3
    seconds: int = 3
    warmup_seconds: int = 1


@dataclass
class Context:
    """One data size's world: its settings (concrete URLs), data set and running server."""

    settings: Settings
    dataset: Dataset
    server: Server
    processes: Processes
    timing: Timing
    workdir: Path  # request files and profiles
    data_key: str  # the RESULTS.md section
    profile_seconds: int = 5


# -- the report -------------------------------------------------------------------------------


def _figure(m: Measurement, unit: str) -> str:
    return f"{m.per_second:,.0f} {unit}" if unit else "—"


def _row(c: Comparison) -> str:
    met = "" if c.met is None else ("met" if c.met else "**not met**")
    ratio = f"{c.ratio:.2f}×"
    if c.ratio_kind == "latency":
        ratio += " (p99)"
    level = str(c.concurrency) if c.concurrency > 0 else "—"
    return (
        f"| {c.benchmark} | {level} | {_figure(c.subject, c.unit)} "
        f"| {c.subject.p50_ms:.2f} | {c.subject.p99_ms:.2f} "
        f"| {_figure(c.baseline, c.unit)} | {c.baseline.p50_ms:.2f} "
        f"| {c.baseline.p99_ms:.2f} | {ratio} | {c.target} | {met} |"
    )


_HEADER = (
    "| benchmark | concurrency | emall | p50 ms | p99 ms | raw baseline | p50 ms | p99 ms "
    "| ratio | target | met |"
)


def render(
    comparisons: list[Comparison],
    *,
    data_size: str,
    extra_machine: dict[str, str],
    sections: Mapping[str, str] | None = None,
    preamble: list[str] | None = None,
) -> str:
    """RESULTS.md. ``data_size`` describes comparisons without their own ``data_size``;
    ``sections`` maps a comparison's ``data_size`` key to its description."""
    info = machine() | extra_machine
    lines = [
        "# emall benchmark results",
        "",
        f"Written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bin/dev bench` "
        "(see [README.md](README.md) for the method).",
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in info.items()),
        "",
    ]
    if preamble:
        lines += [*preamble, ""]
    order: list[str] = []
    for c in comparisons:
        if c.data_size not in order:
            order.append(c.data_size)
    for key in order:
        title = (sections or {}).get(key, key) if key else data_size
        group = [c for c in comparisons if c.data_size == key]
        lines += [f"## Data: {title}", "", _HEADER, "|---|---|---|---|---|---|---|---|---|---|---|"]
        lines += [_row(c) for c in group]
        notes = [n for c in group for n in c.notes]
        if notes:
            lines += ["", *(f"- {n}" for n in dict.fromkeys(notes))]
        lines.append("")
    missed = [c for c in comparisons if c.met is False]
    if missed:
        lines += ["## Missed targets: where the time goes", ""]
        for c in missed:
            level = f", concurrency {c.concurrency}" if c.concurrency > 0 else ""
            lines += [
                f"### {c.benchmark}{level} ({c.data_size or data_size})",
                "",
                f"Target {c.target}: emall {c.ratio:.2f}×.",
                "",
            ]
            if c.profile:
                lines += [c.profile, ""]
    return "\n".join(lines).rstrip() + "\n"


def cpu_table(subject: Measurement, baseline: Measurement) -> str:
    """CPU µs per request of each component, emall's run beside the baseline's."""
    names = list(dict.fromkeys([*subject.cpu_us, *baseline.cpu_us]))
    if not names:
        return ""
    head = "| CPU µs per request | " + " | ".join(names) + " | total |"
    rule = "|---|" + "---|" * (len(names) + 1)
    rows = []
    for m in (subject, baseline):
        cells = [f"{m.cpu_us.get(n, 0.0):,.0f}" for n in names]
        rows.append(f"| {m.label} | " + " | ".join(cells) + f" | {sum(m.cpu_us.values()):,.0f} |")
    table = "\n".join([head, rule, *rows])
    if subject.machine is None or baseline.machine is None:
        return table
    return table + "\n\n" + machine_line(subject, baseline)


def unaccounted_us(m: Measurement) -> float:
    """CPU µs per request that the machine spent outside the accounted processes."""
    if m.machine is None or not m.requests:
        return 0.0
    return max(0.0, m.machine.busy_s * 1e6 / m.requests - sum(m.cpu_us.values()))


def machine_words(m: Measurement) -> str:
    """The whole machine over ``m``'s rounds, in words: unaccounted CPU and steal."""
    steal = m.machine.steal_share() if m.machine is not None else 0.0
    return (
        f"{unaccounted_us(m):,.0f} µs per request in other processes and the kernel, "
        f"steal {steal:.1%}"
    )


def machine_line(subject: Measurement, baseline: Measurement) -> str:
    """The whole machine over both sides' rounds."""
    return (
        "The whole machine over the same rounds (/proc/stat, beside the processes above): "
        f"{subject.label}: {machine_words(subject)}; {baseline.label}: {machine_words(baseline)}."
    )
