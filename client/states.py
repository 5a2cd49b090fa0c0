"""The states a client's session goes through, as kazoo names them.

    CONNECTED  --connection lost-->            SUSPENDED
    SUSPENDED  --reconnected, same session-->  CONNECTED
    SUSPENDED  --server says expired, or the
                 session timeout passed-->     LOST
    any        --the user closed the client--> CLOSED

LOST and CLOSED are final: a lost session is never silently replaced by a new
one, because everything tied to it (ephemerals, watches, locks) is gone and
only the application knows how to rebuild it.
"""

from __future__ import annotations

import enum


class ClientState(enum.Enum):
    CONNECTED = "CONNECTED"
    SUSPENDED = "SUSPENDED"
    LOST = "LOST"
    CLOSED = "CLOSED"

    @property
    def is_final(self) -> bool:
        """True for the states a client never leaves."""
        return self in (ClientState.LOST, ClientState.CLOSED)
