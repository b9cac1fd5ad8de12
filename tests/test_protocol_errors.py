"""One error shape per protocol: the dock's and the archive's ProtocolError share errors.ProtocolError,
message first, then the HTTP status and a short code, and neither catches the other's."""

from __future__ import annotations

import pytest

from appliance import errors
from appliance.dock import protocol as dock
from sync import protocol as archive


@pytest.mark.parametrize("cls", [dock.ProtocolError, archive.ProtocolError])
def test_message_first_then_status(cls):
    exc = cls("bad nonce", 401)
    assert isinstance(exc, errors.ProtocolError) and isinstance(exc, errors.KluisError)
    assert (str(exc), exc.message, exc.status, exc.code) == ("bad nonce", "bad nonce", 401, "malformed")
    assert cls("x").status == 400


def test_the_protocols_do_not_catch_each_other():
    with pytest.raises(archive.ProtocolError):
        try:
            raise archive.ProtocolError("from the archive", 502)
        except dock.ProtocolError:
            pytest.fail("the dock caught the archive's error")
    assert not issubclass(dock.ProtocolError, archive.ProtocolError)  # and the other way round
    assert dock.ProtocolError("no", 403, "wrong_device").body() == {
        "error": {"code": "wrong_device", "message": "no"}}
