"""Networks: the video ViT with 3D RoPE and the predictor / pixel decoder (the attentive probe's is
trainers/probe/attentive_head.py)."""

from trainers.models.predictor import Predictor, pixel_decoder
from trainers.models.presets import ENCODER_PRESETS, ViTSpec, encoder_spec
from trainers.models.vit import VisionTransformer, patchify, unpatchify

__all__ = [
    "ENCODER_PRESETS",
    "Predictor",
    "ViTSpec",
    "VisionTransformer",
    "encoder_spec",
    "patchify",
    "pixel_decoder",
    "unpatchify",
]
