"""What every benchmark shares: timing, percentiles, the machine, and the results table.

A benchmark measures emall and a raw baseline (raw SQL, raw Meilisearch) in the same run, on
the same data, and reports both with their ratio. Figures are medians over repeated rounds;
latency percentiles are taken over every request of every round.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version


@dataclass
class Measurement:
    """Throughput (per second) and latencies (ms) of one thing at one concurrency."""

    label: str
    per_second: float
    p50_ms: float
    p99_ms: float


@dataclass
class Comparison:
    benchmark: str
    concurrency: int
    subject: Measurement
    baseline: Measurement
    unit: str = "req/s"
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
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


async def measure(
    label: str,
    operation: Callable[[int], Awaitable[None]],
    *,
    concurrency: int,
    requests_per_round: int,
    rounds: int = 5,
    warmup: int = 50,
) -> Measurement:
    """Run ``operation(i)`` ``requests_per_round`` times per round at a fixed concurrency."""
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
    )


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
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "litestar": version("litestar"),
        "asyncpg": version("asyncpg"),
        "msgspec": version("msgspec"),
    }


def render(comparisons: list[Comparison], *, data_size: str, extra_machine: dict[str, str]) -> str:
    info = machine() | extra_machine
    lines = [
        "# emall benchmark results",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()),
        f"Data size: {data_size}",
        "",
        "| benchmark | concurrency | emall | p50 ms | p99 ms | raw baseline | p50 ms | p99 ms | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        lines.append(
            f"| {c.benchmark} | {c.concurrency} | {c.subject.per_second:,.0f} {c.unit} "
            f"| {c.subject.p50_ms:.2f} | {c.subject.p99_ms:.2f} "
            f"| {c.baseline.per_second:,.0f} {c.unit} | {c.baseline.p50_ms:.2f} "
            f"| {c.baseline.p99_ms:.2f} | {c.ratio:.2f}× |"
        )
    notes = [n for c in comparisons for n in c.notes]
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    return "\n".join(lines) + "\n"
