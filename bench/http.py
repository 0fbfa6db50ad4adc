"""End to end over HTTP: a real `python -m service` on 127.0.0.1, loaded by wrk (Debian `wrk`)."""

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import httpx

WRK_SCRIPT = Path(__file__).with_name("search.lua")
MODES = {"one worker": {}, "two workers": {"TRICL_WORKERS": "2"}}


def indexed_ids(index: Path, count: int) -> list[str]:
    """The first `count` ids of an index: images it could read, so no 400s in the counts."""
    from search.index_dir import IDS_FILE  # loads FAISS, which --help should not wait for

    return (index / IDS_FILE).read_text(encoding="utf-8").splitlines()[:count]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_service(index: Path, environment: dict[str, str], *, code: Path | None = None):
    """Start the service on a free loopback port; yields (url, pid) once /health answers.
    `code`: a checkout whose `service` package runs instead of this one."""
    with running_services([index], environment, code=code) as [(url, pid)]:
        yield url, pid


@contextmanager
def running_services(indexes: list[Path], environment: dict[str, str], *, code: Path | None = None):
    """One service per index, started together; yields [(url, pid)] once all are healthy."""
    started = []
    try:
        for index in indexes:
            port = free_port()
            env = {**os.environ, **environment, "TRICL_INDEX": str(index), "TRICL_PORT": str(port)}
            process = subprocess.Popen(
                [sys.executable, "-m", "service", "--index", str(index), "--port", str(port)],
                env=env,
                cwd=code,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            started.append((process, f"http://127.0.0.1:{port}"))
        for process, url in started:
            wait_healthy(url, process=process)
        yield [(url, process.pid) for process, url in started]
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            process.wait(timeout=30)


@contextmanager
def running_cluster(
    shards: Path, *, replicas: int = 1, address: str | None = None, env: dict | None = None
):
    """`python -m service.cluster` over `shards`, on the Ray cluster at `address` (default:
    its own Ray on this machine), with `env` added to its environment (TRICL_ settings);
    yields its URL once /health answers. It may take 15 minutes:
    beside two normal-priority CPU hogs on 2 cores the test cluster took 7 (45 s when quiet)."""
    port = free_port()
    command = [sys.executable, "-m", "service.cluster", "--shards", str(shards)]
    command += ["--replicas", str(replicas), "--port", str(port)]
    command += ["--address", address] if address else []
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        url = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_healthy(url, process=process, timeout=900)
            except RuntimeError as error:  # with the command's last words: why it did not start
                log.seek(0)
                raise RuntimeError(f"{error}; it said:\n{log.read()[-3000:].decode()}") from None
            yield url
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)


