"""Settings as production reads them: OMS_ENVIRONMENT=production, with the secrets it refuses to go without set to
values that are not the development ones."""

import pytest

SECRETS = {"OMS_DB_PASSWORD": "a-real-db-password", "OMS_KAFKA_PASSWORD": "a-real-kafka-password"}


def as_production(monkeypatch: pytest.MonkeyPatch, **more: str) -> None:
    """Production's environment for the settings read after this, and `more` variables (OMS_... names)."""
    for name, value in {"OMS_ENVIRONMENT": "production", **SECRETS, **more}.items():
        monkeypatch.setenv(name, value)
