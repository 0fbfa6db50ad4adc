"""A long run under 32-way load, resident memory sampled every 10 s: does the service level off?

wrk runs for the whole soak in its own process while this one reads the service's VmRSS from
/proc; the same soak runs on a quiet machine and beside a nice-19 CPU hog. What counts is the
growth after the first two minutes (allocator arenas, thread stacks and caches have filled by
then): a leak keeps climbing, a working set does not.
"""

import subprocess
import time
from contextlib import nullcontext
from pathlib import Path

from bench.http import (
    WRK_SCRIPT,
    cpu_hog,
    indexed_ids,
    resident_mib,
    running_service,
    wrk_summary,
)

SETTLED_S = 120


def bench_soak(
    index: Path, gallery: Path, minutes: float, *, concurrency: int = 32, interval: float = 10
) -> list[dict]:
    """One soak per machine state: RSS curve, requests, errors and growth after two minutes."""
    images = [str(gallery / item) for item in indexed_ids(index, 256)]
    seconds = max(1, round(minutes * 60))
    runs = []
    for load in ("quiet", "beside a CPU hog"):
        with running_service(index, {}) as (url, pid), (
            cpu_hog() if load != "quiet" else nullcontext()
        ):  # fmt: skip
            command = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "30s"]
            command += ["-s", str(WRK_SCRIPT), f"{url}/search?k_features=16", "--", *images]
            curve = [{"s": 0, "rss_mib": resident_mib(pid)}]
            started = time.monotonic()
            with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as load_run:
                while load_run.poll() is None:
                    time.sleep(max(0.0, started + len(curve) * interval - time.monotonic()))
                    if load_run.poll() is None:
                        elapsed = round(time.monotonic() - started)
                        curve.append({"s": elapsed, "rss_mib": resident_mib(pid)})
                output = load_run.stdout.read()
            summary = wrk_summary(output)
        runs.append({"load": load, "concurrency": concurrency, **summary, "rss": curve})
        runs[-1].update(_growth(curve))
        print(
            f"  soak {load}: {summary['requests']} requests, {summary['errors']} errors, "
            f"RSS {runs[-1]['rss_at_2_min_mib']} -> {runs[-1]['rss_end_mib']} MiB after two "
            f"minutes ({runs[-1]['growth_after_2_min_pct']:+.1f}%)",
            flush=True,
        )
    return runs


def _growth(curve: list[dict]) -> dict:
    settled = next((point for point in curve if point["s"] >= SETTLED_S), curve[-1])
    end = curve[-1]
    return {
        "rss_at_2_min_mib": settled["rss_mib"],
        "rss_end_mib": end["rss_mib"],
        "rss_peak_mib": max(point["rss_mib"] for point in curve),
        "growth_after_2_min_pct": round(100 * (end["rss_mib"] / settled["rss_mib"] - 1), 2),
    }
