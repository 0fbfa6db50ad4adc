"""Tables for the terminal and docs/performance.md, and the latency-vs-budget plot."""

from pathlib import Path


def budget_table(part: dict) -> str:
    lines = [
        f"N = {part['count']:,}, keep = {part['keep']}",
        "| k | 1 query median / p99 (ms) | x floor | full/k | 64 queries median / p99 (ms) | "
        "per query (ms) | full/k | floor (ms) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in part["budgets"]:
        single, batch = row["single"], row["batch64"]
        lines.append(
            f"| {row['k']} | {single['median_ms']:.2f} / {single['p99_ms']:.2f} | "
            f"{row['single_over_floor']:.2f} | {row['full_over_this_single']:.1f} | "
            f"{batch['median_ms']:.1f} / {batch['p99_ms']:.1f} | "
            f"{row['batch64_per_query_ms']:.3f} | "
            f"{row['full_over_this_batch64']:.1f} | {row['floor_ms']:.3f} |"
        )
    return "\n".join(lines)


def structure_table(part: dict) -> str:
    lines = [
        f"N = {part['count']:,}, k = {part['features']}, target recall@10 {part['target_recall']}",
        "| type | params | build (s) | memory (MiB) | recall@10 held-out | 1 query median (ms) | "
        "speed-up vs flat |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in part["types"]:
        params = ", ".join(f"{k}={v}" for k, v in row["params"].items()) or "-"
        lines.append(
            f"| {row['type']} | {params} | {row['build_s']} | {row['bytes'] / 2**20:.1f} | "
            f"{row['recall_at_10_held_out']:.3f} | {row['single']['median_ms']:.3f} | "
            f"{row['speedup_vs_flat']:.1f} |"
        )
    return "\n".join(lines)


def quantized_table(part: dict) -> str:
    lines = [
        f"N = {part['count']:,}, keep = {part['keep']}: 4-bit ladder against float, side by side; "
        f"ladder memory {part['ladder_bytes']['float'] / 2**20:.0f} -> "
        f"{part['ladder_bytes']['4bit'] / 2**20:.0f} MiB ({part['ladder_bytes_ratio']}x smaller)",
        "| k | shortlist | top 10 identical to exact | float median (ms) | 4-bit median (ms) | "
        "speed-up |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in part["budgets"]:
        lines.append(
            f"| {row['k']} | {row['shortlist']} | {row['identical_top10']:.4f} "
            f"({row['queries'] - row['differing_queries']}/{row['queries']}) | "
            f"{row['float']['median_ms']:.3f} | {row['4bit']['median_ms']:.3f} | "
            f"{row['speedup']:.2f} |"
        )
    return "\n".join(lines)


def rss_table(rows: list[dict]) -> str:
    lines = [
        "| index | ladder | RSS (MiB) | anonymous | file-backed (mapped) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        rss = row["rss_mib"]
        lines.append(
            f"| {row['index']} | {row['ladder']} | {rss['VmRSS']} | {rss['RssAnon']} | "
            f"{rss['RssFile']} |"
        )
    return "\n".join(lines)


def rerank_table(part: dict) -> str:
    lines = [
        f"N = {part['count']:,}, {part['queries']} leave-one-out queries, "
        f"relevant = {part['relevance']}",
        "| search | P@10 | 1 query median (ms) |",
        "| --- | --- | --- |",
    ]
    for run in part["runs"]:
        name = f"k={run['k_features']}"
        if run["rerank_features"]:
            name += f" -> rerank {run['shortlist']} at {run['rerank_features']}"
        precision = "-" if run["p_at_10"] is None else f"{run['p_at_10']:.3f}"
        lines.append(f"| {name} | {precision} | {run['single']['median_ms']:.3f} |")
    return "\n".join(lines)


def stage_table(part: dict) -> str:
    """Where a lone request's time goes, per budget (medians of each stage on its own)."""
    names = list(part["stages"][0]["stages_ms"])
    lines = [
        "A lone request, quiet machine: median ms per stage (Server-Timing) and at the client",
        "| k | " + " | ".join(names) + " | client |",
        "| --- " * (len(names) + 2) + "|",
    ]
    for row in part["stages"]:
        cells = " | ".join(f"{row['stages_ms'][name]:.3f}" for name in names)
        lines.append(f"| {row['k_features']} | {cells} | {row['client_ms']:.3f} |")
    return "\n".join(lines)


def soak_table(runs: list[dict]) -> str:
    lines = [
        "| machine | minutes | requests | errors | p99 (ms) | RSS at 2 min (MiB) | at the end | "
        "peak | growth after 2 min |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        lines.append(
            f"| {run['load']} | {run['seconds'] / 60:.1f} | {run['requests']:,} | "
            f"{run['errors']} | {run['p99_ms']} | {run['rss_at_2_min_mib']} | "
            f"{run['rss_end_mib']} | {run['rss_peak_mib']} | "
            f"{run['growth_after_2_min_pct']:+.1f}% |"
        )
    return "\n".join(lines)


def http_table(part: dict) -> str:
    lines = [
        f"POST /search, {part['duration_s']} s per row",
        "| embedding | machine | k | concurrency | requests | QPS | p50 (ms) | p99 (ms) | errors "
        "| service RSS (MiB) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in part["runs"]:
        lines.append(
            f"| {run['mode']} | {run['load']} | {run['k_features']} | {run['concurrency']} | "
            f"{run['requests']} | {run['qps']} | {run['p50_ms']} | {run['p99_ms']} | "
            f"{run['errors']} | {run['service_rss_mib']} |"
        )
    return "\n".join(lines)


def lone_request_table(part: dict) -> str:
    """A lone request (concurrency 1) beside the hog against quiet, per budget: medians over
    the alternating rounds."""
    lines = [
        f"A lone request, medians of {part['rounds']} alternating rounds",
        "| k | p50 quiet | p50 beside hog | ratio | p99 quiet | p99 beside hog | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in part["lone"]:
        quiet, busy = row["quiet"], row["beside_hog"]
        lines.append(
            f"| {row['k_features']} | {quiet['p50_ms']} | {busy['p50_ms']} | "
            f"{row['p50_ratio']:.2f}x | {quiet['p99_ms']} | {busy['p99_ms']} | "
            f"{row['p99_ratio']:.2f}x |"
        )
    return "\n".join(lines)


def memory_table(part: dict) -> str:
    lines = [
        f"N = {part['count']:,}",
        "| structure | features | MiB |",
        "| --- | --- | --- |",
    ]
    for held in part["memory"]:
        lines.append(f"| {held['structure']} | {held['features']} | {held['bytes'] / 2**20:.1f} |")
    return "\n".join(lines)


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
