"""The registry says who reads which topic, and a service refuses to consume a topic it is not listed for."""

import pytest

from services.allocation.handlers import AllocationHandlers
from services.allocation.settings import AllocationSettings, load_network, load_priorities, load_replenishment
from services.capture.handlers import CaptureHandlers
from services.capture.settings import CaptureSettings
from services.fulfillment.handlers import FulfillmentHandlers
from services.fulfillment.settings import FulfillmentSettings
from services.kpis.handlers import KpiHandlers
from services.kpis.settings import KpiSettings
from services.notifications.handlers import NotificationHandlers
from services.returns.handlers import ReturnsHandlers
from services.returns.settings import ReturnsSettings
from shared.backbone import kafka_access
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.topics import SERVICES


def routes() -> dict[str, set[type[ev.Contract]]]:
    """The topics carrying the events each service's handlers take, as their wiring builds them."""
    capture, allocation, fulfillment = CaptureSettings(), AllocationSettings(), FulfillmentSettings()
    returns = ReturnsSettings()
    network = load_network(allocation.warehouses_file, allocation.allocation_file)
    return {
        "capture": set(
            CaptureHandlers(capture.intake_rules, capture.risk_rules(), capture.early_cancel_window).routes()
        ),
        "allocation": set(
            AllocationHandlers(
                network,
                load_replenishment(allocation.allocation_file, network.warehouse_ids),
                load_priorities(allocation.allocation_file, allocation.carriers_file),
            ).routes()
        ),
        "fulfillment": set(
            FulfillmentHandlers(fulfillment.shipping_rules(), fulfillment.warehouses(), fulfillment.clock()).routes()
        ),
        "notifications": set(NotificationHandlers().routes()),
        "returns": set(
            ReturnsHandlers(returns.policy(), returns.shipping_rules(), returns.warehouses(), returns.clock()).routes()
        ),
        "kpis": set(KpiHandlers(KpiSettings().rules()).routes()),
    }


def test_every_service_consumes_exactly_the_topics_the_registry_lists_it_reading() -> None:
    consumed = routes()
    assert set(consumed) == set(SERVICES)  # a service added later is held to this at start-up (check_reads)
    for service, payloads in consumed.items():
        assert {topics.topic_of(p).name for p in payloads} == {t.name for t in topics.inputs(service)}, service


def test_every_topic_has_a_writer_and_every_business_topic_a_reader() -> None:
    for topic in topics.TOPICS:
        assert topic.writer
        assert topic in topics.outputs(topic.writer)
    assert all(topic.readers for topic in topics.BUSINESS_TOPICS)


def test_a_consumer_of_a_topic_it_is_not_listed_for_is_refused() -> None:
    topics.check_reads("allocation", [ev.OrderValidated])
    with pytest.raises(ValueError, match=r"oms\.orders\.rejected"):
        topics.check_reads("allocation", [ev.OrderValidated, ev.OrderRejected])
    with pytest.raises(ValueError, match="no topic"):
        topics.check_reads("allocation", [ev.Customer])


def test_every_event_type_travels_on_exactly_one_topic() -> None:
    carried = [payload for topic in topics.TOPICS for payload in topic.payloads]
    assert len(carried) == len(set(carried))


def test_each_principal_is_granted_exactly_its_registry_rights() -> None:
    allocation = {(g.resource, g.pattern, g.name, g.operation) for g in kafka_access.grants("allocation")}
    assert allocation == {
        ("TOPIC", "LITERAL", topics.ALLOCATION_EVENTS.name, "WRITE"),
        ("TOPIC", "LITERAL", topics.REPLENISHMENT_SUGGESTIONS.name, "WRITE"),
        ("TOPIC", "LITERAL", "oms.dead-letter.allocation", "WRITE"),
        *(("TOPIC", "LITERAL", t.name, "READ") for t in topics.inputs("allocation")),
        ("GROUP", "LITERAL", "oms-allocation", "READ"),
        # the order path's backlog as capture reports it, read in no group
        ("TOPIC", "LITERAL", topics.INTAKE_QUEUE.name, "READ"),
    }
    capture = {(g.resource, g.pattern, g.name, g.operation) for g in kafka_access.grants("capture")}
    # capture measures the backlog: the other path groups' offsets and their topics' ends (what it reads already,
    # its own topic and allocation's events, it may see the ends of)
    assert {g for g in capture if g[3] == "DESCRIBE"} == {
        ("GROUP", "LITERAL", "oms-allocation", "DESCRIBE"),
        ("GROUP", "LITERAL", "oms-fulfillment", "DESCRIBE"),
        ("TOPIC", "LITERAL", topics.ORDERS_VALIDATED.name, "DESCRIBE"),
    }
    assert ("TOPIC", "LITERAL", topics.INTAKE_QUEUE.name, "WRITE") in capture
    warehouses = {(g.resource, g.pattern, g.name, g.operation) for g in kafka_access.grants("warehouses")}
    assert warehouses == {
        ("TOPIC", "LITERAL", topics.INVENTORY_ADJUSTMENTS.name, "WRITE"),
        ("TOPIC", "LITERAL", topics.WAREHOUSE_EVENTS.name, "WRITE"),
        ("TOPIC", "LITERAL", topics.PICK_TASKS.name, "READ"),
        ("TOPIC", "LITERAL", topics.RETURN_EVENTS.name, "READ"),
        ("GROUP", "PREFIXED", "warehouses", "READ"),
    }
    purchasing = {(g.resource, g.pattern, g.name, g.operation) for g in kafka_access.grants("purchasing")}
    assert purchasing == {
        ("TOPIC", "LITERAL", topics.REPLENISHMENT_SUGGESTIONS.name, "READ"),
        ("GROUP", "PREFIXED", "purchasing", "READ"),
    }
    # every topic's writer may write it, and no one else
    for topic in topics.TOPICS:
        writers = {g.principal for g in kafka_access.all_grants() if g.name == topic.name and g.operation == "WRITE"}
        assert writers == {kafka_access.principal(topic.writer)}, topic.name
