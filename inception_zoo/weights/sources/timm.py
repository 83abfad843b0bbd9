"""timm's Inception v3, Inception v4, Inception-ResNet v2, legacy Xception and aligned Xceptions
(``timm.create_model``)."""

from __future__ import annotations

from . import PeerModel


def _build(name: str, takes_aux: bool = False):
    def build(aux: bool):
        import timm

        return timm.create_model(name, pretrained=False, **({"aux_logits": aux} if takes_aux else {}))

    return build


MODELS = {
    "inception_v3": PeerModel(_build("inception_v3", takes_aux=True), aux=("AuxLogits.",)),
    "inception_v4": PeerModel(_build("inception_v4"), classifier=("last_linear.",)),
    "inception_resnet_v2": PeerModel(_build("inception_resnet_v2"), classifier=("classif.",)),
    "legacy_xception": PeerModel(_build("legacy_xception")),
    **{name: PeerModel(_build(name), classifier=("head.fc.",))
       for name in ("xception41", "xception65", "xception71", "xception41p", "xception65p")},
}
