"""The coordination service: `coord.server`, `coord.client`, and the pieces both share.

`coord.server` and `coord.client` are the repository's top-level `server/`
and `client/` folders (linked here, so that the installed package is the one
name `coord`). The modules directly in `coord` (paths, errors, wire messages,
framing) do no IO, read no clock and draw no randomness; both sides import them.
"""
