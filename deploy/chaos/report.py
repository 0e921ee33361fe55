"""The verdict of a chaos run: a table on the terminal (faults by kind, orders by final state, every invariant with
its count and violations, the seed, the duration, the command that replays it) and the same as a JSON report."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .faults import Injected
from .invariants import Check


@dataclass
class Report:
    seed: int
    run: str
    profile: dict[str, Any]
    faults: list[Injected]
    checks: list[Check]
    load: dict[str, Any]
    healing: list[str]
    quiet: dict[str, Any]
    durations: dict[str, float] = field(default_factory=dict)

    @property
    def injected(self) -> int:
        return sum(f.injected for f in self.faults)

    @property
    def problems(self) -> list[str]:
        """What makes the run fail besides violated invariants: a run that did less than it claims proves less."""
        found = []
        if self.injected < self.profile["faults"]:
            found.append(f"only {self.injected} of {self.profile['faults']} faults injected")
        if not self.quiet.get("reached"):
            found.append(f"the pipeline did not settle: still pending {self.quiet.get('last')}")
        found += [f"load: {what}" for what in self.load.get("unanswered", [])]
        found += [f"healing: {what}" for what in self.healing if what.startswith("NOT")]
        return found

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks) and not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "run": self.run,
            "passed": self.passed,
            "replay": replay_command(self.seed, self.profile),
            "profile": self.profile,
            "durations_seconds": self.durations,
            "faults_by_kind": dict(sorted(Counter(f.fault.kind for f in self.faults if f.injected).items())),
            "faults": [f.as_json() for f in self.faults],
            "load": self.load,
            "healing": self.healing,
            "quiescence": self.quiet,
            "invariants": [c.as_json() for c in self.checks],
            "problems": self.problems,
        }

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"chaos-{self.seed}-{self.run}.json"
        path.write_text(json.dumps(self.as_json(), indent=2, default=str) + "\n")
        return path

    def table(self) -> str:
        lines = ["", "=" * 100, f"chaos run {self.run}, seed {self.seed}"]
        kinds = Counter(f.fault.kind for f in self.faults if f.injected)
        skipped = [f for f in self.faults if not f.injected]
        lines.append(
            f"faults injected: {self.injected} of {len(self.faults)}  ("
            + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
            + ")"
            + (f"; skipped {len(skipped)}" if skipped else "")
        )
        orders = next((c for c in self.checks if c.name == "orders"), None)
        if orders is not None:
            shown = ", ".join(f"{k} {n}" for k, n in sorted(orders.counts.items()))
            lines.append(f"orders by final state: {shown}  (accepted {orders.checked})")
        load = self.load
        lines.append(
            f"load: {load.get('orders')} orders ("
            + ", ".join(f"{k} {n}" for k, n in sorted(load.get("by_scenario", {}).items()))
            + "); intake "
            + ", ".join(f"{k} {n}" for k, n in sorted(load.get("by_intake", {}).items()))
            + f"; {load.get('cancellations')} cancellations, {load.get('receipt_units')} units received,"
            f" {len(load.get('poison', []))} poison records"
        )
        lines.append("-" * 100)
        lines.append(f"{'invariant':<14} {'checked':>8} {'violations':>11}  counts")
        for check in self.checks:
            counts = ", ".join(f"{k} {v}" for k, v in sorted(check.counts.items()))
            lines.append(f"{check.name:<14} {check.checked:>8} {len(check.violations):>11}  {counts}")
        lines.append("-" * 100)
        for check in self.checks:
            for violation in check.violations[:10]:
                lines.append(f"VIOLATION {check.name}: {violation.subject}: {violation.detail}")
            if len(check.violations) > 10:
                lines.append(f"VIOLATION {check.name}: ... and {len(check.violations) - 10} more (see the JSON report)")
        lines += [f"PROBLEM {p}" for p in self.problems]
        timing = ", ".join(f"{k} {v:.0f}s" for k, v in self.durations.items())
        lines.append(f"durations: {timing}")
        lines.append(f"result: {'PASSED' if self.passed else 'FAILED'}  seed {self.seed}")
        lines.append(f"replay: {replay_command(self.seed, self.profile)}")
        lines.append("=" * 100)
        return "\n".join(lines)


def replay_command(seed: int, profile: dict[str, Any]) -> str:
    if profile.get("name") == "full":
        return f"make chaos SEED={seed}"
    options = " ".join(f"--{k} {profile[k]}" for k in ("orders", "faults", "window", "poison", "peak"))
    return f"python -m deploy.chaos --seed {seed} {options}"
