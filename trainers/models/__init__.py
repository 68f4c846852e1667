"""Networks: the video ViT with 3D RoPE, the predictor / pixel decoder and the attentive probe."""

from trainers.models.predictor import Predictor, pixel_decoder
from trainers.models.presets import ENCODER_PRESETS, ViTSpec, encoder_spec
from trainers.models.probe import AttentiveProbe
from trainers.models.vit import VisionTransformer, patchify, unpatchify

__all__ = [
    "ENCODER_PRESETS",
    "AttentiveProbe",
    "Predictor",
    "ViTSpec",
    "VisionTransformer",
    "encoder_spec",
    "patchify",
    "pixel_decoder",
    "unpatchify",
]
