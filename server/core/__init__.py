"""The replica's pure cores: the tree, sessions, watches, ACLs, request checks, and their join.

Nothing here does IO or reads a clock; time comes in as an argument. The
runtime (coord.server.runtime) carries out what these decide.
"""
