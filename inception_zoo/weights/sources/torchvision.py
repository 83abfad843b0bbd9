"""torchvision's GoogLeNet and Inception v3 (``torchvision.models``)."""

from __future__ import annotations

from . import PeerModel


def _build(name: str):
    def build(aux: bool):
        import torchvision

        return getattr(torchvision.models, name)(weights=None, aux_logits=aux, init_weights=False)

    return build


MODELS = {
    "googlenet": PeerModel(_build("googlenet"), aux=("aux1.", "aux2.")),
    "inception_v3": PeerModel(_build("inception_v3"), aux=("AuxLogits.",)),
}
