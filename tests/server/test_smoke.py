from coord.messages import OpCode
from tests.rawclient import RawClient


async def test_create_get_roundtrip(coord_server):
    client, response = await RawClient.connect(coord_server.port)
    assert response.session_id != 0
    assert len(response.password) == 16
    created = await client.result(OpCode.CREATE, {"path": "/a", "data": b"hello"})
    assert created.path == "/a"
    node = await client.result(OpCode.GET_DATA, {"path": "/a"})
    assert node.data == b"hello"
    await client.aclose()