def wait_healthy(
    url: str, *, process: subprocess.Popen | None = None, timeout: float = 120
) -> None:
    """Return once GET {url}/health answers 200; raise if `process` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url} exited with code {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url}/health did not answer 200 within {timeout:.0f} s")
        time.sleep(0.2)


def resident_mib(pid: int) -> float:
    """Resident memory of a process and its children (a service's worker processes; pages of
    the memory-mapped index they share count once per process)."""
    total = 0
    for member in [pid, *_descendants(pid)]:
        try:
            with open(f"/proc/{member}/status") as stream:
                total += next(int(line.split()[1]) for line in stream if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue  # gone meanwhile, or a zombie without memory
    return round(total / 1024, 1) if total else float("nan")


def _descendants(pid: int) -> list[int]:
    listed = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    children = [int(child) for child in listed.split()]
    return children + [grandchild for child in children for grandchild in _descendants(child)]


@contextmanager
def cpu_hog():
    """One busy loop per core at the lowest priority (nice 19): other work sharing the cores."""
    command = ["nice", "-n", "19", sys.executable, "-c", "while True: pass"]
    hogs = [subprocess.Popen(command) for _ in range(len(os.sched_getaffinity(0)))]
    try:
        time.sleep(0.5)  # started and spinning before anything is measured
        yield
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()


def bench_http(
    index: Path,
    gallery: Path,
    concurrencies: list[int],
    duration: float,
    budgets: list[int],
    *,
    hog: bool = True,
    rounds: int = 2,
) -> dict:
    """QPS, p50, p99 and errors at every budget and concurrency, on a quiet machine and beside
    a nice-19 CPU hog; and at the middle budget with two worker processes.

    Quiet and hog runs alternate, `rounds` times each and the order flipped every round, each
    run `duration / rounds` long: the machine's own drift (other tenants, frequency) then falls
    on both sides of every comparison instead of on whichever ran later.
    """
    images = [str(gallery / item) for item in indexed_ids(index, 256)]
    middle = budgets[len(budgets) // 2]
    runs = []
    loads = ["quiet", "beside a CPU hog"] if hog else ["quiet"]
    seconds = duration / rounds
    for mode, environment in MODES.items():
        with running_service(index, environment) as (url, pid):
            wrk_load(url, images, 4, min(3.0, duration), middle)  # warm-up
            rss = resident_mib(pid)
            if mode == "one worker":
                lone = max(30, round(30 * duration))  # 300 requests at the default 10 s
                stages = stage_split(url, images, [middle, budgets[-1]], requests=lone)
            for k_features in budgets if mode == "one worker" else [middle]:
                for concurrency in concurrencies:
                    for round_number in range(rounds):
                        order = loads if mode == "one worker" else ["quiet"]
                        for load in order if round_number % 2 == 0 else order[::-1]:
                            with cpu_hog() if load != "quiet" else nullcontext():
                                result = wrk_load(url, images, concurrency, seconds, k_features)
                            run = {"mode": mode, "load": load, "k_features": k_features}
                            run |= {"round": round_number, "service_rss_mib": rss}
                            runs.append(run | result)
                            print(
                                f"  {mode}, {load}, k={k_features:>3}, concurrency "
                                f"{concurrency:>2}: {result['qps']} QPS, p50 {result['p50_ms']} "
                                f"ms, p99 {result['p99_ms']} ms",
                                flush=True,
                            )
    return {
        "budgets": budgets,
        "duration_s": duration,
        "rounds": rounds,
        "runs": runs,
        "lone": lone_request_summary(runs, budgets),
        "concurrency_gain": concurrency_gain(runs),
        "stages": stages,
    }


def lone_request_summary(runs: list[dict], budgets: list[int]) -> list[dict]:
    """Per budget, medians over rounds of a lone request's p50 and p99, quiet and beside the
    hog, and their ratios (the goal: p50 within 1.2x and p99 within 1.5x of quiet)."""
    rows = []
    for k in budgets:
        medians = {}
        for load in ("quiet", "beside a CPU hog"):
            mine = [
                run
                for run in runs
                if run["mode"] == "one worker" and run["concurrency"] == 1
                and run["k_features"] == k and run["load"] == load
            ]  # fmt: skip
            if not mine:
                break
            medians[load] = {
                key: round(statistics.median(run[key] for run in mine), 2)
                for key in ("p50_ms", "p99_ms")
            }
        if len(medians) == 2:
            quiet, busy = medians["quiet"], medians["beside a CPU hog"]
            rows.append(
                {"k_features": k, "quiet": quiet, "beside_hog": busy}
                | {"p50_ratio": round(busy["p50_ms"] / quiet["p50_ms"], 2)}
                | {"p99_ratio": round(busy["p99_ms"] / quiet["p99_ms"], 2)}
            )
    return rows


def concurrency_gain(runs: list[dict]) -> list[dict]:
    """Per service mode and budget, quiet: median QPS at the highest concurrency over median
    QPS at concurrency 1 (the goal: 2.5x at 32)."""
    rows = []
    quiet = [run for run in runs if run["load"] == "quiet"]
    for mode, k in sorted({(run["mode"], run["k_features"]) for run in quiet}):
        mine = [run for run in quiet if run["mode"] == mode and run["k_features"] == k]
        levels = sorted({run["concurrency"] for run in mine})
        qps = {
            level: statistics.median(run["qps"] for run in mine if run["concurrency"] == level)
            for level in levels
        }
        if len(levels) > 1 and qps[levels[0]] > 0:
            rows.append(
                {"mode": mode, "k_features": k, "low": levels[0], "high": levels[-1]}
                | {"qps_low": round(qps[levels[0]], 1), "qps_high": round(qps[levels[-1]], 1)}
                | {"gain": round(qps[levels[-1]] / qps[levels[0]], 2)}
            )
    return rows


def stage_split(url: str, images: list[str], budgets: list[int], requests: int = 300) -> list[dict]:
    """Median milliseconds per stage of a lone request (one at a time, quiet), from the
    service's Server-Timing header, next to the median the client measured end to end."""
    payloads = [Path(image).read_bytes() for image in images]
    split = []
    with httpx.Client(timeout=30) as client:
        for k_features in budgets:
            stages: dict[str, list[float]] = {}
            client_ms = []
            for i in range(requests):
                started = time.perf_counter()
                response = client.post(
                    f"{url}/search",
                    params={"k_features": k_features},
                    files={"file": ("q.png", payloads[i % len(payloads)], "image/png")},
                )
                client_ms.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                for entry in response.headers["server-timing"].split(", "):
                    name, duration = entry.split(";dur=")
                    stages.setdefault(name, []).append(float(duration))
            medians = {name: round(statistics.median(values), 3) for name, values in stages.items()}
            client_median = round(statistics.median(client_ms), 3)
            split.append(
                {"k_features": k_features, "stages_ms": medians, "client_ms": client_median}
            )
    return split


def wrk_load(url: str, images: list[str], concurrency: int, duration: float, k: int) -> dict:
    """One wrk run (a separate process, one thread, C): it costs the 2-core machine far less
    CPU per request than a Python client, so the service gets the cores."""
    command = [
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "30s",
    ]
    command += ["-s", str(WRK_SCRIPT), f"{url}/search?k_features={k}&top_k=10", "--", *images]
    finished = subprocess.run(command, capture_output=True, text=True, check=True)
    return {"concurrency": concurrency, **wrk_summary(finished.stdout)}


def wrk_summary(output: str) -> dict:
    """Requests, errors, QPS, p50 and p99 from the JSON line search.lua prints last."""
    summary = json.loads(output.strip().splitlines()[-1])
    seconds = summary["duration_us"] / 1e6
    errors = summary["socket_errors"] + summary["status_errors"] + summary["timeouts"]
    return {
        "seconds": round(seconds, 2),
        "requests": summary["requests"],
        "errors": errors,
        "qps": round((summary["requests"] - errors) / seconds, 1),
        "p50_ms": round(summary["p50_us"] / 1000, 2),
        "p99_ms": round(summary["p99_us"] / 1000, 2),
        "shed": summary["shed"],  # 503 answers, among the errors
        "shed_without_retry_after": summary["shed_without_retry_after"],
    }
