"""Durable storage, the pure half: how txns, log records and snapshots are laid out in bytes,
and what start-up makes of the files it finds (recovery.py).

Nothing here touches a file: these modules turn values into bytes and back,
judge whether bytes are whole, and plan recovery from a data directory's
files. The file IO (segments, fsync, rename, purge, the lock file) lives in
server/runtime/disk.py, and its in-memory twin in server/testing/memory_disk.py.
"""
