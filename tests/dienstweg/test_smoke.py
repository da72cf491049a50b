from tests.conftest import verified_client


def test_verified_member_sees_home(network):
    client = verified_client(network.anna)
    response = client.get("/")
    assert response.status_code == 200
    assert "Guten Tag, Anna Albers" in response.content.decode()
