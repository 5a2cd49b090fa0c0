"""Shared, pure pieces of the coordination service: paths, errors, wire messages, framing.

Nothing in this package does IO, reads a clock or draws randomness; both the
server and the client import it.
"""
