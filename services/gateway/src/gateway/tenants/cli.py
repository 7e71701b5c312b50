"""`gateway-tenants create | list`: make the first tenants straight in the gateway's database.

The database is GATEWAY_DATABASE_URL, or the SQLite file gateway.db in SUBSIDY_DATA_DIR (./var
by default); migrations are applied first. A new tenant's API key is printed once and stored
only as its digest. A new tenant's region is looked up in the registry at GATEWAY_REGISTRY_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from subsidy_common.actor import recorded
from subsidy_common.database import create_engine, migrate
from subsidy_common.problems import DomainError, InvalidInput

from gateway.clients.downstream import Downstream
from gateway.clients.regions import RegionDirectory, RegionTree
from gateway.config import Settings
from gateway.db import session_factory
from gateway.models import Tenant
from gateway.tenants import service
from gateway.tenants.schemas import TenantCreate, TenantRead

SERVICE = "gateway"
PAGE = 500

REGION_HELP = (
    "Region code: six digits (GB/T 2260, e.g. 510502 for 江阳区) or a park such as 510500-GX. "
    "It must be one of the registry's regions (GET /v1/regions), which this command asks at "
    "GATEWAY_REGISTRY_URL."
)
UNCHECKED_HELP = (
    "create the tenant without asking the registry whether its region exists (its format is "
    "still checked): for a gateway set up before the registry can be reached"
)
# Long enough for a registry on another host, short enough for a person at a prompt.
REGISTRY_TIMEOUT = 5.0


async def known_regions(settings: Settings) -> RegionTree | None:
    """The registry's regions, or None when it cannot be reached (the error is printed)."""
    registry = Downstream(
        "registry", settings.registry_url, timeout=REGISTRY_TIMEOUT, connect_timeout=2.0
    )
    try:
        return await RegionDirectory(registry).tree()
    except DomainError as exc:
        print(
            f"error: cannot ask the registry at {settings.registry_url} whether the region "
            f"exists ({exc.detail}). Start it or set GATEWAY_REGISTRY_URL; "
            "--unchecked-region creates the tenant on the code's format alone.",
            file=sys.stderr,
        )
        return None
    finally:
        await registry.aclose()


async def create(
    settings: Settings, data: TenantCreate, *, as_json: bool, check_region: bool = True
) -> int:
    """Create a tenant with its first key and print the key, once."""
    regions = await known_regions(settings) if check_region else None
    if check_region and regions is None:
        return 1
    async with _sessions(settings) as sessions, sessions() as session:
        try:
            tenant, key = await service.create_tenant(
                session, data=data, regions=regions, actor=command_line_actor()
            )
        except InvalidInput:
            print(
                f"error: --region: {data.region} is not one of the registry's regions "
                "(GET /v1/regions lists them)",
                file=sys.stderr,
            )
            return 2
        except service.TenantNameTaken as exc:
            print(f"error: {exc.detail}", file=sys.stderr)
            return 1
        await session.commit()
    if as_json:
        print(json.dumps({**_public(tenant), "api_key": key}, ensure_ascii=False))
    else:
        print(f"created {tenant.role} tenant {tenant.name} ({tenant.id}), region {tenant.region}")
        print(f"api key, shown this once (only its digest is stored): {key}")
    return 0


async def list_all(settings: Settings, *, as_json: bool) -> int:
    """Print every tenant, one a line."""
    tenants: list[Tenant] = []
    async with _sessions(settings) as sessions, sessions() as session:
        cursor: str | None = None
        while True:
            page, cursor = await service.list_tenants(session, cursor=cursor, limit=PAGE)
            tenants.extend(page)
            if cursor is None:
                break
    for tenant in tenants:
        if as_json:
            print(json.dumps(_public(tenant), ensure_ascii=False))
        else:
            state = "disabled" if tenant.disabled_at is not None else "enabled"
            print(f"{tenant.id}\t{tenant.role}\t{tenant.region}\t{state}\t{tenant.name}")
    return 0


def command_line_actor() -> str:
    """Who the record of changes names for this command: the command and the system user."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container's user without a name
        user = str(os.getuid())
    return recorded(f"gateway-tenants [{user}]")


@asynccontextmanager
async def _sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = settings.resolved_database_url(SERVICE)
    await migrate(settings.migrations_dir(SERVICE), url)
    engine = create_engine(url, pool_size=1)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


def _public(tenant: Tenant) -> dict[str, Any]:
    return TenantRead.model_validate(tenant).model_dump(mode="json")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the tenant tool."""
    parser = argparse.ArgumentParser(
        prog="gateway-tenants",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser(
        "create",
        help="create a tenant and print its API key once",
        description="Create a tenant and print its API key once. " + REGION_HELP,
    )
    new.add_argument("--name", required=True, help="tenant name, e.g. 江阳区人社局")
    new.add_argument(
        "--role",
        required=True,
        choices=["admin", "operator", "auditor"],
        help="admin: city policy office; operator: a county or park system; auditor: read only",
    )
    new.add_argument("--region", required=True, help=REGION_HELP)
    new.add_argument("--unchecked-region", action="store_true", help=UNCHECKED_HELP)
    new.add_argument("--json", action="store_true", help="print the tenant as one JSON object")
    listing = commands.add_parser("list", help="list every tenant")
    listing.add_argument("--json", action="store_true", help="print one JSON object a line")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "list":
        return asyncio.run(list_all(settings, as_json=args.json))
    try:
        data = TenantCreate(name=args.name, role=args.role, region=args.region)
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            print(f"error: --{field}: {error['msg']}", file=sys.stderr)
        return 2
    return asyncio.run(
        create(settings, data, as_json=args.json, check_region=not args.unchecked_region)
    )


if __name__ == "__main__":
    sys.exit(main())
