"""A ZAB-like atomic broadcast as a pure state machine (see server.zab.peer)."""
