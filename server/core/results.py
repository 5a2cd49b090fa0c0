"""What a client's write answers, from what applying its txn did, and the retry table's entry.

Both the member that applies a txn live and a restart that replays its log call
`remember_write`, so the write-retry table (coord.server.core.dedupe) holds the
first result of every write the log still holds, and a resent write is answered
with it instead of being applied twice.
"""

from __future__ import annotations

from typing import Any

from coord.messages import Stat
from coord.server.core.dedupe import WriteResults
from coord.server.core.output import Created, MultiResults, OpOutcome, Result
from coord.server.core.prep import MultiFailed
from coord.server.core.tree import ApplyResult
from coord.server.core.txn import (
    CheckTxn,
    CloseSessionTxn,
    CreateSessionTxn,
    CreateTxn,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    Txn,
    TxnBody,
)


def remember_write(results: WriteResults, txn: Txn, result: ApplyResult) -> Result:
    """Record a client write's reply result for retries; returns it (None if not a write).

    Called as txns are applied, and for the txns a restart replays, so that the
    table survives a restart for every write the log still holds.
    """
    header, body = txn.header, txn.body
    if header.xid <= 0 or isinstance(body, CreateSessionTxn | CheckTxn | CloseSessionTxn):
        return None
    reply_result = result_of(body, result)
    results.record(header.session_id, header.xid, header.zxid, reply_result)
    return reply_result


def multi_failure(failed: MultiFailed) -> MultiResults:
    """A multi that did not apply: each op's error (RolledBack for the ones that would have)."""
    return MultiResults(tuple(OpOutcome(error=error) for error in failed.results()))


def result_of(body: TxnBody, result: ApplyResult) -> Result:
    """What a client's write answers, from what applying its txn did."""
    if isinstance(body, MultiTxn):
        subresults = result.result if isinstance(result.result, list) else []
        return MultiResults(
            tuple(
                OpOutcome(_one_result(sub, value))
                for sub, value in zip(body.txns, subresults, strict=False)
            )
        )
    return _one_result(body, result.result)


def _one_result(body: TxnBody, value: Any) -> Result:
    if isinstance(body, CreateTxn) and value is not None:
        path, stat = value
        return Created(path, stat)
    if isinstance(body, SetDataTxn | SetACLTxn):
        assert isinstance(value, Stat)
        return value
    return None


__all__ = ["multi_failure", "remember_write", "result_of"]
