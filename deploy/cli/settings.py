"""The `oms` command's settings, read once by `main` and handed to every verb as `args.settings`: the local
stack's (deploy/local/settings.py), and where to point elsewhere: OMS_<SERVICE>_URL (a service's base URL),
OMS_API_KEY (the key HTTP calls carry; else the local stack's development keys), OMS_ADMIN_DSN (the database
administrator `oms keys` connects as; else the local stack's)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from deploy.local.settings import LocalStack
from shared.contracts.topics import SERVICES


@dataclass(frozen=True)
class CliSettings:
    local: LocalStack
    urls: Mapping[str, str]
    api_key: str | None
    admin_dsn: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CliSettings:
        env = os.environ if env is None else env
        local = LocalStack.from_env(env)
        return cls(
            local=local,
            urls={s: env.get(f"OMS_{s.upper()}_URL") or local.http_url(s) for s in SERVICES},
            api_key=env.get("OMS_API_KEY") or None,
            admin_dsn=env.get("OMS_ADMIN_DSN") or None,
        )
