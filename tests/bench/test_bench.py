import json

import pytest

from bench.__main__ import main
from bench.batch import bench_batch

QUIET, HOG = "quiet", "beside a CPU hog"
pytestmark = pytest.mark.slow  # the benchmarks end to end, with Ray


def test_the_benchmark_runs_end_to_end_at_a_tiny_size(gallery, tmp_path, capsys):
    """Every part runs and saves its numbers; the sizes keep it to seconds (no timing checks)."""
    out = tmp_path / "docs"
    arguments = ["--gallery", str(gallery), "--synthetic", "3000", "--repeats", "5"]
    arguments += [
        "--rerank-queries",
        "20",
        "--duration",
        "1",
        "--concurrency",
        "1",
        "--rounds",
        "1",
    ]
    assert main([*arguments, "--workers", "0", "--out", str(out)]) == 0
    results = json.loads((out / "performance.json").read_text())
    assert results["machine"]["cores"] >= 1 and results["bandwidth_gbs"] > 0
    assert results["build"]["images"] == 25 and results["build"]["peak_rss_mib"] > 0
    real, synthetic = results["search"]
    assert real["count"] == 23 and synthetic["count"] == 3000
    assert [row["k"] for row in synthetic["budgets"]] == [4, 8, 16, 32, 64, 128]
    assert all(row["single"]["median_ms"] > 0 for row in synthetic["budgets"])
    assert {held["features"] for held in synthetic["memory"]} >= {1, 64, 128}
    quantized = results["quantized"]
    assert [row["k"] for row in quantized["budgets"]] == [16, 32, 64, 128]
    assert all(0 <= row["identical_top10"] <= 1 for row in quantized["budgets"])
    assert quantized["ladder_bytes"]["4bit"] < quantized["ladder_bytes"]["float"]
    memory = {(row["index"], row["ladder"]): row["rss_mib"] for row in results["memory"]}
    assert set(memory) == {("flat", "float"), ("flat", "4bit")}
    assert all(rss["VmRSS"] >= rss["RssAnon"] > 0 for rss in memory.values())
    assert [part["count"] for part in results["fast_budgets"]] == [23, 3000]
    ways = {row["way"]: row for row in results["fast_budgets"][1]["ways"]}
    assert set(ways) == {"float scan", "4-bit shortlist", "ivf"}
    assert ways["float scan"]["recall_at_10"] == ways["float scan"]["identical_top10"] == 1.0
    assert all(0 < row["recall_at_10"] <= 1 for row in ways.values())
    assert ways["4-bit shortlist"]["bytes"] < ways["float scan"]["bytes"]
    pairs = [run for run in results["rerank"]["runs"] if run["rerank_features"]]
    assert pairs and all(run["p_at_10"] is not None for run in results["rerank"]["runs"])
    runs = results["http"]["runs"]
    ladder = [1, 2, 4, 8, 16, 32, 64, 128]
    assert [(r["mode"], r["load"], r["k_features"], r["round"]) for r in runs] == [
        *[
            ("one worker", load, k, round_number)
            for k in ladder
            for round_number, order in enumerate([(QUIET, HOG)])
            for load in order
        ],
        ("two workers", QUIET, 16, 0),
    ]
    assert [row["k_features"] for row in results["http"]["lone"]] == ladder
    assert all(r["requests"] > 0 and r["errors"] == 0 for r in runs)
    split = results["http"]["stages"]
    assert [row["k_features"] for row in split] == [16, 128]
    assert all({"parse", "forward", "search", "json"} <= set(row["stages_ms"]) for row in split)
    assert (out / "performance-latency-vs-k.png").stat().st_size > 0
    assert "| k | 1 query median" in capsys.readouterr().out


def test_the_scaling_benchmark_runs_at_a_tiny_size(gallery, tmp_path, local_ray):
    from bench.scaling import main as scaling

    out = tmp_path / "docs"
    arguments = ["--gallery", str(gallery), "--keep", "32", "--structure-rows", "2000"]
    arguments += ["--workers", "0", "--actors", "2"]
    # The cluster itself is measured by the full run; its start-up is tested in test_cluster.
    arguments += ["--shards", "--concurrency", "2", "--duration", "1"]
    assert scaling([*arguments, "--out", str(out)]) == 0
    results = json.loads((out / "scaling.json").read_text())
    engines = [
        (run["engine"], run.get("actors", run.get("decoding_processes")))
        for run in results["embedding"]
    ]
    assert engines == [("local", 0), ("ray", 2)]
    assert all(run["images"] == 25 and run["images_per_second"] > 0 for run in results["embedding"])
    sizes = {
        (row["structure"], row["k"]): row["bytes_per_image"] for row in results["bytes_per_image"]
    }
    assert sizes[("flat", 16)] == 64.0 and sizes[("flat", 32)] == 128.0  # 4 bytes a feature
    assert sizes[("4-bit codes", 16)] == 8.0 and sizes[("4-bit codes", 32)] == 16.0  # half a byte
    serving = [(row["setup"], row["shards"], row["concurrency"]) for row in results["serving"]]
    assert serving == [("one service", 1, 2)]
    assert all(row["requests"] > 0 and row["errors"] == 0 for row in results["serving"])
    (lone,) = results["lone_request_split"]
    assert (lone["setup"], lone["k_features"]) == ("one service", 16)
    assert {"parse", "forward", "search", "json"} <= set(lone["stages_ms"])


