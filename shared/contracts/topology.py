"""The pipeline's topology drawn from the topic registry: who writes each topic, who reads it, and each
service's own schema. `oms topics --flow` prints it; docs/architecture.md embeds it (a test keeps it in step)."""

from __future__ import annotations

from shared.contracts.topics import BUSINESS_TOPICS, SERVICES, Topic


def _node(name: str) -> str:
    return name.replace(" ", "_").replace("-", "_")


def _topic_node(topic: Topic) -> str:
    return "t_" + topic.name.removeprefix("oms.").replace(".", "_").replace("-", "_")


def mermaid() -> str:
    """A Mermaid flowchart: services and outside parties, the topics between them, each service's schema.
    Dead-letter topics are left out (every service writes its own, and only operators read them)."""
    parties = sorted({t.writer for t in BUSINESS_TOPICS} | {r for t in BUSINESS_TOPICS for r in t.readers})
    lines = ["flowchart LR"]
    for party in parties:
        shape = f"[{party}]" if party in SERVICES else f"[/{party}/]"
        lines.append(f"    {_node(party)}{shape}")
    for service in SERVICES:
        lines.append(f"    {_node(service)} --- db_{_node(service)}[(schema {service})]")
    for topic in BUSINESS_TOPICS:
        lines.append(f"    {_topic_node(topic)}>{topic.name}]")
        lines.append(f"    {_node(topic.writer)} --> {_topic_node(topic)}")
        lines.extend(f"    {_topic_node(topic)} --> {_node(reader)}" for reader in topic.readers)
    return "\n".join(lines) + "\n"


def embed(document: str) -> str:
    """The document with its diagram block (between the topology markers) redrawn."""
    head, rest = document.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}```mermaid\n{mermaid()}```\n{END}{tail}"


START, END = "<!-- topology:start -->\n", "<!-- topology:end -->"

if __name__ == "__main__":  # python -m shared.contracts.topology docs/architecture.md: redraw the picture in place
    import sys
    from pathlib import Path

    target = Path(sys.argv[1])
    target.write_text(embed(target.read_text()))
