"""Per-shop Shopify secrets and webhook endpoints come from settings; development secrets are refused in production."""

import json

import pytest
from pydantic import ValidationError

from services.capture.settings import DEVELOPMENT_SHOP, CaptureSettings
from services.notifications.settings import NotificationSettings
from tests.production import as_production


def test_each_shop_has_its_own_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_SHOPIFY_SHOP_SECRETS", json.dumps({"a.myshopify.com": "sa", "b.myshopify.com": "sb"}))
    settings = CaptureSettings()
    assert (settings.shopify_secret("a.myshopify.com"), settings.shopify_secret("B.myshopify.com ")) == ("sa", "sb")
    assert settings.shopify_secret(DEVELOPMENT_SHOP) is None
    assert "sa" not in repr(settings)  # secrets do not show in logs or tracebacks


def test_development_secrets_are_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    as_production(monkeypatch)
    with pytest.raises(ValidationError, match="Shopify secret"):
        CaptureSettings()
    with pytest.raises(ValidationError, match="OMS_WEBHOOK_SECRET"):
        NotificationSettings()
    monkeypatch.setenv("OMS_SHOPIFY_SHOP_SECRETS", json.dumps({"shop.myshopify.com": "real"}))
    monkeypatch.setenv("OMS_WEBHOOK_SECRET", "real")
    assert CaptureSettings().shopify_secret("shop.myshopify.com") == "real"
    assert NotificationSettings().webhook_secret.get_secret_value() == "real"


def test_webhook_endpoints_serve_their_sales_channels_or_all(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoints = [
        {"name": "crm", "url": "https://crm.example/hooks", "sales_channels": ["shopify"]},
        {"name": "all", "url": "https://audit.example/hooks"},
    ]
    monkeypatch.setenv("OMS_WEBHOOKS", json.dumps(endpoints))
    crm, everything = NotificationSettings().webhooks
    assert (crm.serves("shopify"), crm.serves("webshop"), everything.serves("webshop")) == (True, False, True)
    assert crm.channel == "webhook:crm"


@pytest.mark.parametrize(
    "endpoints",
    [
        [{"name": "a", "url": "https://x"}, {"name": "a", "url": "https://y"}],
        [{"name": "a", "url": "ftp://x"}],
        [{"name": "Not A Name", "url": "https://x"}],
    ],
)
def test_bad_webhook_endpoints_are_refused(monkeypatch: pytest.MonkeyPatch, endpoints: list[dict[str, str]]) -> None:
    monkeypatch.setenv("OMS_WEBHOOKS", json.dumps(endpoints))
    with pytest.raises(ValidationError):
        NotificationSettings()
