"""How a message reads: Jinja2 templates per kind, a text part (`<kind>.txt`, whose `subject` block is the
subject) and an HTML part (`<kind>.html`, autoescaped: customer names and reasons cannot inject markup).
Reads only the templates shipped with the service."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).resolve().parent / "templates"
MESSAGE_ID_NAMESPACE = UUID("3c3f1a0e-7f43-4d55-8a0b-5f1e9d2c6b77")
MAX_SUBJECT = 200

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(
        enabled_extensions=("html",), disabled_extensions=("txt",), default_for_string=True, default=True
    ),
    undefined=StrictUndefined,  # a fact a template needs and the event did not give is a bug, not a blank
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    # The templates ship with the service and never change while it runs: no file is looked at again per message.
    auto_reload=False,
)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def message_id(order_id: UUID, kind: str, shipment_key: str) -> str:
    """Stable per message, so a receiver can drop the rare resend after a crash between sending and our commit."""
    name = f"{order_id}/{kind}" + (f"/{shipment_key}" if shipment_key else "")
    return f"<{uuid.uuid5(MESSAGE_ID_NAMESPACE, name)}@oms.local>"


def render(
    kind: str, order_id: UUID, shipment_key: str, recipient: Mapping[str, Any], facts: dict[str, Any]
) -> Rendered:
    """`recipient`: the customer's `name` and the order's `reference`, as the templates greet and cite them."""
    context = {**facts, "name": recipient["name"], "reference": recipient["reference"], "order_id": str(order_id)}
    text_template = _environment.get_template(f"{kind}.txt")
    subject_parts = text_template.blocks["subject"](text_template.new_context(context))
    # One line, bounded: a header cannot be split by a newline in a customer's data.
    subject = re.sub(r"\s+", " ", "".join(subject_parts)).strip()[:MAX_SUBJECT]
    text = text_template.render(context)
    html = _environment.get_template(f"{kind}.html").render({**context, "subject": subject})
    return Rendered(subject, text, html)
