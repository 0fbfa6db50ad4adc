"""Tables for the terminal and docs/performance.md, and the latency-vs-budget plot."""

from pathlib import Path


def markdown_table(header: list[str], rows: list[list], title: str | None = None) -> str:
    """A Markdown table (cells as given, formatted by the caller), with an optional line above."""
    lines = [title] if title else []
    lines.append("| " + " | ".join(header) + " |")
    lines.append("| " + " | ".join("---" for _ in header) + " |")
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def budget_table(part: dict) -> str:
    header = ["k", "1 query median / p99 (ms)", "x floor", "full/k"]
    header += ["64 queries median / p99 (ms)", "per query (ms)", "full/k", "floor (ms)"]
    rows = []
    for row in part["budgets"]:
        single, batch = row["single"], row["batch64"]
        rows.append([
            row["k"], f"{single['median_ms']:.2f} / {single['p99_ms']:.2f}",
            f"{row['single_over_floor']:.2f}", f"{row['full_over_this_single']:.1f}",
            f"{batch['median_ms']:.1f} / {batch['p99_ms']:.1f}",
            f"{row['batch64_per_query_ms']:.3f}", f"{row['full_over_this_batch64']:.1f}",
            f"{row['floor_ms']:.3f}",
        ])  # fmt: skip
    return markdown_table(header, rows, f"N = {part['count']:,}, keep = {part['keep']}")


def fast_budget_table(part: dict) -> str:
    header = ["way", "made in (s)", "memory (MiB)", "1 query median (ms)", "speed-up"]
    header += ["recall@10", "top 10 identical to exact"]
    rows = [
        [
            row["way"], row["made_in_s"], f"{row['bytes'] / 2**20:.1f}",
            f"{row['single']['median_ms']:.3f}", f"{row['speedup_vs_float']:.2f}",
            f"{row['recall_at_10']:.3f}", f"{row['identical_top10']:.3f}",
        ]
        for row in part["ways"]
    ]  # fmt: skip
    title = f"N = {part['count']:,}, k = {part['features']}: 4-bit shortlist {part['shortlist']}, "
    title += f"IVF nprobe {part['nprobe']}"
    return markdown_table(header, rows, title)


def quantized_table(part: dict) -> str:
    header = ["k", "shortlist", "top 10 identical to exact", "float median (ms)"]
    header += ["4-bit median (ms)", "speed-up", "float, all cores (ms)", "speed-up vs that"]
    rows = [
        [
            row["k"], row["shortlist"],
            f"{row['identical_top10']:.4f} "
            f"({row['queries'] - row['differing_queries']}/{row['queries']})",
            f"{row['float']['median_ms']:.3f}", f"{row['4bit']['median_ms']:.3f}",
            f"{row['speedup']:.2f}", f"{row['float_all_cores']['median_ms']:.3f}",
            f"{row['speedup_vs_all_cores']:.2f}",
        ]
        for row in part["budgets"]
    ]  # fmt: skip
    memory = part["ladder_bytes"]
    title = (
        f"N = {part['count']:,}, keep = {part['keep']}: 4-bit ladder against float, side by "
        f"side; ladder memory {memory['float'] / 2**20:.0f} -> {memory['4bit'] / 2**20:.0f} MiB "
        f"({part['ladder_bytes_ratio']}x smaller)"
    )
    return markdown_table(header, rows, title)


def rss_table(rows: list[dict]) -> str:
    header = ["index", "ladder", "RSS (MiB)", "anonymous", "file-backed (mapped)"]
    names = ("VmRSS", "RssAnon", "RssFile")
    cells = [
        [row["index"], row["ladder"], *(row["rss_mib"][name] for name in names)] for row in rows
    ]
    return markdown_table(header, cells)


def rerank_table(part: dict) -> str:
    rows = []
    for run in part["runs"]:
        name = f"k={run['k_features']}"
        if run["rerank_features"]:
            name += f" -> rerank {run['shortlist']} at {run['rerank_features']}"
        precision = "-" if run["p_at_10"] is None else f"{run['p_at_10']:.3f}"
        rows.append([name, precision, f"{run['single']['median_ms']:.3f}"])
    title = f"N = {part['count']:,}, {part['queries']} leave-one-out queries, "
    title += f"relevant = {part['relevance']}"
    return markdown_table(["search", "P@10", "1 query median (ms)"], rows, title)


