"""The messages peers exchange: election votes, discovery, synchronization, broadcast.

Every message names the epoch it belongs to (where one applies), so a peer can
drop what comes from a dead epoch. They are frozen slotted value types; the
runtime encodes them with msgpack for the peer links.

Phases and their messages, after Zab (Junqueira, Reed, Serafini, DSN 2011):

    election    Notification (a vote: leader, its epoch and zxid; the round)
    discovery   FollowerInfo -> LeaderInfo -> AckEpoch
    sync        Sync (DIFF, TRUNC or SNAP, with the txns to log) -> NewLeader
                -> Ack(NEWLEADER) ... -> UpToDate
    broadcast   Proposal -> Ack -> Commit; Inform to observers; Ping both ways
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from coord.server.core.txn import Txn


class Role(enum.Enum):
    LOOKING = "looking"
    FOLLOWING = "following"
    LEADING = "leading"
    OBSERVING = "observing"


@dataclass(frozen=True, slots=True, order=True)
class Vote:
    """A vote for a leader. Votes order by (epoch, zxid, leader): the higher wins."""

    epoch: int
    zxid: int
    leader: int


@dataclass(frozen=True, slots=True)
class Notification:
    vote: Vote
    round: int
    state: Role
    sender_epoch: int = 0
    """For a peer that is LEADING or FOLLOWING: the epoch it is in."""


@dataclass(frozen=True, slots=True)
class FollowerInfo:
    accepted_epoch: int
    last_zxid: int
    observer: bool = False


@dataclass(frozen=True, slots=True)
class LeaderInfo:
    epoch: int


@dataclass(frozen=True, slots=True)
class AckEpoch:
    epoch: int
    """The epoch this acknowledges (the LeaderInfo's)."""
    current_epoch: int
    last_zxid: int
    """-1 when the follower can only take a SNAP (a TRUNC would cut into its snapshot)."""


class SyncMode(enum.Enum):
    DIFF = "diff"
    TRUNC = "trunc"
    SNAP = "snap"


@dataclass(frozen=True, slots=True)
class Sync:
    """Brings a follower to the leader's history.

    DIFF: log `txns` after your last zxid. TRUNC: first drop everything after
    `truncate_to`, then log `txns`. SNAP: replace your tree and log with the
    leader's state as of `snapshot_zxid` (the runtime attaches it as `snapshot`),
    then log `txns`. Every txn up to `commit_zxid` is committed.
    """

    epoch: int
    mode: SyncMode
    truncate_to: int
    snapshot_zxid: int
    txns: tuple[Txn, ...]
    commit_zxid: int
    snapshot: object = None


@dataclass(frozen=True, slots=True)
class NewLeader:
    """Follows a Sync: adopt `epoch` as the current epoch, then Ack `zxid`.

    `zxid` is the leader's last zxid when it sent that Sync, where the follower's
    log ends once the Sync is carried out; a follower whose log ends elsewhere
    missed that Sync and asks again. The Ack names `zxid`, so the leader credits
    it only to the latest Sync it sent.
    """

    epoch: int
    zxid: int


@dataclass(frozen=True, slots=True)
class UpToDate:
    epoch: int
    commit_zxid: int


@dataclass(frozen=True, slots=True)
class Proposal:
    epoch: int
    txns: tuple[Txn, ...]


@dataclass(frozen=True, slots=True)
class Ack:
    """`zxid` and everything before it in this epoch's history is durable at the sender."""

    epoch: int
    zxid: int


@dataclass(frozen=True, slots=True)
class Commit:
    epoch: int
    zxid: int


@dataclass(frozen=True, slots=True)
class Inform:
    """Committed txns for an observer, which logs and applies them at once."""

    epoch: int
    txns: tuple[Txn, ...]


@dataclass(frozen=True, slots=True)
class Ping:
    epoch: int
    commit_zxid: int = 0


PeerMessage = (
    Notification
    | FollowerInfo
    | LeaderInfo
    | AckEpoch
    | Sync
    | NewLeader
    | UpToDate
    | Proposal
    | Ack
    | Commit
    | Inform
    | Ping
)
