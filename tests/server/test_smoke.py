from coord.messages import OpCode
from tests.rawclient import RawClient


async def test_create_get_roundtrip(coord_server):
    client, response = await RawClient.connect(coord_server.port)
    assert response["session_id"] != 0
    assert len(response["password"]) == 16
    r = await client.call(OpCode.CREATE, {"path": "/a", "data": b"hello"})
    assert r[2] == 0, r
    assert r[3][0] == "/a"
    r = await client.call(OpCode.GET_DATA, {"path": "/a"})
    assert r[3][0] == b"hello"
    await client.aclose()
