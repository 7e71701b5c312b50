"""`registry-policies validate | schema | diff | import`: policy files from the shell."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from registry.policy_files.integrity import check_policy_set
from registry.policy_files.loader import PolicyFilesInvalid, PolicySet, read_policy_dir
from registry.policy_files.models import Document
from registry.policy_files.schema import schema_documents


def _load(root: Path) -> PolicySet | None:
    try:
        policy_set = read_policy_dir(root)
    except PolicyFilesInvalid as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s); nothing loaded", file=sys.stderr)
        return None
    problems = check_policy_set(policy_set)
    for problem in problems:
        print(problem, file=sys.stderr)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        print(f"{len(errors)} error(s); nothing loaded", file=sys.stderr)
        return None
    return policy_set


def validate(root: Path) -> int:
    """Check every file under `root`; print each problem as file:line: field: message."""
    policy_set = _load(root)
    if policy_set is None:
        return 1
    clauses = sum(len(d.clauses) for _, d in policy_set.documents)
    print(
        f"ok: {len(policy_set.documents)} documents, {clauses} clauses, "
        f"{len(policy_set.matters.matters)} matters, {len(policy_set.regions.regions)} regions"
    )
    return 0


def write_schemas(root: Path) -> int:
    """Write the JSON Schemas that editors use to complete and check the files."""
    for name, schema in schema_documents().items():
        target = root / name
        target.write_text(json.dumps(schema, ensure_ascii=False, indent=2) + "\n", "utf-8")
        print(f"wrote {target}")
    return 0


def diff(old_root: Path, new_root: Path) -> int:
    """Name the documents and clauses added, removed or changed between two policy trees."""
    old, new = _load(old_root), _load(new_root)
    if old is None or new is None:
        return 1
    before = {d.id: d for _, d in old.documents}
    after = {d.id: d for _, d in new.documents}
    changes = 0
    for doc_id in sorted(before.keys() | after.keys()):
        a, b = before.get(doc_id), after.get(doc_id)
        if a == b:
            continue
        changes += 1
        if a is None or b is None:
            print(f"{'+' if a is None else '-'} {doc_id}")
            continue
        print(f"~ {doc_id}")
        for line in _document_changes(a, b):
            print(f"    {line}")
    print(f"{changes} document(s) changed")
    return 0


def _document_changes(a: Document, b: Document) -> list[str]:
    lines: list[str] = []
    head_a = a.model_dump(mode="json", exclude={"clauses"})
    head_b = b.model_dump(mode="json", exclude={"clauses"})
    for key in sorted(head_a.keys() | head_b.keys()):
        if head_a.get(key) != head_b.get(key):
            lines.append(f"{key}: {head_a.get(key)!r} -> {head_b.get(key)!r}")
    clauses_a = {c.id: c for c in a.clauses}
    clauses_b = {c.id: c for c in b.clauses}
    for clause_id in sorted(clauses_a.keys() | clauses_b.keys()):
        ca, cb = clauses_a.get(clause_id), clauses_b.get(clause_id)
        if ca == cb:
            continue
        mark = "+" if ca is None else "-" if cb is None else "~"
        lines.append(f"{mark} clause {clause_id}")
    return lines


def import_files(root: Path, database_url: str) -> int:
    """Load a policy directory into a registry database, as the registry does when it starts."""
    policy_set = _load(root)
    if policy_set is None:
        return 1
    recorded = asyncio.run(_import(policy_set, database_url))
    print(f"imported: {recorded} document version(s) recorded")
    return 0


async def _import(policy_set: PolicySet, database_url: str) -> int:
    from subsidy_common.database import create_engine, migrate

    from registry.config import Settings
    from registry.policy_load import load_policy_set

    await migrate(Settings().migrations_dir("registry"), database_url)
    engine = create_engine(database_url, pool_size=1)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            recorded = await load_policy_set(session, policy_set)
            await session.commit()
    finally:
        await engine.dispose()
    return recorded


def main(argv: list[str] | None = None) -> int:
    """Entry point of the policy file tool."""
    parser = argparse.ArgumentParser(prog="registry-policies", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("validate", help="check a policy directory")
    check.add_argument("root", type=Path, nargs="?", default=Path("policies"))
    schema = commands.add_parser("schema", help="write the JSON Schemas")
    schema.add_argument("root", type=Path, nargs="?", default=Path("policies"))
    load = commands.add_parser("import", help="load a policy directory into a registry database")
    load.add_argument("root", type=Path, nargs="?", default=Path("policies"))
    load.add_argument(
        "--database-url",
        default=os.environ.get("REGISTRY_DATABASE_URL"),
        help="the registry database (default: REGISTRY_DATABASE_URL, else the local SQLite file)",
    )
    compare = commands.add_parser("diff", help="compare two policy directories")
    compare.add_argument("old", type=Path)
    compare.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    if args.command == "validate":
        return validate(args.root)
    if args.command == "schema":
        return write_schemas(args.root)
    if args.command == "import":
        from registry.config import Settings

        url = args.database_url or Settings().resolved_database_url("registry")
        return import_files(args.root, url)
    return diff(args.old, args.new)


if __name__ == "__main__":
    sys.exit(main())
