from __future__ import annotations

from enum import Enum
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from app import access, images, webapp
from app.api import errors
from app.api.deps import ActorDep, Id, ServicesDep, SessionDep
from app.api.samples import read_upload
from app.exports import NotOffered, download_name, export_model
from app.schemas import PredictOut
from app.services import Services

# Every route names a project by id.
router = APIRouter(prefix="/api/projects", tags=["prediction"], responses=errors.responses(404, 422))

NO_MODEL = errors.error(409, "the project has no trained model yet")


@router.post("/{project_id}/predict", response_model=PredictOut,
             responses={**NO_MODEL, **errors.error(422, "the file is not a valid image, or the form does not match")})
def predict(project_id: Id, file: Annotated[UploadFile, File()], services: ServicesDep, session: SessionDep,
            actor: ActorDep,
            unknown_threshold: Annotated[float | None, Query(
                ge=-1, le=1, description="override the model's threshold for this request")] = None):
    """Classes sorted by score (summing to 1); `label` is "unknown" when the photo is less similar to
    the training images than the model's threshold ("none of these")."""
    access.project(session, actor, project_id)
    session.close()  # the answer needs no database: free the connection before the network runs
    return answer_upload(services, project_id, file, unknown_threshold)


def answer_upload(services: Services, project_id: int, file: UploadFile, threshold: float | None = None) -> dict:
    """The current model's answer for one uploaded photo (also used by public share links)."""
    model = services.models.current(project_id)
    settings = services.settings
    try:
        decoded = images.decode(read_upload(file, settings.max_upload_bytes), max_bytes=settings.max_upload_bytes,
                                max_pixels=settings.max_image_pixels, min_side=2 * model.input_size)
    except images.ImageRejected as exc:
        raise HTTPException(422, f"{file.filename}: {exc}") from None
    return model.answer(model.predict([decoded.image])[0], threshold)


class ExportFormat(str, Enum):
    onnx = "onnx"
    onnx_int8 = "onnx-int8"
    pt2 = "pt2"
    torchscript = "torchscript"
    webapp = "webapp"


# pt2 is a zip inside, but says so to no browser: Safari unpacks downloaded zips. The webapp zip is one to unpack.
MEDIA = {"onnx": "application/octet-stream", "onnx-int8": "application/octet-stream",
         "pt2": "application/octet-stream", "torchscript": "application/octet-stream", "webapp": "application/zip"}

DOWNLOAD_DOC = """The project's current model, backbone and head in one file, giving class probabilities.

* `onnx`: run with `onnxruntime.InferenceSession(path)`. Input `input`: float32 `N×3×S×S`, RGB in [0, 1];
  resize the image so its shorter side is S (bilinear), then center-crop S×S. S is the metadata key
  `input_size`. Output `probabilities`: `N×K`, in the order of the metadata key `labels` (a JSON list).
  Mean/std normalisation is inside the model; the metadata key `preprocessing` describes it.
  A second output, `similarity`, is the mean cosine similarity to the nearest training photos: below the
  metadata key `unknown_threshold` the photo is none of the classes.
* `onnx-int8`: the same contract as `onnx` (inputs, outputs, metadata keys), quantized to int8 by ONNX Runtime
  static quantization calibrated on the project's own photos: about a third of the size. Its
  `unknown_threshold` is the served one shifted by the mean difference quantization makes to the similarity.
* `pt2` (torch.export): `ep = torch.export.load(path, extra_files={"labels": "", "input_size": "",
  "preprocessing": "", "unknown_threshold": ""})`; `ep.module()(x)` gives the probabilities, for any batch size;
  the extra files carry the metadata as JSON text. The archive holds a second program, `with_similarity`,
  giving `(probabilities, similarity)` in one pass: `torch.export.pt2_archive._package.load_pt2(path)
  .exported_programs["with_similarity"].module()(x)` (torch.export.load returns only the first).
* `torchscript` (legacy: the pinned torch deprecates `torch.jit.save`; offered while it still loads it, use
  `pt2` instead): `torch.jit.load(path, _extra_files={"labels": "", "input_size": "", "preprocessing": ""})`;
  same input and output, and the method `similarity`; the same metadata comes back in `_extra_files`.
* `webapp`: a zip to unpack and serve with any static web server (`python -m http.server` in its folder), then
  open `index.html`: photo and webcam classification in the browser, offline, nothing fetched from elsewhere. It
  holds the `onnx` file itself (`model.onnx`), its metadata again as `model.json` (ONNX Runtime Web cannot read
  it from the file), the page, and ONNX Runtime Web's wasm files. The page prepares photos as documented above
  (the same bilinear resize as the server, no colour-profile conversion) and marks its answer with the attribute
  `data-top-label`; below `unknown_threshold` the answer is "unknown", as on the server. Its check is the `onnx`
  file's, with the zip's size.

The first download of a format (or `POST /api/models/{id}/exports`, which builds them all in the background)
builds the file and runs it in its own runtime on the model's held-out photos (at most 200), against the served
model: the top-1 agreement and the largest probability difference are then listed in `GET /api/models/{id}`
(`exports`). A file that agrees on fewer than 97% of them is not offered: 409.
"""


NOT_OFFERED = ("the project has no trained model yet, the file does not agree with the served model, or (webapp) "
               "this server lacks ONNX Runtime Web's files")


@router.get("/{project_id}/model/download", responses={**errors.error(409, NOT_OFFERED), 200: {
    "content": {"application/octet-stream": {}, "application/zip": {}}, "description": "the model file"}},
    description=DOWNLOAD_DOC, response_class=FileResponse)
async def download_model(project_id: Id, session: SessionDep, services: ServicesDep, actor: ActorDep,
                         format: Annotated[ExportFormat, Query()] = ExportFormat.onnx):
    project = access.project(session, actor, project_id)
    if project.current_model is None:
        raise HTTPException(409, "this project has no trained model yet: train it first")
    model, name = project.current_model, project.name
    # Building the file traces the network for a few seconds: keep it off the event loop.
    try:
        built = await run_in_threadpool(export_model, model, name, format.value, services=services)
    except (NotOffered, webapp.RuntimeMissing) as exc:
        raise HTTPException(409, str(exc)) from None
    return FileResponse(built.path, media_type=MEDIA[format.value],
                        filename=download_name(name, model.version, format.value))
