'''What the "Export model" dialog says about each download format: a title, what it is for, and code that runs
the downloaded file. A format missing here (a new one in app.exports.ALL_FORMATS) still gets a tab: its name,
a plain sentence and the REST snippet.

A snippet is text with fields in «guillemets»: the page shows their values, and download.js refreshes
`file_name`, `labels` and `origin` when the model changes (a retrain renames the file), so they become spans.
'''

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Snippet:
    key: str  # names it in the page (data-testid="snippet-<format>-<key>")
    title: str
    code: str


@dataclass(frozen=True)
class FormatHelp:
    title: str
    purpose: str
    snippets: tuple[Snippet, ...] = field(default=())


@dataclass(frozen=True)
class Part:
    text: str
    fill: str | None = None  # the field it shows, when the page may change it: file_name, labels or origin
    format: str | None = None  # whose file name


PREPARE_PIL = '''\
def prepare(path):
    """As the model expects: shorter side to `size` (bilinear), center crop size x size, RGB in [0, 1]."""
    image = ImageOps.exif_transpose(Image.open(path))
    if image.mode != "RGB":  # transparency goes onto white, as on the server
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    image = image.convert("RGB")
    scale = size / min(image.size)
    w, h = (max(size, round(side * scale)) for side in image.size)
    image = image.resize((w, h), Image.BILINEAR)
    left, top = (w - size) // 2, (h - size) // 2
    image = image.crop((left, top, left + size, top + size))
    return (np.asarray(image, dtype=np.float32) / 255).transpose(2, 0, 1)[None]  # 1x3xSxS
'''

PRINT_ANSWER = '''\
order = probs.argsort()[::-1]
print("unknown" if unknown else labels[order[0]])
for i in order:
    print(f"  {labels[i]}: {probs[i]:.3f}")
'''

ONNX_PYTHON = f'''\
# python predict.py photo.jpg      (pip install onnxruntime numpy pillow)
import json
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

session = ort.InferenceSession("«file_name»", providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map  # what the file says about itself
labels = json.loads(meta["labels"])  # class names, in the order of the probabilities
size = int(meta["input_size"])
threshold = json.loads(meta["unknown_threshold"])  # below this similarity: none of the classes


{PREPARE_PIL}

probs, similarity = session.run(["probabilities", "similarity"], {{"input": prepare(sys.argv[1])}})
probs, similarity = probs[0], float(similarity[0])
unknown = threshold is not None and similarity < threshold
{PRINT_ANSWER}'''

PT2_PYTHON = f'''\
# python predict.py photo.jpg      (pip install torch numpy pillow)
import json
import sys

import numpy as np
import torch
from PIL import Image, ImageOps

extra = {{"labels": "", "input_size": "", "preprocessing": "", "unknown_threshold": ""}}
program = torch.export.load("«file_name»", extra_files=extra)  # fills `extra` with the file's metadata
model = program.module()
labels = json.loads(extra["labels"])  # class names, in the order of the probabilities
size = json.loads(extra["input_size"])


{PREPARE_PIL}

with torch.no_grad():
    probs = model(torch.from_numpy(prepare(sys.argv[1])))[0].numpy()
# The top class. For "none of these", the archive's second program `with_similarity` also gives the
# similarity to compare with extra["unknown_threshold"]: see the API docs (/docs, the download route).
unknown = False
{PRINT_ANSWER}'''

TORCHSCRIPT_PYTHON = f'''\
# python predict.py photo.jpg      (pip install torch numpy pillow)
import json
import sys

import numpy as np
import torch
from PIL import Image, ImageOps

extra = {{"labels": "", "input_size": "", "preprocessing": "", "unknown_threshold": ""}}
model = torch.jit.load("«file_name»", _extra_files=extra)  # fills `extra` with the file's metadata
labels = json.loads(extra["labels"])  # class names, in the order of the probabilities
size = json.loads(extra["input_size"])
threshold = json.loads(extra["unknown_threshold"])  # below this similarity: none of the classes


{PREPARE_PIL}

x = torch.from_numpy(prepare(sys.argv[1]))
with torch.no_grad():
    probs, similarity = model(x)[0].numpy(), float(model.similarity(x)[0])
unknown = threshold is not None and similarity < threshold
{PRINT_ANSWER}'''

WEBAPP_SHELL = '''\
unzip «file_name» -d my-classifier
cd my-classifier
python3 -m http.server 8000
# Open http://localhost:8000/index.html: photos and the webcam, classified in the browser, offline.
'''

WEBAPP_JS = '''\
// In a page of your own, with the ONNX download («file_name:onnx») next to it:
// npm install onnxruntime-web (or the ort.min.js the web app's folder carries, as the global `ort`).
import * as ort from "onnxruntime-web";

const labels = «labels»;
const size = «input_size»;
const session = await ort.InferenceSession.create("«file_name:onnx»");

// Shorter side to `size`, center crop, RGB in [0, 1], 1x3xSxS. The canvas's smoothing is close to, not
// exactly, the bilinear resize the server and the web app use.
async function prepare(file) {
  const bitmap = await createImageBitmap(file);
  const scale = size / Math.min(bitmap.width, bitmap.height);
  const w = Math.max(size, Math.round(bitmap.width * scale));
  const h = Math.max(size, Math.round(bitmap.height * scale));
  const canvas = new OffscreenCanvas(size, size);
  const context = canvas.getContext("2d");
  context.imageSmoothingQuality = "high";
  context.drawImage(bitmap, -Math.floor((w - size) / 2), -Math.floor((h - size) / 2), w, h);
  const rgba = context.getImageData(0, 0, size, size).data;
  const x = new Float32Array(3 * size * size);
  for (let i = 0; i < size * size; i++) {
    for (let c = 0; c < 3; c++) x[c * size * size + i] = rgba[4 * i + c] / 255;
  }
  return new ort.Tensor("float32", x, [1, 3, size, size]);
}

// For <input type="file" id="photo">:
document.getElementById("photo").addEventListener("change", async (event) => {
  const { probabilities } = await session.run({ input: await prepare(event.target.files[0]) });
  const probs = Array.from(probabilities.data);
  const top = probs.indexOf(Math.max(...probs));
  console.log(labels[top], probs[top].toFixed(3));
});
'''

