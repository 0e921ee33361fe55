"""A service's migrations applied as its own database role, before it starts: the init container of each
Deployment in deploy/kubernetes runs `python -m deploy.kubernetes.migrate SERVICE` with the service's database
settings (OMS_PG_HOST, OMS_PG_PORT, OMS_PG_DATABASE, OMS_DB_PASSWORD, and OMS_PG_CA_FILE for TLS). Instances
starting together are safe: `migrate` holds an advisory lock while it applies."""

from __future__ import annotations

import argparse
import asyncio
import sys

import asyncpg

from shared.backbone.db import migrate, service_migrations, session_tls
from shared.backbone.settings import DatabaseSettings
from shared.contracts.topics import SERVICES


async def apply(service: str, settings: DatabaseSettings) -> list[str]:
    conn = await asyncpg.connect(settings.dsn(service), password=settings.db_password, ssl=session_tls(settings))
    try:
        return await migrate(conn, service, service_migrations(service))
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.kubernetes.migrate", description=__doc__.split("\n")[0])
    parser.add_argument("service", choices=SERVICES)
    args = parser.parse_args(argv)
    settings = DatabaseSettings()
    if not settings.db_password:
        sys.exit("OMS_DB_PASSWORD must be set (the service's database password)")
    applied = asyncio.run(apply(args.service, settings))
    print(f"{args.service}: {len(applied)} migrations applied" + (f" ({', '.join(applied)})" if applied else ""))


if __name__ == "__main__":
    main()
