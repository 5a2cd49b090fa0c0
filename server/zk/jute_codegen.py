"""The code generated from a jute record's field list: its reader and its writer.

`compile_codec(cls, fields)` takes a record's fields in wire order, each with
its JuteType, and returns a Codec: two plain functions written out for that
record alone and compiled once, at import. Why: the ZooKeeper port decodes a
request and encodes a reply per call, and walking a field table costs a Python
call per field. The generated text reads each run of fixed-width fields (with
the length prefix of the buffer or vector that follows, and nested records
flattened in place) with one struct call, inlines buffers and vector loops, and
fills the dataclass through its slots (the frozen dataclass __init__ pays an
object.__setattr__ by name per field; `compile_init` gives records an __init__
that fills the slots too, for the replies built per call). `Codec.source` is
the text, and tracebacks show its lines. `jute_schema` is the declaring side.

The reader owns the boundary checks, written once here for every record: a
length or count must be -1 (null) or fit the bytes left (a vector item takes at
least one byte, so every count, at every level of nesting, is bounded by the
packet), strings must be UTF-8, and a record that runs out of bytes is refused
(struct.error, caught once per record). Each raises JuteDecodeError; no other
exception leaves a generated reader.
"""

from __future__ import annotations

import dataclasses
import linecache
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from coord.errors import MalformedFrameError

_LONG_RANGE: Final = 1 << 64


class JuteDecodeError(MalformedFrameError):
    """Bytes that are not the record they should be (truncated, bad length, bad UTF-8)."""


# --------------------------------------------------------------------------
# The types a field can have


