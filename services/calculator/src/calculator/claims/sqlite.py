"""A claim through SQLAlchemy: the embedded SQLite default, one process, one statement at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calculator.claims import repository
from calculator.claims.ledger import ClaimTransaction, Move, Response, Seen, Stored, reviewed
from calculator.claims.locks import Locks


class SessionTransaction(ClaimTransaction):
    """One claim's statements in one session; its locks are held until the session ends."""

    def __init__(self, session: AsyncSession, locks: Locks, held: AsyncExitStack) -> None:
        self._session = session
        self._locks = locks
        self._held = held

    async def own(
        self, tenant_id: str, key: str, applicant_id: str, matter: str, subject: str
    ) -> bool:
        if not await self._held.enter_async_context(self._locks.key(tenant_id, key)):
            return False
        await self._held.enter_async_context(self._locks.subject(self._session, matter, subject))
        await self._held.enter_async_context(self._locks.applicant(self._session, applicant_id))
        return True

    async def read(
        self, tenant_id: str, key: str, applicant_id: str, matter: str, subject: str
    ) -> Seen:
        session = self._session
        stored = await repository.idempotent_response(session, tenant_id, key)
        held_names, cleared_at = reviewed(
            await repository.own_claims(session, applicant_id, matter, subject)
        )
        return Seen(
            stored=None
            if stored is None
            else Stored(stored.request_hash, stored.status_code, stored.body),
            ledger=await repository.ledger_for(session, applicant_id, [(matter, subject)]),
            paid=await repository.paid_claims(session, applicant_id, matter, subject),
            others=await repository.others_paid_for(session, applicant_id, matter, subject),
            held_names=held_names,
            cleared_at=cleared_at,
            budgeted=frozenset(row.fund for row in await repository.funds(session)),
        )

    async def budget(self, fund: str) -> tuple[Decimal, Decimal] | None:
        await self._held.enter_async_context(self._locks.fund(self._session, fund))
        row = await repository.fund(self._session, fund)
        return None if row is None else (Decimal(row["budget"]), Decimal(row["granted"]))

    async def write(
        self, moves: Sequence[Move], claim: Mapping[str, Any], response: Response
    ) -> None:
        session = self._session
        for move in moves:
            if move.balance == "subject":
                applicant_id, matter, subject = move.key
                await repository.move_balance(
                    session,
                    applicant_id=str(applicant_id),
                    matter=str(matter),
                    subject=str(subject),
                    seen=move.seen,
                    delta=move.delta,
                )
            elif move.balance == "cap":
                applicant_id, cap_key, year = move.key
                await repository.move_cap(
                    session,
                    applicant_id=str(applicant_id),
                    cap_key=str(cap_key),
                    year=int(year),
                    seen=move.seen,
                    delta=move.delta,
                )
            else:
                fund = str(move.key[0])
                await repository.move_fund(session, fund, seen=move.seen, delta=move.delta)
        await repository.insert_claim(session, dict(claim))
        await repository.store_response(
            session,
            tenant_id=response.tenant_id,
            key=response.key,
            request_hash=response.request_hash,
            status_code=response.status_code,
            body=response.body,
            claim_id=response.claim_id,
            now=claim["created_at"],
        )


class SessionClaims:
    """Claims through SQLAlchemy sessions, with the locks of this process."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], locks: Locks) -> None:
        self._sessions = sessions
        self._locks = locks

    @asynccontextmanager
    async def transaction(self, *, optimistic: bool = False) -> AsyncIterator[ClaimTransaction]:
        """Always with the locks: one process, whose locks cost nothing to take."""
        async with AsyncExitStack() as held, self._sessions() as session:
            yield SessionTransaction(session, self._locks, held)
            await session.commit()

    async def close(self) -> None:
        """The sessions' engine is closed by its owner."""