FORMATS: dict[str, FormatHelp] = {
    "onnx": FormatHelp(
        "ONNX",
        "The full-precision model for ONNX Runtime: Python, C++, C#, Java, JavaScript, phones. The safest choice "
        "when you are not sure.",
        (Snippet("python", "Python · onnxruntime", ONNX_PYTHON),)),
    "onnx-int8": FormatHelp(
        "ONNX int8",
        "Small and fast, for phones and a Raspberry Pi: the ONNX model quantized to 8-bit integers on your own "
        "photos, about a third of the size. Runs with the same code as ONNX.",
        (Snippet("python", "Python · onnxruntime", ONNX_PYTHON),)),
    "pt2": FormatHelp(
        "PyTorch .pt2",
        "For PyTorch 2 programs (torch.export): run it, or build on it, wherever PyTorch runs. No snapclass "
        "needed.",
        (Snippet("python", "Python · torch.export", PT2_PYTHON),)),
    "torchscript": FormatHelp(
        "TorchScript (legacy)",
        "For older PyTorch code that loads models with torch.jit. PyTorch deprecates it: choose .pt2 for "
        "anything new.",
        (Snippet("python", "Python · torch.jit", TORCHSCRIPT_PYTHON),)),
    "webapp": FormatHelp(
        "Web app",
        "A web page that classifies photos and the webcam in any browser, offline: unzip it, serve the folder, "
        "open index.html. Nothing is sent anywhere.",
        (Snippet("shell", "Run it", WEBAPP_SHELL), Snippet("javascript", "JavaScript · onnxruntime-web", WEBAPP_JS))),
}


def format_help(fmt: str) -> FormatHelp:
    return FORMATS.get(fmt) or FormatHelp(fmt, f"The model as a {fmt} file, checked against this server like the "
                                               "others.")


def rest_snippet(login_required: bool) -> Snippet:
    auth = ' -H "Authorization: Bearer $SNAPCLASS_TOKEN"' if login_required else ""
    how = ("# Make a token on your account page («origin»/account#tokens), then:\n"
           "export SNAPCLASS_TOKEN=paste-the-token-here\n" if login_required else
           "# Login is off on this server, so no token is needed. Where it is on, make a token on your account\n"
           "# page (/account#tokens) and add: -H \"Authorization: Bearer $SNAPCLASS_TOKEN\"\n")
    return Snippet("curl", "curl · the REST API", (
        "# Ask this server, with the project's current model (no download needed):\n" + how +
        f"curl{auth} -F \"file=@photo.jpg\" «origin»/api/projects/«project_id»/predict\n"
        "# Answers JSON: {\"label\": …, \"predictions\": [{\"label\", \"score\"}, …], …}\n"))


REFRESHED = ("file_name", "labels", "origin")


def render(code: str, fmt: str, values: dict[str, str]) -> list[Part]:
    """`code` (a snippet of format `fmt`) with its «fields» filled; the fields the page refreshes stay marked.
    `«file_name»` is this format's file, `«file_name:onnx»` another's."""
    parts = []
    for i, piece in enumerate(re.split(r"«([\w:-]+)»", code)):
        if i % 2 == 0:
            parts.append(Part(piece))
            continue
        name, _, of = piece.partition(":")
        if name == "file_name":
            of = of or fmt
            parts.append(Part(values["file_names"].get(of, ""), name, of))
        else:
            parts.append(Part(values[name], name if name in REFRESHED else None))
    return parts


def dialog_tabs(*, formats: list[str], file_names: dict[str, str], labels: list[str], input_size: int | None,
                origin: str, project_id: int, login_required: bool) -> list[dict]:
    """One tab per download format, then one for the REST API: what the dialog template renders."""
    values = {"file_names": file_names, "labels": json.dumps(labels), "input_size": str(input_size or 224),
              "origin": origin, "project_id": str(project_id)}
    tabs = []
    known = list(FORMATS)
    for fmt in sorted(formats, key=lambda f: known.index(f) if f in known else len(known)):
        info = format_help(fmt)
        tabs.append({"format": fmt, "title": info.title, "purpose": info.purpose, "download": True,
                     "file_name": file_names.get(fmt, ""),
                     "snippets": [(s, render(s.code, fmt, values)) for s in info.snippets]})
    rest = rest_snippet(login_required)
    tabs.append({"format": "api", "title": "REST API", "download": False,
                 "purpose": "Nothing to download: send photos to this server and get its answers, from any "
                            "language or script.", "snippets": [(rest, render(rest.code, "api", values))]})
    return tabs
