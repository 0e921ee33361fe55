"""The run's chart: for each rate step, the throughput the pipeline drained against its p50 and p99 latency
(intake to pick task, and intake to delivered), over Kafka, over HTTP and as Shopify's webhook, with the burst's
drain rate and the same run's anchors drawn in as vertical lines (log scales: the anchors sit orders of magnitude to
the right)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from .measures import Spread
from .results import Phase, Run

SERIES = (
    ("kafka", "tab:blue", "over Kafka"),
    ("http", "tab:orange", "over HTTP"),
    ("shopify", "tab:brown", "as Shopify webhook"),
)
ANCHOR_STYLES = ("tab:green", "tab:olive", "tab:purple")


def _points(phases: list[Phase], kind: str, which: str) -> tuple[list[float], list[float], list[float]]:
    xs, p50s, p99s = [], [], []
    for phase in phases:
        found: Spread | None = getattr(phase, which)
        if phase.kind == kind and phase.throughput and found:
            xs.append(phase.throughput)
            p50s.append(found.p50)
            p99s.append(found.p99)
    return xs, p50s, p99s


def pyplot() -> Any:
    """matplotlib comes with the bench extra only (make bench installs it): imported when a chart is drawn."""
    matplotlib = importlib.import_module("matplotlib")
    matplotlib.use("Agg")  # files only, no display
    return importlib.import_module("matplotlib.pyplot")


def draw(run: Run, path: Path) -> None:
    plt = pyplot()
    ticker = importlib.import_module("matplotlib.ticker")
    figure, axes = plt.subplots(1, 2, figsize=(13, 6.5), sharey=True)
    panels = (("to_pick", "intake → pick task"), ("to_delivered", "intake → delivered"))
    for ax, (which, title) in zip(axes, panels, strict=True):
        for kind, colour, label in SERIES:
            xs, p50s, p99s = _points(run.phases, kind, which)
            if xs:
                ax.plot(xs, p50s, "o-", color=colour, label=f"p50 {label}")
                ax.plot(xs, p99s, "s--", color=colour, label=f"p99 {label}")
                offered = [p.offered_rate for p in run.phases if p.kind == kind and p.throughput and getattr(p, which)]
                for x, y, rate in zip(xs, p99s, offered, strict=True):
                    ax.annotate(f"{rate:g}/s", (x, y), textcoords="offset points", xytext=(4, 6), fontsize=7)
        burst = next((p for p in run.phases if p.kind == "burst" and not p.profiled and p.throughput), None)
        if burst and burst.throughput:
            ax.axvline(
                burst.throughput, color="tab:red", linestyle=":", label=f"burst drained {burst.throughput:.0f}/s"
            )
        for anchor, colour in zip(run.anchors, ANCHOR_STYLES, strict=False):
            ax.axvline(anchor.figure, color=colour, linestyle="-.", label=f"{anchor.what}: {anchor.figure:,.0f}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda y, _: f"{y:g} s"))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _: f"{x:,.0f}"))
        ax.set_xlabel("throughput drained (orders/s; anchors: tps, records/s)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("latency from due time (s)")
    handles, labels = axes[1].get_legend_handles_labels()
    figure.legend(handles, labels, fontsize=8, loc="lower center", ncol=3, frameon=False)
    load = ", ".join(f"{x:.1f}" for x in run.load_before)
    figure.suptitle(f"{run.run_id}: {run.machine.get('cpu', '')}; load average before {load}", fontsize=10)
    figure.tight_layout(rect=(0, 0.12, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)
