from services.fulfillment import domain


def test_service_level_picks_the_carrier_and_tracking_numbers_carry_its_prefix() -> None:
    carrier = domain.choose_carrier("express")
    assert carrier.code == "swiftpost"
    assert domain.tracking_number(carrier, 42) == "SP000000000042"


def test_an_order_is_delivered_when_every_shipment_is() -> None:
    assert domain.order_delivered([True, True])
    assert not domain.order_delivered([True, False])
    assert not domain.order_delivered([])
