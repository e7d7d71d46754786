"""Live predictions over a WebSocket: the page sends small JPEG frames, the server answers each.

Protocol (also in the OpenAPI description and the README), at `/api/projects/{id}/live`:
the client sends one binary message per frame (a JPEG, PNG or WebP image) and waits for the answer
before sending the next (at most one frame in flight, so a slow link never builds a backlog).
Each answer is a JSON text message:
`{"frame": n, "model_id", "model_version", "predictions": [{"label", "score"}], "label", "unknown",
"similarity", "unknown_threshold", "server_ms"}` (the fields of `POST /predict`),
or `{"frame": n, "error": "..."}` when the frame cannot be used (no model yet, not an image);
the socket stays open after an error. A new current model takes over from the next frame.
The handshake needs the same sign-in as the API (session cookie or `Authorization: Bearer`); for a project
you may not see it is refused (HTTP 403, close code 1008), as it is for a cross-site `Origin`.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool

from app import access, crud, images
from app.api.deps import MAX_ID
from app.db import session_scope
from app.inference import NoModel
from app.security import NotAuthenticated, identify
from app.services import Services

router = APIRouter()

# Webcam frames are small; a bigger message is a client bug or abuse.
MAX_FRAME_BYTES = 4 * 1024 * 1024
RECHECK_S = 5.0


def predict_frame(services: Services, project_id: int, data: bytes) -> dict:
    start = time.perf_counter()
    model = services.models.current(project_id)
    decoded = images.decode(data, max_bytes=MAX_FRAME_BYTES, max_pixels=services.settings.max_image_pixels,
                            min_side=2 * model.input_size)
    answer = model.answer(model.predict([decoded.image])[0])
    return {**answer, "server_ms": round((time.perf_counter() - start) * 1000, 1)}


def may_watch(services: Services, websocket: WebSocket, project_id: int) -> bool:
    """The socket's actor (its session cookie or token) may view the project."""
    if not 1 <= project_id <= MAX_ID:
        return False
    with session_scope(services.session_factory) as session:
        try:
            actor = identify(websocket, session, services.settings)
            if actor is None:
                return False
            access.project(session, actor, project_id)
        except (NotAuthenticated, crud.NotFound):
            return False
    return True


@router.websocket("/api/projects/{project_id}/live")
async def live(websocket: WebSocket, project_id: int):
    services: Services = websocket.app.state.services
    if not await run_in_threadpool(may_watch, services, websocket, project_id):
        # Closing before accepting answers the handshake with 403: nobody learns whether the project exists.
        await websocket.close(code=1008)
        return
    await websocket.accept()
    frame = 0
    checked = time.monotonic()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            frame += 1
            if time.monotonic() - checked > RECHECK_S:  # a member removed meanwhile stops seeing answers
                if not await run_in_threadpool(may_watch, services, websocket, project_id):
                    await websocket.close(code=1008)
                    return
                checked = time.monotonic()
            if data is None:
                await websocket.send_json({"frame": frame, "error": "send each frame as a binary message"})
                continue
            try:
                answer = await run_in_threadpool(predict_frame, services, project_id, data)
            except (NoModel, crud.NotFound, images.ImageRejected) as exc:
                answer = {"error": str(exc)}
            await websocket.send_json({"frame": frame, **answer})
    except WebSocketDisconnect:
        return
