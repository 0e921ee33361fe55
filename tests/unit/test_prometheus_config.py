"""The local copy of the scrape config follows this machine's ports and finds its rule file."""

from deploy.prometheus import local
from tests.local import LOCAL


def test_targets_follow_the_service_ports_and_rules_are_found_by_absolute_path() -> None:
    config = local.render(LOCAL.ports.http, scrape_interval="1s")
    for service, port in LOCAL.ports.http.items():
        assert f'job_name: oms-{service}\n    static_configs:\n      - targets: ["127.0.0.1:{port}"]' in config
    assert f"  - {local.RULES}\n" in config
    assert "  scrape_interval: 1s\n  evaluation_interval: 1s\n" in config
