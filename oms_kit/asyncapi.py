"""The integrators' side of the topics as AsyncAPI 3.0, from FastStream: what a channel adapter sends, what a
warehouse receives and sends. `python -m oms_kit.asyncapi > kit-asyncapi.json`.

FastStream describes a subscriber's message by its handler's body type; the kit's handlers take the raw record
(decoded and validated by the kit, see receiving.py), so the pick-task and return messages are described here by
the envelope that carries them, with their payload contracts."""

from __future__ import annotations

import json
from typing import Any, Literal

from faststream.specification import AsyncAPI
from pydantic import TypeAdapter

from oms_kit.channel import ChannelAdapter
from oms_kit.connection import Connection
from oms_kit.warehouse import WarehouseWorker
from shared.contracts.envelope import Envelope
from shared.contracts.events import PickTaskCancelled, PickTaskReleased, ReturnAuthorised
from shared.contracts.topics import PICK_TASKS, RETURN_EVENTS

SERVER = "kafka.example.internal:9092"


class PickTaskRecord(Envelope):
    """A record on oms.warehouse.pick-tasks: the envelope with a pick task or its withdrawal as payload."""

    type: Literal["PickTaskReleased", "PickTaskCancelled"]
    payload: PickTaskReleased | PickTaskCancelled  # type: ignore[assignment]


class ReturnRecord(Envelope):
    """A record on oms.returns.events a warehouse acts on (the others on that topic are skipped)."""

    type: Literal["ReturnAuthorised"]
    payload: ReturnAuthorised  # type: ignore[assignment]


def document() -> dict[str, Any]:
    example = Connection(SERVER, "your-principal", "-")
    adapter = ChannelAdapter(example, channel="your-channel")
    worker = WarehouseWorker(example, group="warehouses", returns=True)
    spec: dict[str, Any] = (
        AsyncAPI(
            adapter.broker,
            worker.broker,
            title="OMS integrators' kit",
            version="1",
            description="What a channel adapter and a warehouse exchange with the OMS (docs/kit.md).",
        )
        .to_specification()
        .to_jsonable()
    )
    schemas = spec["components"]["schemas"]
    for topic, model in ((PICK_TASKS.name, PickTaskRecord), (RETURN_EVENTS.name, ReturnRecord)):
        schema = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
        for nested, definition in schema.pop("$defs", {}).items():
            schemas.setdefault(nested, definition)
        schemas[model.__name__] = schema
        for name, message in spec["components"]["messages"].items():
            if name.endswith(f":{topic}:SubscribeMessage"):
                message["payload"] = {"$ref": f"#/components/schemas/{model.__name__}"}
    schemas.pop("EmptyPayload", None)
    return spec


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    print(render(), end="")


if __name__ == "__main__":
    main()
