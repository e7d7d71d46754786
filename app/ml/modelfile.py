"""A model file that snapclass downloaded (`onnx` or `pt2`), read back into what a snapclass model is made of:
the backbone's weights, the head, the training embeddings ("none of these") and the labels.

Nothing in the file is run while it is read. A pt2 archive's weights are raw tensors described by JSON, read
here by hand: `torch.export.load` would unpickle whatever the archive holds, which runs code. An ONNX file's
initializers are plain tensors; the legacy exporter folds each BatchNorm into the convolution before it, so a
convolution's folded weight and bias come back as that convolution with an identity-like BatchNorm (the same
function), unless they equal the pretrained backbone's folded ones, which they do for every head-only model.
The rebuilt network is then checked against the ONNX file itself in ONNX Runtime (a plain tensor program, fed
from memory so that no external data file is ever opened).
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from app.ml.backbones import Backbone, Preprocessing
from app.ml.export import Classifier
from app.ml.head import head_from_arch

PT2_WEIGHTS = "archive/data/weights/"
PT2_CONFIG = PT2_WEIGHTS + "model_weights_config.json"
PT2_EXTRA = "archive/extra/"
# torch.export's serialized ScalarType numbers for the two dtypes a snapclass model holds.
PT2_DTYPES = {7: np.float32, 5: np.int64}
MAX_HEADS, MAX_HIDDEN = 32, 4096  # beyond any head snapclass trains
AGREEMENT_TOLERANCE = 1e-3  # the rebuilt network and the ONNX file, on probe images: largest |difference|


class ModelFileError(ValueError):
    """The file is not a snapclass model this server can open; the message says why in words."""


# The pretrained backbone and its feature size, for the backbone a file's metadata names (raises ModelFileError
# for one the server does not have).
Resolve = Callable[[str], tuple[Backbone, int]]


@dataclass
class Recovered:
    kind: str  # "onnx" | "pt2"
    labels: list[str]
    backbone: str
    unknown_threshold: float | None
    preprocessing: dict
    backbone_state: dict[str, torch.Tensor] | None  # None: the pretrained backbone, unchanged
    head_arch: dict
    head_state: dict[str, torch.Tensor]
    prototypes: torch.Tensor | None
    project: str | None


def metadata_fields(meta: dict[str, str]) -> tuple[list[str], str, float | None, dict, str | None]:
    """(labels, backbone, unknown_threshold, preprocessing, project) from a download's metadata."""
    if meta.get("producer") != "snapclass":
        raise ModelFileError("it is not a model downloaded from snapclass (its metadata does not say producer "
                             "snapclass)")
    try:
        labels = json.loads(meta["labels"])
        threshold = json.loads(meta.get("unknown_threshold", "null"))
        prep = json.loads(meta["preprocessing"])
        backbone = meta["backbone"]
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelFileError(f"its metadata is incomplete or damaged ({exc})") from None
    if not (isinstance(labels, list) and 2 <= len(labels) <= 1000
            and all(isinstance(x, str) and x.strip() and len(x) <= 100 for x in labels)):
        raise ModelFileError("its metadata's labels are not a list of 2 to 1000 class names")
    if len({x.strip().casefold() for x in labels}) != len(labels):
        raise ModelFileError("its metadata names one class twice")
    if threshold is not None and (type(threshold) not in (int, float) or not -1 <= threshold <= 1):
        raise ModelFileError("its metadata's unknown_threshold is not a number between -1 and 1")
    if not isinstance(prep, dict) or not isinstance(backbone, str):
        raise ModelFileError("its metadata's backbone or preprocessing is damaged")
    project = meta.get("project")
    return labels, backbone, None if threshold is None else float(threshold), prep, project


def check_preprocessing(found: dict, prep: Preprocessing) -> None:
    if found != prep.as_dict():
        raise ModelFileError("it prepares photos differently from this server's backbone "
                             f"({json.dumps(found)[:200]}), so its answers could not be reproduced")


# --- heads and the backbone's state, whichever file they came from ---