class JuteType:
    """How one field travels; the generated code is specialised on it."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Fixed(JuteType):
    """A fixed-width primitive: `code` is its struct format letter."""

    name: str
    code: str
    unsigned: bool = False  # a session id: signed on the wire, unsigned here


@dataclass(frozen=True, slots=True)
class Bytes(JuteType):
    """buffer (bytes) or ustring (UTF-8 text): an int length, -1 for null, then the bytes."""

    name: str
    text: bool


@dataclass(frozen=True, slots=True)
class VectorOf(JuteType):
    """vector<item>: an int count, -1 for null, then the items."""

    item: JuteType


@dataclass(frozen=True, slots=True)
class Nested(JuteType):
    """A record inside a record: its fields travel in place, with no prefix."""

    codec: Codec


@dataclass(frozen=True, slots=True)
class _Mark(JuteType):
    """A type that needs more than itself: the vector marker, the trailing bool."""

    name: str


VECTOR: Final = _Mark("vector")
TRAILING_BOOL: Final = _Mark("trailing bool")
"""A last bool that older peers leave out: None when absent, not written when None
(ZooKeeper's readOnly flag in the handshake)."""


@dataclass(frozen=True, slots=True, eq=False)
class Codec:
    """A record's layout and the two functions generated from it."""

    cls: type
    fields: tuple[tuple[str, JuteType], ...]
    unpack: Callable[[bytes, int], tuple[Any, int]]
    pack: Callable[[Any, bytearray], None]
    source: str = field(repr=False)


# --------------------------------------------------------------------------
# Code generation


def _short(exc: struct.error) -> JuteDecodeError:
    return JuteDecodeError(f"record ends early: {exc}")


def _bad_length(length: int, pos: int, size: int) -> JuteDecodeError:
    return JuteDecodeError(
        f"buffer length {length} at offset {pos - 4} does not fit the {size - pos} bytes left"
    )


def _bad_count(count: int, left: int) -> JuteDecodeError:
    return JuteDecodeError(f"vector of {count} items does not fit {left} bytes")


def _not_utf8(exc: UnicodeDecodeError) -> JuteDecodeError:
    return JuteDecodeError(f"string is not UTF-8: {exc}")


class _Function:
    """The lines of one generated function, the objects it names, and fresh local names."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {}
        self._by_key: dict[Any, str] = {}
        self._count = 0

    def local(self, stem: str) -> str:
        """A local name used once: `stem` (a field's name, or n, v, item) and a count, so
        that it can shadow neither another local nor a builtin the code calls."""
        self._count += 1
        return f"{stem}_{self._count}"

    def name(self, key: Any, value: Any, stem: str) -> str:
        """A global of the generated code bound to `value` (one name per key)."""
        if key not in self._by_key:
            self._by_key[key] = f"_{stem}{len(self._by_key)}"
            self.names[self._by_key[key]] = value
        return self._by_key[key]

    def add(self, indent: int, *lines: str) -> None:
        self.lines.extend("    " * indent + line for line in lines)


@dataclass(slots=True)
class _Step:
    """One piece of a generated body. A fixed-width step (`code` set) joins the run of
    struct values around it; any other step emits lines, and one that moves through
    the bytes (`moves`) ends the run first. Reading: a fixed step assigns `value` and
    then runs `after`; writing: it packs the expression `value`."""

    code: str = ""
    value: str = ""
    after: tuple[str, ...] = ()
    emit: Callable[[int], None] | None = None
    moves: bool = True


def _lower(steps: list[_Step], fn: _Function, indent: int, *, reading: bool) -> None:
    """Emits `steps`, one struct call for each run of fixed-width steps."""
    run: list[_Step] = []
    held: list[_Step] = []  # steps that only compute: emitted once the run they follow is read

    def flush() -> None:
        if run:
            layout = struct.Struct(">" + "".join(s.code for s in run))
            values = ", ".join(s.value for s in run)
            if reading:
                unpack = fn.name(("unpack", layout.format), layout.unpack_from, "unpack")
                fn.add(indent, f"{values}, = {unpack}(data, pos)", f"pos += {layout.size}")
                for step in run:
                    fn.add(indent, *step.after)
            else:
                pack = fn.name(("pack", layout.format), layout.pack, "pack")
                fn.add(indent, f"out += {pack}({values})")
            run.clear()
        for step in held:
            assert step.emit is not None
            step.emit(indent)
        held.clear()

    for step in steps:
        if step.code:
            run.append(step)
        elif step.moves:
            flush()
            assert step.emit is not None
            step.emit(indent)
        elif reading and run:
            held.append(step)
        else:
            assert step.emit is not None
            step.emit(indent)  # writing: computing before the run's pack is always right
    flush()


def _read_steps(kind: JuteType, fn: _Function, target: str) -> list[_Step]:
    """Steps that leave the value of `kind` in the local `target`."""
    if isinstance(kind, Fixed):
        after = (f"if {target} < 0: {target} += {_LONG_RANGE}",) if kind.unsigned else ()
        return [_Step(kind.code, target, after)]
    if isinstance(kind, Bytes):
        length = fn.local("n")
        decode = ".decode()" if kind.text else ""

        def tail(indent: int) -> None:
            fn.add(indent, f"if 0 <= {length} <= size - pos:")
            fn.add(indent + 1, f"{target} = data[pos:pos + {length}]{decode}", f"pos += {length}")
            fn.add(indent, f"elif {length} == -1:")
            fn.add(indent + 1, f"{target} = None")
            fn.add(indent, "else:")
            fn.add(indent + 1, f"raise _bad_length({length}, pos, size)")

        return [_Step("i", length), _Step(emit=tail)]
    if isinstance(kind, VectorOf):
        count, item = fn.local("n"), fn.local("item")

        def loop(indent: int) -> None:
            fn.add(indent, f"if 0 <= {count} <= size - pos:")
            fn.add(indent + 1, f"{target} = []", f"for _ in range({count}):")
            _lower(_read_steps(kind.item, fn, item), fn, indent + 2, reading=True)
            fn.add(indent + 2, f"{target}.append({item})")
            fn.add(indent, f"elif {count} == -1:")
            fn.add(indent + 1, f"{target} = None")
            fn.add(indent, "else:")
            fn.add(indent + 1, f"raise _bad_count({count}, size - pos)")

        return [_Step("i", count), _Step(emit=loop)]
    if isinstance(kind, Nested):
        return _record_read_steps(kind.codec.cls, kind.codec.fields, fn, target)
    if kind is TRAILING_BOOL:

        def trailing(indent: int) -> None:
            unpack = fn.name(("unpack", ">?"), struct.Struct(">?").unpack_from, "unpack")
            fn.add(indent, "if pos < size:")
            fn.add(indent + 1, f"{target}, = {unpack}(data, pos)", "pos += 1")
            fn.add(indent, "else:")
            fn.add(indent + 1, f"{target} = None")

        return [_Step(emit=trailing)]
    raise TypeError(f"no reader for {kind!r}")


def _record_read_steps(
    cls: type, fields: tuple[tuple[str, JuteType], ...], fn: _Function, target: str
) -> list[_Step]:
    values = [fn.local(name) for name, _ in fields]
    steps = _each(_read_steps, fields, values, fn)
    owner = fn.name(cls, cls, "cls")

    def build(indent: int) -> None:
        if issubclass(cls, tuple):
            new = fn.name("tuple_new", tuple.__new__, "tuple_new")
            fn.add(indent, f"{target} = {new}({owner}, ({', '.join(values)},))")
            return
        new = fn.name("object_new", object.__new__, "object_new")
        fn.add(indent, f"{target} = {new}({owner})")
        for (name, _), value in zip(fields, values, strict=True):
            setter = fn.name((cls, name), cls.__dict__[name].__set__, "set")
            fn.add(indent, f"{setter}({target}, {value})")

    return [*steps, _Step(emit=build, moves=False)]


def _write_steps(kind: JuteType, fn: _Function, source: str) -> list[_Step]:
    """Steps that append the value of expression `source`, of type `kind`."""
    if isinstance(kind, Fixed):
        if not kind.unsigned:
            return [_Step(kind.code, source)]
        value = fn.local("v")

        def sign(indent: int) -> None:
            fn.add(indent, f"{value} = {source}")
            fn.add(indent, f"if {value} >= {1 << 63}: {value} -= {_LONG_RANGE}")

        return [_Step(emit=sign, moves=False), _Step(kind.code, value)]
    if isinstance(kind, Bytes | VectorOf):
        value, length = fn.local("v"), fn.local("n")

        def measure(indent: int) -> None:
            fn.add(indent, f"{value} = {source}")
            if isinstance(kind, Bytes) and kind.text:
                fn.add(indent, f"if {value} is None:")
                fn.add(indent + 1, f"{length} = -1")
                fn.add(indent, "else:")
                fn.add(indent + 1, f"{value} = {value}.encode()", f"{length} = len({value})")
            else:
                fn.add(indent, f"{length} = -1 if {value} is None else len({value})")

        def tail(indent: int) -> None:
            fn.add(indent, f"if {value} is not None:")
            if isinstance(kind, Bytes):
                fn.add(indent + 1, f"out += {value}")
                return
            item = fn.local("item")
            fn.add(indent + 1, f"for {item} in {value}:")
            _lower(_write_steps(kind.item, fn, item), fn, indent + 2, reading=False)

        return [_Step(emit=measure, moves=False), _Step("i", length), _Step(emit=tail)]
    if isinstance(kind, Nested):
        holder = fn.local("r")
        return [
            _Step(emit=lambda indent: fn.add(indent, f"{holder} = {source}"), moves=False),
            *_record_write_steps(kind.codec.cls, kind.codec.fields, fn, holder),
        ]
    if kind is TRAILING_BOOL:

        def trailing(indent: int) -> None:
            pack = fn.name(("pack", ">?"), struct.Struct(">?").pack, "pack")
            fn.add(indent, f"if {source} is not None:")
            fn.add(indent + 1, f"out += {pack}({source})")

        return [_Step(emit=trailing)]
    raise TypeError(f"no writer for {kind!r}")


def _record_write_steps(
    cls: type, fields: tuple[tuple[str, JuteType], ...], fn: _Function, source: str
) -> list[_Step]:
    if not issubclass(cls, tuple):
        return _each(_write_steps, fields, [f"{source}.{name}" for name, _ in fields], fn)
    values = [fn.local(name) for name, _ in fields]

    def split(indent: int) -> None:
        fn.add(indent, f"{', '.join(values)}, = {source}")  # a NamedTuple: one unpacking

    return [_Step(emit=split, moves=False), *_each(_write_steps, fields, values, fn)]


def _each(
    steps: Callable[[JuteType, _Function, str], list[_Step]],
    fields: tuple[tuple[str, JuteType], ...],
    names: list[str],
    fn: _Function,
) -> list[_Step]:
    """The steps of every field, each with its own local or expression."""
    return [s for (_, kind), name in zip(fields, names, strict=True) for s in steps(kind, fn, name)]


def compile_codec(cls: type, fields: tuple[tuple[str, JuteType], ...]) -> Codec:
    """The reader and writer of `cls`, built positionally from `fields` (wire order)."""
    for index, (name, kind) in enumerate(fields):
        if kind is TRAILING_BOOL and index != len(fields) - 1:
            raise TypeError(f"{cls.__name__}.{name}: a TrailingBool must be the last field")
        if isinstance(kind, Nested) and any(k is TRAILING_BOOL for _, k in kind.codec.fields):
            raise TypeError(f"{cls.__name__}.{name}: a record with a TrailingBool cannot nest")
    fn = _Function()
    fn.add(0, "def unpack(data, pos=0):")
    fn.add(1, "if type(data) is not bytes:", "    data = bytes(data)", "size = len(data)", "try:")
    _lower(_record_read_steps(cls, fields, fn, "result"), fn, 2, reading=True)
    fn.add(1, "except _struct_error as exc:", "    raise _short(exc) from None")
    fn.add(1, "except UnicodeDecodeError as exc:", "    raise _not_utf8(exc) from None")
    fn.add(1, "return result, pos", "")
    fn.add(0, "def pack(obj, out):")
    _lower(_record_write_steps(cls, fields, fn, "obj"), fn, 1, reading=False)
    fn.add(1, "return None")
    source = "\n".join(fn.lines) + "\n"
    namespace = _run(source, f"<jute {cls.__module__}.{cls.__qualname__}>", fn.names)
    return Codec(cls, fields, namespace["unpack"], namespace["pack"], source)


def _run(source: str, filename: str, names: dict[str, Any]) -> dict[str, Any]:
    """Compiles generated `source` with `names` as its globals; tracebacks show its lines."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {
        "_struct_error": struct.error,
        "_short": _short,
        "_bad_length": _bad_length,
        "_bad_count": _bad_count,
        "_not_utf8": _not_utf8,
        **names,
    }
    exec(compile(source, filename, "exec"), namespace)
    return namespace


def compile_init(cls: type, fields: list[tuple[str, Any]]) -> Callable[..., None]:
    """An __init__ for the frozen slotted dataclass `cls` that fills its slots directly:
    the dataclass's signature and result at about half the cost (the frozen one pays an
    object.__setattr__ by name per field), and replies are built per call. `fields` are
    (name, default or dataclasses.MISSING), in order."""
    fn = _Function()
    params = []
    for name, default in fields:
        given = default is not dataclasses.MISSING
        params.append(f"{name}={fn.name(('default', name), default, 'default')}" if given else name)
    fn.add(0, f"def __init__(self, {', '.join(params)}):")
    for name, _ in fields:
        fn.add(1, f"{fn.name(name, cls.__dict__[name].__set__, 'set')}(self, {name})")
    fn.add(1, "return None")
    filename = f"<jute {cls.__module__}.{cls.__qualname__}.__init__>"
    namespace = _run("\n".join(fn.lines) + "\n", filename, fn.names)
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init
