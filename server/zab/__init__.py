"""A ZAB-like atomic broadcast as a pure state machine (see coord.server.zab.peer)."""
