"""The jute type language: a record is declared once, as its field list.

A record is a class whose annotations are jute types, in wire order; it reads
like zookeeper.jute:

    @record
    class CreateRequest(Record):
        path: UString
        data: Buffer
        acl: Vector[ACL]
        flags: Int

The types: Int (4 bytes), Long (8), Bool (1), Buffer and UString (an int length,
-1 for null, then the bytes), Vector[T] (an int count, -1 for null, then the
items), a nested record by its class, SessionId (a long on the wire, our
unsigned 64-bit id in Python) and TrailingBool (a last bool that older peers
leave out: None when absent, not written when None). A class that lives
elsewhere (coord.messages.Stat) gets its layout from `layout(cls, **fields)`.
Each alias is the Python type mypy checks, annotated with the JuteType the
codec is built from, so the one line serves both. Declare records at module
level: the annotations are resolved in the module's globals.

`@record` makes the class a frozen slotted dataclass and, once at import, has
`jute_codegen` write its reader and writer: `Cls.unpack_from(data, pos)` ->
(record, offset after it), raising JuteDecodeError and nothing else on bad
bytes, and `record.pack_into(out)`. `Record` adds `to_bytes`, `from_bytes` and
`read(reader)` on top.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import (
    Annotated,
    Any,
    Final,
    Self,
    TypeAlias,
    TypeVar,
    dataclass_transform,
    get_args,
    get_origin,
    get_type_hints,
)

from coord.server.zk.jute_codegen import (
    TRAILING_BOOL,
    VECTOR,
    Bytes,
    Codec,
    Fixed,
    JuteType,
    Nested,
    VectorOf,
    compile_codec,
    compile_init,
)

T = TypeVar("T")
R = TypeVar("R")

_LONG_RANGE: Final = 1 << 64


def to_signed64(value: int) -> int:
    """A 64-bit id as jute's signed long (our session ids use the top bit for ids >= 128)."""
    return value - _LONG_RANGE if value >= 1 << 63 else value


def to_unsigned64(value: int) -> int:
    """The inverse of `to_signed64`: a signed long from the wire back to our id."""
    return value + _LONG_RANGE if value < 0 else value


Int: TypeAlias = Annotated[int, Fixed("int", "i")]
Long: TypeAlias = Annotated[int, Fixed("long", "q")]
Bool: TypeAlias = Annotated[bool, Fixed("bool", "?")]
SessionId: TypeAlias = Annotated[int, Fixed("long", "q", unsigned=True)]
Buffer: TypeAlias = Annotated[bytes | None, Bytes("buffer", text=False)]
UString: TypeAlias = Annotated[str | None, Bytes("ustring", text=True)]
Vector: TypeAlias = Annotated[list[T] | None, VECTOR]
TrailingBool: TypeAlias = Annotated[bool | None, TRAILING_BOOL]


_CODECS: dict[type, Codec] = {}


def declared() -> tuple[Codec, ...]:
    """Every layout declared so far, in order (the property tests round-trip each)."""
    return tuple(_CODECS.values())


def fixed_format(cls: type) -> str:
    """The struct letters of a record whose fields are all plain fixed-width ("iqi" for
    ReplyHeader), for hot paths that pack or unpack it in place (framing, multi)."""
    codes = []
    for name, kind in _CODECS[cls].fields:
        if not isinstance(kind, Fixed) or kind.unsigned:
            raise TypeError(f"{cls.__name__}.{name} is not a plain fixed-width field")
        codes.append(kind.code)
    return "".join(codes)


def jute_type(hint: Any, where: str) -> JuteType:
    """The jute type an annotation names; TypeError (at import) for anything else."""
    if get_origin(hint) is Annotated:
        base, *extras = get_args(hint)
        marks = [m for m in extras if isinstance(m, JuteType)]
        if marks == [VECTOR]:
            (items,) = [a for a in get_args(base) if a is not type(None)]  # list[X] | None
            return VectorOf(jute_type(get_args(items)[0], f"{where}[]"))
        if len(marks) == 1:
            return marks[0]
    codec = _CODECS.get(hint)
    if codec is None:
        raise TypeError(f"{where}: {hint!r} is not a jute type")
    return Nested(codec)


# --------------------------------------------------------------------------
# Declaring records


class Record:
    """Base of the jute records; declare one with `@record`."""

    __slots__ = ()

    @classmethod
    def unpack_from(cls, data: bytes, pos: int = 0) -> tuple[Self, int]:
        """The record at `pos` in `data` and the offset after it (JuteDecodeError if absent)."""
        raise NotImplementedError(f"{cls.__name__} is not declared with @record")

    def pack_into(self, out: bytearray) -> None:
        """Appends the record's bytes to `out`."""
        raise NotImplementedError(f"{type(self).__name__} is not declared with @record")

    def to_bytes(self) -> bytes:
        out = bytearray()
        self.pack_into(out)
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Self:
        return cls.unpack_from(bytes(data), 0)[0]

    @classmethod
    def read(cls, inp: Reader) -> Self:
        """The record at the reader's position, which moves past it."""
        value, inp.pos = cls.unpack_from(inp.data, inp.pos)
        return value


class Reader:
    """A position in a packet, for records read one after another (a header, then a body)."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes | bytearray | memoryview, pos: int = 0) -> None:
        self.data = bytes(data)
        self.pos = pos

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos


@dataclass_transform(frozen_default=True)
def record(cls: type[R]) -> type[R]:
    """Declares a jute record: a frozen slotted dataclass whose annotations are jute types."""
    made = dataclass(frozen=True, slots=True)(cls)
    hints = get_type_hints(made, include_extras=True)
    fields = dataclasses.fields(made)  # type: ignore[arg-type]
    where = cls.__name__
    codec = _declare(
        made, [(f.name, jute_type(hints[f.name], f"{where}.{f.name}")) for f in fields]
    )
    # setattr: mypy refuses assigning to a method, which is what these do on purpose.
    setattr(made, "unpack_from", staticmethod(codec.unpack))  # noqa: B010
    setattr(made, "pack_into", codec.pack)  # noqa: B010
    if all(f.init and not f.kw_only and f.default_factory is dataclasses.MISSING for f in fields):
        init = compile_init(made, [(f.name, f.default) for f in fields])
        setattr(made, "__init__", init)  # noqa: B010
    return made


def layout(cls: type, **fields: Any) -> Codec:
    """The jute layout of a class declared elsewhere (a NamedTuple or dataclass built
    positionally): its fields in order, each with its jute type."""
    known = getattr(cls, "_fields", None) or [f.name for f in dataclasses.fields(cls)]
    if list(fields) != list(known):
        raise TypeError(f"{cls.__name__}: layout {list(fields)} is not its fields {known}")
    return _declare(cls, [(n, jute_type(t, f"{cls.__name__}.{n}")) for n, t in fields.items()])


def _declare(cls: type, fields: list[tuple[str, JuteType]]) -> Codec:
    codec = compile_codec(cls, tuple(fields))
    _CODECS[cls] = codec
    return codec
