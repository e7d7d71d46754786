"""The live WebSocket: one answer per frame, errors in-band, a newer model takes over at once."""

from __future__ import annotations

import pytest
from starlette.websockets import WebSocketDisconnect

from tests.conftest import jpeg_bytes, make_project, photos, train, upload


def test_live_socket_answers_every_frame_and_survives_bad_ones(client):
    pid, (a, b) = make_project(client, classes=("ants", "bees"))
    with client.websocket_connect(f"/api/projects/{pid}/live") as ws:
        ws.send_bytes(jpeg_bytes())
        assert "no trained model" in ws.receive_json()["error"]
    upload(client, a, photos("hymenoptera", "train", "ants", limit=6))
    upload(client, b, photos("hymenoptera", "train", "bees", limit=6))
    first = train(client, pid, epochs=3)
    frame = photos("hymenoptera", "val", "bees", limit=1)[0].read_bytes()
    with client.websocket_connect(f"/api/projects/{pid}/live") as ws:
        ws.send_bytes(frame)
        answer = ws.receive_json()
        assert answer["frame"] == 1 and answer["model_id"] == first["model_id"]
        assert {p["label"] for p in answer["predictions"]} == {"ants", "bees"}
        assert abs(sum(p["score"] for p in answer["predictions"]) - 1) < 1e-5
        ws.send_bytes(b"garbage")
        assert "not an image" in ws.receive_json()["error"]
        ws.send_text("hello")
        assert "binary" in ws.receive_json()["error"]
        second = train(client, pid, epochs=3)
        ws.send_bytes(frame)
        answer = ws.receive_json()
        assert answer["frame"] == 4 and answer["model_id"] == second["model_id"] != first["model_id"]
        assert answer["model_version"] == 2


def test_live_socket_for_a_missing_project_is_refused(client):
    # Refused at the handshake, exactly like another user's project: nobody learns which ids exist.
    for pid in (999, 2**63):
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(f"/api/projects/{pid}/live"):
            pass
        assert refused.value.code == 1008


def test_openapi_documents_the_live_protocol(client):
    schema = client.get("/openapi.json").json()
    assert "/api/projects/{id}/live" in schema["info"]["description"]
