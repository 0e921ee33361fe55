import uuid
from datetime import UTC, datetime

from services.notifications import domain
from shared import events as ev


def test_lifecycle_events_become_message_intents_without_contact_details() -> None:
    order_id = uuid.uuid4()
    shipped = ev.OrderShipped(
        order_id=order_id,
        pick_task_id=uuid.uuid4(),
        warehouse_id="ams",
        carrier="parcelnet",
        tracking_number="PN000000000001",
        shipped_at=datetime.now(UTC),
    )
    intent = domain.intent_for(shipped)
    assert intent == domain.Intent(order_id, "shipped", {"carrier": "parcelnet", "tracking_number": "PN000000000001"})
    assert domain.intent_for(ev.OrderBackordered(order_id=order_id, reason="r", missing=[])) is None


def test_rendering_fills_the_template_and_keeps_a_stable_message_id() -> None:
    order_id = uuid.uuid4()
    first = domain.render("shipped", order_id, "Ada", {"carrier": "parcelnet", "tracking_number": "PN1"})
    again = domain.render("shipped", order_id, "Ada", {"carrier": "parcelnet", "tracking_number": "PN1"})
    assert first.subject == "Your order is on its way"
    assert "Hello Ada," in first.body and "PN1" in first.body and str(order_id) in first.body
    assert first.message_id == again.message_id
    assert first.message_id != domain.render("delivered", order_id, "Ada", {"delivered_at": "x"}).message_id
