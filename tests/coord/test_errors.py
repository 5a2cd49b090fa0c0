"""Error codes and their wire form: the client must raise what the server raised."""

from __future__ import annotations

import msgpack
import pytest

from coord import errors
from coord.errors import (
    BadArgumentsError,
    BadVersionError,
    CoordError,
    DataTooLargeError,
    FrameTooLargeError,
    InvalidPathError,
    InvalidTTLError,
    KeeperError,
    MalformedFrameError,
    NoNodeError,
    ProtocolError,
    ServerSystemError,
    error_for_code,
)

REGISTERED = sorted(KeeperError.by_code.items())


def test_codes_are_unique_per_class():
    classes = [cls for _, cls in REGISTERED]
    assert len(set(classes)) == len(classes)
    for code, cls in REGISTERED:
        assert cls.code == code


def test_every_keeper_error_class_in_the_module_is_registered():
    declared = {
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, KeeperError) and obj is not KeeperError
    }
    assert declared == set(KeeperError.by_code.values())


def test_zookeeper_numbers():
    assert NoNodeError.code == -101
    assert BadVersionError.code == -103
    assert errors.NodeExistsError.code == -110
    assert errors.NotEmptyError.code == -111
    assert errors.SessionExpiredError.code == -112
    assert errors.NoWatcherError.code == -121
    assert errors.RolledBackError.code == -203


@pytest.mark.parametrize(("code", "cls"), REGISTERED, ids=[c.__name__ for _, c in REGISTERED])
def test_wire_round_trip_keeps_everything(code, cls):
    err = cls(f"{cls.__name__} happened", path="/some/path", expected=3, actual=[1, "x"])
    # Through msgpack, as it really travels.
    details = msgpack.unpackb(msgpack.packb(err.to_wire()), raw=False)
    back = KeeperError.from_wire(code, details)
    assert type(back) is cls
    assert back.code == code
    assert back.message == err.message
    assert str(back) == err.message
    assert back.path == "/some/path"
    assert back.expected == 3
    assert back.actual == [1, "x"]


@pytest.mark.parametrize(("code", "cls"), REGISTERED, ids=[c.__name__ for _, c in REGISTERED])
def test_round_trip_without_optional_details(code, cls):
    err = cls("plain")
    assert err.to_wire() == {"message": "plain"}
    back = KeeperError.from_wire(code, err.to_wire())
    assert type(back) is cls
    assert (back.message, back.path, back.expected, back.actual) == ("plain", None, None, None)


def test_falsy_details_survive():
    err = BadVersionError("v", path="", expected=0, actual=False)
    wire = err.to_wire()
    assert wire == {"message": "v", "path": "", "expected": 0, "actual": False}
    back = KeeperError.from_wire(BadVersionError.code, wire)
    assert (back.path, back.expected, back.actual) == ("", 0, False)


def test_default_message_is_the_class_name():
    assert NoNodeError().message == "NoNodeError"
    assert str(NoNodeError()) == "NoNodeError"


def test_unknown_code_gives_keeper_error_with_that_code():
    back = KeeperError.from_wire(-9999, {"message": "mystery", "path": "/p"})
    assert type(back) is KeeperError
    assert back.code == -9999
    assert back.message == "mystery"
    assert back.path == "/p"
    # The class attribute is untouched.
    assert KeeperError.code == -1
    assert error_for_code(-9999) is KeeperError


@pytest.mark.parametrize("details", [None, "a string", [1, 2], {}])
def test_details_of_any_shape_are_tolerated(details):
    back = KeeperError.from_wire(NoNodeError.code, details)
    assert type(back) is NoNodeError
    assert back.message == f"error code {NoNodeError.code}"


def test_error_for_code():
    for code, cls in REGISTERED:
        assert error_for_code(code) is cls
    assert error_for_code(-1) is ServerSystemError


def test_families():
    assert issubclass(FrameTooLargeError, ProtocolError)
    assert issubclass(MalformedFrameError, ProtocolError)
    assert not issubclass(ProtocolError, KeeperError)
    assert issubclass(KeeperError, CoordError)
    assert issubclass(ProtocolError, CoordError)
    for cls in (InvalidPathError, DataTooLargeError, InvalidTTLError):
        assert issubclass(cls, BadArgumentsError)
        assert cls.code != BadArgumentsError.code