def stage_table(part: dict) -> str:
    """Where a lone request's time goes, per budget (medians of each stage on its own)."""
    names = list(part["stages"][0]["stages_ms"])
    rows = []
    for row in part["stages"]:
        stages = [f"{row['stages_ms'][name]:.3f}" for name in names]
        rows.append([row["k_features"], *stages, f"{row['client_ms']:.3f}"])
    title = "A lone request, quiet machine: median ms per stage (Server-Timing) and at the client"
    return markdown_table(["k", *names, "client"], rows, title)


def soak_table(runs: list[dict]) -> str:
    header = ["machine", "minutes", "requests", "errors", "p99 (ms)", "RSS at 2 min (MiB)"]
    header += ["at the end", "peak", "growth after 2 min"]
    rows = [
        [
            run["load"], f"{run['seconds'] / 60:.1f}", f"{run['requests']:,}", run["errors"],
            run["p99_ms"], run["rss_at_2_min_mib"], run["rss_end_mib"], run["rss_peak_mib"],
            f"{run['growth_after_2_min_pct']:+.1f}%",
        ]
        for run in runs
    ]  # fmt: skip
    return markdown_table(header, rows)


def http_table(part: dict) -> str:
    header = ["service", "machine", "k", "concurrency", "requests", "QPS", "p50 (ms)"]
    header += ["p99 (ms)", "errors", "service RSS (MiB)"]
    keys = ["mode", "load", "k_features", "concurrency", "requests", "qps", "p50_ms", "p99_ms"]
    rows = [[run[key] for key in [*keys, "errors", "service_rss_mib"]] for run in part["runs"]]
    return markdown_table(header, rows, f"POST /search, {part['duration_s']} s per row")


def concurrency_gain_table(part: dict) -> str:
    """QPS at the highest concurrency over QPS of a lone request, per service and budget."""
    header = ["service", "k", "QPS, 1 client", "QPS, most clients", "clients", "gain"]
    rows = [
        [
            row["mode"], row["k_features"], row["qps_low"], row["qps_high"], row["high"],
            f"{row['gain']:.2f}x",
        ]
        for row in part.get("concurrency_gain", [])
    ]  # fmt: skip
    return markdown_table(header, rows, "Quiet machine, medians of the rounds")


def lone_request_table(part: dict) -> str:
    """A lone request (concurrency 1) beside the hog against quiet, per budget: medians over
    the alternating rounds."""
    header = ["k", "p50 quiet", "p50 beside hog", "ratio", "p99 quiet", "p99 beside hog"]
    header += ["ratio"]
    rows = [
        [
            row["k_features"], row["quiet"]["p50_ms"], row["beside_hog"]["p50_ms"],
            f"{row['p50_ratio']:.2f}x", row["quiet"]["p99_ms"], row["beside_hog"]["p99_ms"],
            f"{row['p99_ratio']:.2f}x",
        ]
        for row in part["lone"]
    ]  # fmt: skip
    return markdown_table(header, rows, f"A lone request, medians of {part['rounds']} rounds")


def memory_table(part: dict) -> str:
    rows = [
        [held["structure"], held["features"], f"{held['bytes'] / 2**20:.1f}"]
        for held in part["memory"]
    ]
    return markdown_table(["structure", "features", "MiB"], rows, f"N = {part['count']:,}")


def plot_latency(search_parts: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for part in search_parts:
        ks = [row["k"] for row in part["budgets"]]
        label = f"N={part['count']:,}"
        axes.plot(
            ks, [r["single"]["median_ms"] for r in part["budgets"]], "o-", label=f"{label}, 1 query"
        )
        axes.plot(
            ks,
            [r["batch64_per_query_ms"] for r in part["budgets"]],
            "s--",
            label=f"{label}, per query in a batch of 64",
        )
        axes.plot(ks, [r["floor_ms"] for r in part["budgets"]], ":", color="grey")
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xlabel("feature budget k")
    axes.set_ylabel("search time (ms, median)")
    axes.set_title("Exact search time vs budget (dotted: memory-bandwidth floor)")
    axes.legend(fontsize=8)
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
