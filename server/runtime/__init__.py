"""The thin trio runtime: the only part of the server that does IO or reads a clock."""

from coord.server.runtime.standalone import StandaloneServer

__all__ = ["StandaloneServer"]