def head_from_state(state: dict[str, torch.Tensor], in_dim: int, num_classes: int) -> tuple[dict, dict]:
    """(arch, state) of the head whose weights are `state` (keys as in Head / HeadEnsemble), checked."""
    members = sorted({int(m.group(1)) for k in state if (m := re.match(r"members\.(\d+)\.", k))})
    prefixes = [f"members.{i}." for i in members] if members else [""]
    if members != list(range(len(members))) or len(prefixes) > MAX_HEADS:
        raise ModelFileError("its head is not one snapclass trains")
    arch = []
    for p in prefixes:
        first = state.get(p + "net.0.weight")
        if first is None or first.ndim != 2 or first.shape[1] != in_dim or not 1 <= first.shape[0] <= MAX_HIDDEN:
            raise ModelFileError(f"its head does not take the backbone's {in_dim} features")
        arch.append({"in_dim": in_dim, "num_classes": num_classes, "hidden": int(first.shape[0]), "dropout": 0.0})
    head_arch = {"ensemble": arch} if members else arch[0]
    head = head_from_arch(head_arch)
    try:
        head.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelFileError(f"its head's weights do not fit a snapclass head ({str(exc)[:200]})") from None
    return head_arch, {k: v.detach().clone() for k, v in head.state_dict().items()}


def backbone_keys(reference: Backbone) -> dict[str, torch.Tensor]:
    """The backbone's state without the pretrained ImageNet classifier, which no download carries."""
    return {k: v for k, v in reference.state_dict().items() if not k.startswith("imagenet_head.")}


def full_backbone_state(partial: dict[str, torch.Tensor], reference: Backbone) -> dict[str, torch.Tensor]:
    """`partial` plus the reference's ImageNet classifier: the state a fine-tuned backbone is stored as."""
    state = {k: v.detach().clone() for k, v in reference.state_dict().items()}
    state.update(partial)
    return state


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _check_state(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], what: str) -> None:
    if state.keys() != expected.keys():
        extra, missing = sorted(state.keys() - expected.keys()), sorted(expected.keys() - state.keys())
        raise ModelFileError(f"its {what} is not this server's: "
                             + (f"it has {extra[0]!r}, which the backbone has not" if extra
                                else f"it lacks {missing[0]!r}"))
    for k, v in expected.items():
        if state[k].shape != v.shape or state[k].dtype != v.dtype:
            raise ModelFileError(f"its {what}'s {k!r} has shape {tuple(state[k].shape)}, not {tuple(v.shape)}")
        if state[k].is_floating_point() and not torch.isfinite(state[k]).all():
            raise ModelFileError(f"its {what}'s {k!r} holds values that are not numbers")


def _prototypes(protos: torch.Tensor | None, feature_dim: int) -> torch.Tensor | None:
    if protos is None:
        return None
    if protos.ndim != 2 or protos.shape[1] != feature_dim or not 1 <= protos.shape[0] <= 1_000_000:
        raise ModelFileError("its training embeddings (for \"none of these\") have the wrong shape")
    if not torch.isfinite(protos).all():
        raise ModelFileError("its training embeddings hold values that are not numbers")
    return protos.float().contiguous()


# --- pt2 ---

def read_pt2(read: Callable[[str], bytes], names: set[str], resolve: Resolve) -> Recovered:
    """A pt2 archive's first program (`model`), through `read(name) -> bytes` on its entries."""
    meta = {n[len(PT2_EXTRA):]: read(n).decode("utf-8", "replace") for n in names
            if n.startswith(PT2_EXTRA) and "/" not in n[len(PT2_EXTRA):]}
    labels, backbone, threshold, prep, project = metadata_fields(meta)
    reference, feature_dim = resolve(backbone)
    if PT2_CONFIG not in names:
        raise ModelFileError("its first program's weights are not where torch.export puts them")
    try:
        config = json.loads(read(PT2_CONFIG))["config"]
        state = {fqn: _pt2_tensor(read, names, entry) for fqn, entry in config.items()}
    except ModelFileError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelFileError(f"its weights cannot be read ({exc})") from None
    bb = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    _check_state(bb, backbone_keys(reference), "backbone")
    head = {k[len("head."):]: v for k, v in state.items() if k.startswith("head.")}
    head_arch, head_state = head_from_state(head, feature_dim, len(labels))
    known = {f"backbone.{k}" for k in bb} | {f"head.{k}" for k in head} | {"prototypes", "normalize.mean",
                                                                            "normalize.std"}
    if state.keys() - known:
        raise ModelFileError(f"it holds weights a snapclass model has not ({sorted(state.keys() - known)[0]!r})")
    return Recovered("pt2", labels, backbone, threshold, prep,
                     None if _same_state(bb, backbone_keys(reference)) else bb, head_arch, head_state,
                     _prototypes(state.get("prototypes"), feature_dim), project)


