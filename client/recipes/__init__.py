"""The client's recipes: locks, election, config watches, caches, queues and more.

Each is also a factory method on Client with kazoo's name (`zk.Lock(...)`,
`zk.Election(...)`, ...), so code moving over from kazoo reads the same:

    async with Client(hosts) as zk:
        async with zk.Lock("/locks/db", identifier="worker-7", timeout=5) as lock:
            await storage.write(key, value, token=lock.token)

The hold-like recipes (Lock, ReadLock/WriteLock, Semaphore, Election,
NonBlockingLease, SetPartitioner) run the holder's code in a scope that is
cancelled as soon as the hold can no longer be trusted; see _guard.py for
the rule and fencing.py for the tokens that make a late holder harmless.
"""

from .barrier import Barrier, DoubleBarrier
from .cache import NodeData, TreeCache, TreeEvent, TreeEventType
from .counter import Counter
from .election import Election, Leadership
from .errors import LeadershipLostError, LockLostError, LockTimeout, RecipeError, StaleTokenError
from .fencing import FencingVerifier, is_current_holder
from .lease import MultiNonBlockingLease, NonBlockingLease
from .lock import Lock
from .partitioner import PartitionState, SetPartitioner, default_partition
from .party import Party
from .queue import LockingQueue, Queue
from .rwlock import ReadLock, ReadWriteLock, WriteLock
from .semaphore import Semaphore
from .watchers import ChildrenWatch, DataWatch

__all__ = [
    "Barrier",
    "ChildrenWatch",
    "Counter",
    "DataWatch",
    "DoubleBarrier",
    "Election",
    "FencingVerifier",
    "Leadership",
    "LeadershipLostError",
    "Lock",
    "LockLostError",
    "LockTimeout",
    "LockingQueue",
    "MultiNonBlockingLease",
    "NodeData",
    "NonBlockingLease",
    "PartitionState",
    "Party",
    "Queue",
    "ReadLock",
    "ReadWriteLock",
    "RecipeError",
    "Semaphore",
    "SetPartitioner",
    "StaleTokenError",
    "TreeCache",
    "TreeEvent",
    "TreeEventType",
    "WriteLock",
    "default_partition",
    "is_current_holder",
]
