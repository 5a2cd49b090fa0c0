"""The native msgpack wire's codec for the core's output (see codec.py)."""