def _pt2_tensor(read: Callable[[str], bytes], names: set[str], entry: dict) -> torch.Tensor:
    if entry.get("use_pickle") is not False:
        raise ModelFileError("its weights are pickled objects, which could run code: refused")
    meta = entry["tensor_meta"]
    dtype = PT2_DTYPES.get(meta["dtype"])
    path = PT2_WEIGHTS + entry["path_name"]
    if dtype is None or meta.get("layout") != 7 or path not in names or "/" in entry["path_name"]:
        raise ModelFileError("its weights are not plain float32 or int64 tensors")
    shape = [int(s["as_int"]) for s in meta["sizes"]]
    strides = [int(s["as_int"]) for s in meta["strides"]]
    offset = int(meta["storage_offset"]["as_int"])
    data = np.frombuffer(read(path), dtype=dtype)
    numel = math.prod(shape)
    contiguous = [math.prod(shape[i + 1:]) for i in range(len(shape))]
    if numel and (strides != contiguous or offset != 0 or data.size != numel):
        raise ModelFileError("its weights are not stored as torch.export stores a snapclass model's")
    return torch.from_numpy(data.copy()).reshape(shape)


# --- ONNX ---

def read_onnx(data: bytes, resolve: Resolve) -> Recovered:
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf raises its own kinds on a damaged file
        raise ModelFileError(f"it is not a readable ONNX file ({str(exc)[:200]})") from None
    graph = model.graph
    inits = {}
    for init in graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL or init.external_data:
            raise ModelFileError("it keeps weights in other files (ONNX external data): refused")
        inits[init.name] = init
    meta = {p.key: p.value for p in model.metadata_props}
    if "quantization" in meta:
        raise ModelFileError("it is quantized (onnx-int8), and its int8 weights no longer hold the model's own; "
                             "open the model's .onnx or .pt2 download instead")
    labels, backbone, threshold, prep, project = metadata_fields(meta)
    reference, feature_dim = resolve(backbone)

    def array(name: str) -> torch.Tensor:
        return torch.from_numpy(numpy_helper.to_array(inits[name]).copy())

    head = {k[len("classifier.head."):]: array(k) for k in inits if k.startswith("classifier.head.")}
    head_arch, head_state = head_from_state(head, feature_dim, len(labels))
    bb, stock = _onnx_backbone(graph, inits, array, reference)
    return Recovered("onnx", labels, backbone, threshold, prep, None if stock else bb, head_arch, head_state,
                     _prototypes(_onnx_prototypes(graph, inits, array), feature_dim), project)


def _conv_pairs(reference: Backbone) -> list[tuple[str, str | None]]:
    """(convolution, the BatchNorm right after it or None) in the order the network runs them."""
    modules = list(reference.features.named_modules())
    pairs = []
    for i, (name, mod) in enumerate(modules):
        if isinstance(mod, nn.Conv2d):
            nxt = modules[i + 1] if i + 1 < len(modules) else None
            bn = nxt[0] if nxt and isinstance(nxt[1], nn.BatchNorm2d) else None
            pairs.append((name, bn))
    return pairs


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> tuple[torch.Tensor, torch.Tensor]:
    weight = conv.weight.detach()
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros(weight.shape[0])
    if bn is None:
        return weight, bias
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    return weight * scale.reshape(-1, 1, 1, 1), bn.bias.detach() + (bias - bn.running_mean) * scale


def _onnx_backbone(graph, inits, array, reference: Backbone) -> tuple[dict[str, torch.Tensor], bool]:
    """The backbone's state (keys as backbone_keys) from the file's convolutions, and whether it is the
    pretrained backbone's (its folded weights, exactly)."""
    expected = backbone_keys(reference)
    named = {k[len("classifier.backbone."):]: array(k) for k in inits if k.startswith("classifier.backbone.")}
    if named.keys() == expected.keys():  # an exporter that keeps every name: nothing was folded
        _check_state(named, expected, "backbone")
        return named, _same_state(named, expected)
    convs = [n for n in graph.node if n.op_type == "Conv"]
    pairs = _conv_pairs(reference)
    if len(convs) != len(pairs):
        raise ModelFileError(f"its network has {len(convs)} convolutions where this server's backbone has "
                             f"{len(pairs)}")
    modules = dict(reference.features.named_modules())
    state = {k: v.detach().clone() for k, v in expected.items()}
    stock = True
    for node, (conv_name, bn_name) in zip(convs, pairs, strict=True):
        if len(node.input) < 2 or node.input[1] not in inits or (len(node.input) > 2 and node.input[2] not in inits):
            raise ModelFileError("its convolutions' weights are not stored in the file")
        weight = array(node.input[1]).float()
        bias = array(node.input[2]).float() if len(node.input) > 2 else torch.zeros(weight.shape[0])
        conv, bn = modules[conv_name], modules[bn_name] if bn_name else None
        ref_w, ref_b = _fold(conv, bn)
        if weight.shape != ref_w.shape or bias.shape != ref_b.shape:
            raise ModelFileError(f"its convolution {conv_name!r} has shape {tuple(weight.shape)}, not "
                                 f"{tuple(ref_w.shape)}")
        if not (torch.isfinite(weight).all() and torch.isfinite(bias).all()):
            raise ModelFileError(f"its convolution {conv_name!r} holds values that are not numbers")
        # Exactly equal: folding here computes what the exporter computed, bit for bit (measured), and a
        # fine-tuning's smallest change must not pass for the pretrained weights.
        stock = stock and torch.equal(weight, ref_w) and torch.equal(bias, ref_b)
        state[f"features.{conv_name}.weight"] = weight
        if bn is None:
            if conv.bias is None:
                if bias.abs().max() > 0:
                    raise ModelFileError(f"its convolution {conv_name!r} has a bias this backbone's has not")
            else:
                state[f"features.{conv_name}.bias"] = bias
            continue
        if conv.bias is not None:
            state[f"features.{conv_name}.bias"] = torch.zeros_like(bias)
        # A BatchNorm that adds the folded bias and otherwise passes its input through: mean 0, variance 1,
        # scale sqrt(1 + eps) (so that scale / sqrt(variance + eps) is 1).
        p = f"features.{bn_name}."
        state[p + "running_mean"] = torch.zeros_like(bias)
        state[p + "running_var"] = torch.ones_like(bias)
        state[p + "weight"] = torch.full_like(bias, math.sqrt(1 + bn.eps))
        state[p + "bias"] = bias
    return state, stock