def test_the_soak_records_a_memory_curve_quiet_and_beside_a_hog(index_dir, gallery):
    from bench.report import soak_table
    from bench.soak import bench_soak

    runs = bench_soak(index_dir, gallery, minutes=4 / 60, concurrency=4, interval=1)
    assert [run["load"] for run in runs] == ["quiet", "beside a CPU hog"]
    for run in runs:
        assert run["requests"] > 0 and run["errors"] == 0
        seconds = [point["s"] for point in run["rss"]]
        assert seconds[0] == 0 and len(seconds) >= 3 and seconds == sorted(seconds)
        assert all(point["rss_mib"] > 0 for point in run["rss"])
        assert run["rss_peak_mib"] >= run["rss_end_mib"]
    assert "| beside a CPU hog | 0.1 |" in soak_table(runs)


def test_versus_runs_an_earlier_commit_beside_this_checkout(gallery, tmp_path):
    from bench.versus import main as versus

    out = tmp_path / "docs"
    arguments = ["--baseline", "HEAD", "--gallery", str(gallery), "--rounds", "2"]
    assert versus([*arguments, "--duration", "1", "--out", str(out)]) == 0
    part = json.loads((out / "versus.json").read_text())["versus"]
    assert [(run["round"], run["version"], run["concurrency"]) for run in part["runs"]] == [
        (0, "HEAD", 1), (0, "HEAD", 32), (0, "this checkout", 1), (0, "this checkout", 32),
        (1, "this checkout", 1), (1, "this checkout", 32), (1, "HEAD", 1), (1, "HEAD", 32),
    ]  # fmt: skip
    assert all(run["requests"] > 0 and run["errors"] == 0 for run in part["runs"])
    assert set(part["summary"]) == {"HEAD", "this checkout"}


def test_the_batch_benchmark_compares_both_ways_on_the_same_images(index_dir, gallery):
    result = bench_batch(index_dir, gallery, images=8, batch_size=4, k_features=8, rounds=2)
    assert result["images"] == 8 and len(result["images_per_second"]["batch"]) == 2
    medians = result["median_images_per_second"]
    assert result["batch_over_one_at_a_time"] == pytest.approx(
        medians["batch"] / medians["one at a time"], abs=0.01
    )


def test_concurrency_gain_is_the_quiet_median_qps_ratio():
    from bench.http import concurrency_gain

    def run(mode, load, concurrency, qps):
        return {"mode": mode, "load": load, "k_features": 16, "concurrency": concurrency} | {
            "qps": qps
        }

    runs = [
        run("one worker", QUIET, 1, 100), run("one worker", QUIET, 1, 120),
        run("one worker", QUIET, 32, 300), run("one worker", QUIET, 32, 260),
        run("one worker", HOG, 32, 10),  # beside the hog: not counted
        run("two workers", QUIET, 1, 100), run("two workers", QUIET, 32, 250),
    ]  # fmt: skip
    assert concurrency_gain(runs) == [
        {"mode": "one worker", "k_features": 16, "low": 1, "high": 32}
        | {"qps_low": 110, "qps_high": 280, "gain": 2.55},
        {"mode": "two workers", "k_features": 16, "low": 1, "high": 32}
        | {"qps_low": 100, "qps_high": 250, "gain": 2.5},
    ]


def test_the_startup_benchmark_times_a_service_on_a_written_index(tmp_path):
    from bench.startup import main as startup_main

    out = tmp_path / "docs"
    arguments = ["--count", "2000", "--keep", "32", "--starts", "1", "--out", str(out)]
    assert startup_main(arguments) == 0
    results = json.loads((out / "startup.json").read_text())
    assert results["count"] == 2000 and len(results["startup_s"]) == 1
    assert results["startup_s"][0] > 0 and results["index_written_s"] >= 0
