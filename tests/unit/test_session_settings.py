"""Every pooled database session names its service and instance, so an operator (or the chaos run) can tell
which process holds a lock, and carries the limits that keep a stalled process from holding it for good."""

from shared.backbone.db import server_settings
from shared.backbone.settings import CommonSettings


def test_a_session_names_the_service_and_the_instance_it_belongs_to() -> None:
    # given the second instance of allocation
    settings = CommonSettings(service="allocation", instance="2", environment="test")

    # when its sessions are configured
    session = server_settings(settings)

    # then the server shows which instance each session belongs to, and every limit is set
    assert session["application_name"] == "oms-allocation-2"
    assert session["search_path"] == "allocation"
    assert session["idle_in_transaction_session_timeout"] == str(settings.db_idle_in_tx_timeout_ms)


def test_a_long_instance_name_is_cut_to_what_the_server_keeps() -> None:
    settings = CommonSettings(service="notifications", instance="x" * 80, environment="test")
    assert len(server_settings(settings)["application_name"]) == 63
