"""How many threads a generation should use: the cores that are free right now.

A decode step splits each matrix product between threads and then waits for the
slowest one. If another process keeps a core busy, the thread that lands there
runs only in the time slices the scheduler gives it, and every step waits for it:
on 2 cores with one busy neighbour, 2 threads decoded at a quarter of the quiet
speed while 1 thread keeps about half (bench/results_load.md). So the thread
count follows the cores that other processes leave free:

    cores we may use   os.sched_getaffinity(0), capped by a cgroup CPU quota
    busy by others     per-CPU busy time from /proc/stat over a short window,
                       minus this process's own CPU time (/proc/self/stat)
    threads            the usable cores minus the busy ones (a core counts as
                       free when others use less than a quarter of it), at least 1

`choose_threads()` samples for `interval` seconds before a generation starts.
`ThreadGovernor` keeps checking while it decodes (every `period` seconds, from the
/proc counters alone: no sleeping), so a neighbour that starts or stops halfway
through a long answer changes the thread count within about half a second.
Without /proc (not Linux), it falls back to the usable cores.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

FREE_BELOW = 0.25  # a core another process uses less than this fraction of counts as free


def usable_cores() -> list[int]:
    """CPUs this process may run on, capped by a cgroup v2 CPU quota (containers)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = list(range(os.cpu_count() or 1))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = cpus[: max(1, math.ceil(int(quota) / int(period)))]
    except (OSError, ValueError):
        pass
    return cpus


def _snapshot(cpus: list[int]) -> tuple[int, int, int] | None:
    """(busy ticks, all ticks) summed over `cpus` from /proc/stat, and this process's own ticks."""
    try:
        busy = total = 0
        wanted = {f"cpu{c}" for c in cpus}
        for line in Path("/proc/stat").read_text().splitlines():
            name, *fields = line.split()
            if name in wanted:
                ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
                total += sum(ticks)
                busy += sum(ticks) - ticks[3] - ticks[4]
        stat = Path("/proc/self/stat").read_text()
        own_fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        own = int(own_fields[11]) + int(own_fields[12])  # utime + stime, same clock ticks as /proc/stat
        return busy, total, own
    except (OSError, ValueError, IndexError):
        return None


def _free(before, after, n: int) -> int | None:
    """Free cores between two snapshots: n minus what other processes used, at least 1."""
    if before is None or after is None:
        return None
    elapsed = (after[1] - before[1]) / n  # ticks per CPU
    if elapsed <= 0:
        return None
    others = max(0, (after[0] - before[0]) - (after[2] - before[2])) / elapsed  # cores' worth used by others
    return max(1, min(n, n - math.ceil(others - FREE_BELOW)))


def choose_threads(max_threads: int | None = None, interval: float = 0.05) -> int:
    """Threads for the next generation: the usable cores that others leave free (>= 1).

    Sleeps `interval` seconds to measure (the kernel counts CPU time in 10 ms ticks,
    so shorter windows see too few of them).
    """
    cpus = usable_cores()
    limit = min(len(cpus), max_threads or len(cpus))
    before = _snapshot(cpus)
    time.sleep(interval)
    free = _free(before, _snapshot(cpus), len(cpus))
    return min(limit, free if free is not None else limit)


class ThreadGovernor:
    """The thread count for a running generation, re-measured every `period` seconds.

    governor = ThreadGovernor("auto")    # or a fixed count: ThreadGovernor(2)
    for each step: n = governor.threads()  (cheap: reads /proc at most every `period` s)
    """

    def __init__(self, threads="auto", period: float = 0.5, interval: float = 0.05):
        self.fixed = None if threads in (None, "auto") else max(1, int(threads))
        self.period = period
        self.cpus = usable_cores()
        self.history: list[int] = []  # each decision, for timings and tests
        self._current = self.fixed or choose_threads(interval=interval)
        self.history.append(self._current)
        self._last = (time.perf_counter(), _snapshot(self.cpus))

    def threads(self) -> int:
        if self.fixed is not None:
            return self.fixed
        now = time.perf_counter()
        if now - self._last[0] >= self.period:
            snap = _snapshot(self.cpus)
            free = _free(self._last[1], snap, len(self.cpus))
            self._last = (now, snap)
            if free is not None and free != self._current:
                self._current = free
                self.history.append(free)
        return self._current
