"""How a customer's address is carried over SMTP: a non-ASCII domain in its IDNA form, which any server takes;
only a non-ASCII mailbox name needs the server's SMTPUTF8."""

import pytest

from services.notifications.channels import Recipient


@pytest.mark.parametrize(
    ("address", "carried", "needs_smtputf8"),
    [
        ("anna@example.test", "anna@example.test", False),
        ("anna@exämple.test", "anna@xn--exmple-cua.test", False),
        ("jörg@example.test", "jörg@example.test", True),
        ("jörg@exämple.test", "jörg@xn--exmple-cua.test", True),
        ("用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v", True),
        ("anna@exä..mple.test", "anna@exä..mple.test", True),  # no valid IDNA form: only SMTPUTF8 can carry it
    ],
)
def test_an_address_is_carried_in_ascii_where_it_can_be(address: str, carried: str, needs_smtputf8: bool) -> None:
    assert Recipient.of(address) == Recipient(carried, needs_smtputf8)
