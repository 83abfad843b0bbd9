"""Shared primitives: one conv block, factorized and separable convolutions, Inception modules as data,
residual Inception blocks, classifier and auxiliary heads. Every family is built from these."""

from .blocks import (
    LRN,
    Conv,
    Factorized,
    InceptionModule,
    LayerSpec,
    Mixed,
    Pool,
    Residual,
    ResidualInceptionBlock,
    ResidualParts,
    SameMaxPool2d,
    StageInfo,
    build_sequence,
    build_stages,
    ConvLayer,
)
from .conv import BasicConv2d, FactorizedConv2d, SeparableConv2d, same_padding
from .heads import POOL_TYPES, AuxHead, AuxPool, AuxSpec, ClassifierHead, GlobalPool
from .norm import LocalResponseNorm

__all__ = [
    "BasicConv2d",
    "FactorizedConv2d",
    "SeparableConv2d",
    "same_padding",
    "LayerSpec",
    "Conv",
    "Factorized",
    "Pool",
    "LRN",
    "LocalResponseNorm",
    "Mixed",
    "Residual",
    "InceptionModule",
    "ResidualInceptionBlock",
    "ResidualParts",
    "SameMaxPool2d",
    "StageInfo",
    "build_sequence",
    "build_stages",
    "ConvLayer",
    "POOL_TYPES",
    "GlobalPool",
    "ClassifierHead",
    "AuxPool",
    "AuxHead",
    "AuxSpec",
]
