"""What one benchmark run found, as plain data: the anchors, each phase of the pipeline, the profiles, and the
circumstances (machine, commit, settings, load). Written as JSON next to the report, read back for the index."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from shared.contracts.topics import SERVICES

from .measures import LoopHolds, Spread

# Components whose CPU time is measured, in the order the report shows them: every service, then the rest of
# the system under test; "bench" is this process (load generator and observer), "tools" the programs it runs
# meanwhile (vegeta, py-spy).
OURS = (*SERVICES, "simulator", "kafka", "postgres", "smtp")
COMPONENTS = (*OURS, "bench", "tools")


@dataclass(frozen=True)
class Anchor:
    what: str
    figure: float
    unit: str
    settings: str


@dataclass
class Phase:
    name: str
    kind: str  # burst | kafka | http | shopify
    offered_rate: float | None
    orders: int  # sent
    accepted: int = 0  # got an order id from capture
    picked: int = 0
    delivered: int = 0
    # orders/s to pick task: a burst from its due time to the last pick task, a rate step between its first
    # and its last pick task
    throughput: float | None = None
    to_pick: Spread | None = None
    to_delivered: Spread | None = None
    hops: dict[str, Spread | None] = field(default_factory=dict)  # the time to pick task by hop (measures.HOPS)
    http: Spread | None = None  # response time of POST /v1/orders
    http_failures: dict[str, int] = field(default_factory=dict)  # status (or transport error) -> count
    dead_letters: int = 0
    late_max: float = 0.0  # how far the sender fell behind its own schedule at worst (s)
    messages_sent: int = 0
    pg_transactions: int = 0
    wal_records: int = 0  # written by the cluster during the phase
    wal_bytes: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # component -> CPU seconds during the phase
    machine_busy: float = 0.0  # CPU seconds of the whole machine during the phase
    steal: float = 0.0  # CPU seconds the host ran other machines instead during the phase
    wall: float = 0.0  # seconds from the first due time until everything settled
    saturated: list[str] = field(default_factory=list)
    profiled: bool = False
    loop_holds: dict[str, LoopHolds] = field(default_factory=dict)  # by service, its instances together
    waited: float | None = None  # seconds what follows the order path waited for it (shared/backbone/peak.py)

    @property
    def errors(self) -> int:
        """Orders that did not reach a pick task (refused, lost, or late past the deadline) and dead letters."""
        return self.orders - self.picked + self.dead_letters

    def cpu_per_thousand(self, component: str) -> float | None:
        if component not in self.cpu or not self.orders:
            return None
        return self.cpu[component] * 1000 / self.orders


@dataclass(frozen=True)
class ProfileSummary:
    process: str
    file: str  # relative to the report
    samples: int
    categories: list[tuple[str, float]]  # (what, share of samples)
    top_self: list[tuple[str, float]]  # (function, share of samples spent in it)
    top_project: list[tuple[str, float]]  # (innermost project function on the stack, share of samples)


@dataclass
class Run:
    run_id: str
    started_at: str
    command: str
    quick: bool
    commit: str
    machine: dict[str, str]
    settings: dict[str, Any]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    anchors: list[Anchor] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    profiles: list[ProfileSummary] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def anchor(self, what: str) -> Anchor | None:
        return next((a for a in self.anchors if a.what == what), None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# The anchors, named as the report and the ratios refer to them.
ORDER_TRANSACTION = "order-sized write transaction (1 KB order row + outbox row)"
PGBENCH_N = "pgbench -N (TPC-B-like, no branch/teller updates)"
PRODUCER_PERFORMANCE = "Kafka ProducerPerformance, 1 KB records, acks=all"
