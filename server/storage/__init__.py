"""Durable storage, the pure half: how txns, log records and snapshots are laid out in bytes.

Nothing here touches a file: these modules turn values into bytes and back and
judge whether bytes are whole. The file IO (segments, fsync, rename, purge,
the lock file) lives in server/runtime/disk.py.
"""
