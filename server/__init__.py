"""The coordination server: pure state machines (tree, prep, sessions, watches, core)
and one thin trio runtime (coord.server.runtime) that moves bytes and time to them."""
