"""Generates the AsyncAPI 3.0 document of every topic from the registry and the payload models: who sends
on each topic and who receives from it.

python -m shared.contracts.asyncapi > docs/asyncapi.json   (make asyncapi; a test keeps the file in step)
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter

from shared.contracts import events as ev
from shared.contracts.envelope import Envelope
from shared.contracts.topics import TOPICS, Topic


def _message(model: type[ev.Contract], topic: Topic) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    description = (model.__doc__ or "").strip()
    if not topic.external:
        description += (
            f" Carried in the envelope (components/schemas/Envelope) with type `{model.event_type}`,"
            f" version {model.version}."
        )
    return {
        "name": model.event_type,
        "title": model.__name__,
        "summary": description.strip() or model.__name__,
        "contentType": "application/json",
        "payload": schema,
    }


def document() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Envelope": TypeAdapter(Envelope).json_schema()}
    for topic in TOPICS:
        messages = {}
        for model in topic.payloads:
            message = _message(model, topic)
            schemas.update(message["payload"].pop("$defs", {}))
            messages[model.event_type] = message
        channel_id = topic.name.replace(".", "_").replace("-", "_")
        channels[channel_id] = {
            "address": topic.name,
            "description": (
                f"{topic.description} Written by {topic.writer}; read by {', '.join(topic.readers) or 'no one yet'};"
                f" {topic.partitions} partitions."
            ),
            "messages": messages,
        }
        operations[f"publish_{channel_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": f"{topic.writer} publishes",
        }
        for reader in topic.readers:
            operations[f"receive_{channel_id}_{reader.replace('-', '_')}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "summary": f"{reader} reads",
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Order management pipeline",
            "version": "1.0.0",
            "description": "Topics, their single writers and payload contracts. Money is a decimal string.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:19092",
                "protocol": "kafka",
                "description": "The local stack; every client authenticates as its own principal",
                "security": [{"$ref": "#/components/securitySchemes/scram"}],
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"scram": {"type": "scramSha256", "description": "SASL/SCRAM-SHA-256"}},
        },
    }


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(render(), end="")
