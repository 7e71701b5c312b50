"""Loading the policy directory into the registry's database: on start and by the import tool."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from registry.documents import repository
from registry.documents.service import Clock, load_file_documents, utc_now
from registry.models import PolicyTree
from registry.policy_files.loader import PolicySet, tree_digest
from registry.reference_data import load_reference_data

TREE = "policies"


async def loaded_digest(session: AsyncSession) -> str | None:
    """The digest of the policy directory as last loaded whole, if any was."""
    tree = await session.get(PolicyTree, TREE)
    return tree.digest if tree is not None else None


async def load_policy_set(
    session: AsyncSession, policy_set: PolicySet, clock: Clock = utc_now
) -> int:
    """Record a checked policy set in the session's transaction; return the versions recorded.

    The reference data is made equal to the files, every changed document file recorded, and
    the digest of the set kept, so that a start with the same files loads nothing again.
    """
    await repository.serialise_writers(session)
    now = clock()
    await load_reference_data(session, policy_set, now)
    recorded = await load_file_documents(session, policy_set, now)
    await session.merge(
        PolicyTree(name=TREE, digest=tree_digest(policy_set.file_hashes), loaded_at=now)
    )
    await session.flush()
    return recorded