def _onnx_prototypes(graph, inits, array) -> torch.Tensor | None:
    """The training embeddings: the constant matrix the similarity's MatMul (feeding its TopK) multiplies by."""
    producers = {out: node for node in graph.node for out in node.output}
    for node in graph.node:
        if node.op_type != "TopK":
            continue
        mm = producers.get(node.input[0])
        if mm is None or mm.op_type != "MatMul" or len(mm.input) != 2:
            break
        src = mm.input[1]
        if src in inits:
            return array(src).T  # folded: prototypes.T
        tr = producers.get(src)
        if tr is not None and tr.op_type == "Transpose" and tr.input[0] in inits:
            return array(tr.input[0])
        break
    if "classifier.prototypes" in inits:
        return array("classifier.prototypes")
    raise ModelFileError("its \"none of these\" part (the training embeddings) is not where snapclass puts it")


# --- the rebuilt network ---

def rebuild(rec: Recovered, reference: Backbone, prep: Preprocessing, feature_dim: int) -> Classifier:
    backbone = reference
    if rec.backbone_state is not None:
        backbone = copy.deepcopy(reference)
        backbone.load_state_dict(full_backbone_state(rec.backbone_state, reference))
    head = head_from_arch(rec.head_arch)
    head.load_state_dict(rec.head_state)
    protos = rec.prototypes if rec.prototypes is not None else torch.zeros(1, feature_dim)
    return Classifier(backbone.eval(), head.eval(), prep, protos).eval()


def probe_images(size: int, n: int = 6, seed: int = 0) -> np.ndarray:
    """float32 (n, 3, S, S) in [0, 1]: smooth random pictures, which drive a network as photos do (noise does
    not: its features all look alike)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 6, 6, generator=g)
    fine = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    return (fine + 0.05 * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1).numpy()


def check_onnx_agrees(data: bytes, classifier: Classifier, size: int) -> float:
    """The largest difference between the file's and the rebuilt network's probabilities and similarity on
    probe images; ModelFileError when it is over AGREEMENT_TOLERANCE."""
    import onnxruntime as ort

    x = probe_images(size)
    try:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        probs, sims = session.run(["probabilities", "similarity"], {"input": x})
    except Exception as exc:  # onnxruntime raises its own kinds on a graph it cannot run
        raise ModelFileError(f"ONNX Runtime cannot run it ({str(exc)[:200]})") from None
    with torch.inference_mode():
        t = torch.from_numpy(x)
        ours_p, ours_s = classifier(t).numpy(), classifier.similarity(t).numpy()
    if probs.shape != ours_p.shape or sims.shape != ours_s.shape:
        raise ModelFileError("its outputs are not one probability per label and one similarity per photo")
    diff = float(max(np.abs(probs - ours_p).max(), np.abs(sims - ours_s).max()))
    if not diff <= AGREEMENT_TOLERANCE:
        raise ModelFileError(f"its network could not be rebuilt exactly (answers differ by {diff:.4f}); "
                             "open the project file saved with \"Save project to a file\" instead")
    return diff
