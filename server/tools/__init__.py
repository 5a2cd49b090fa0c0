"""Operators' tools: reading a data directory (dump-log) and launching a local ensemble."""
