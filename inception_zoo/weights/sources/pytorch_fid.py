"""pytorch-fid's FID Inception (``pytorch_fid.inception``): torchvision's Inception v3 with 1008 classes,
no auxiliary head, and its Mixed_5b-7c replaced by pytorch-fid's patched blocks (average pools without the
padding, a max pool in Mixed_7c), as ``pytorch_fid.inception.fid_inception_v3`` builds it, without its
weight download. torch-fidelity's ``FeatureExtractorInceptionV3`` has the same keys."""

from __future__ import annotations

from . import PeerModel

# The blocks pytorch-fid patches: stage -> (its class, the constructor's arguments).
PATCHED = {
    "Mixed_5b": ("FIDInceptionA", 192, 32),
    "Mixed_5c": ("FIDInceptionA", 256, 64),
    "Mixed_5d": ("FIDInceptionA", 288, 64),
    "Mixed_6b": ("FIDInceptionC", 768, 128),
    "Mixed_6c": ("FIDInceptionC", 768, 160),
    "Mixed_6d": ("FIDInceptionC", 768, 160),
    "Mixed_6e": ("FIDInceptionC", 768, 192),
    "Mixed_7b": ("FIDInceptionE_1", 1280),
    "Mixed_7c": ("FIDInceptionE_2", 2048),
}


def _build(aux: bool):
    import torchvision
    from pytorch_fid import inception

    net = torchvision.models.inception_v3(weights=None, num_classes=1008, aux_logits=False, init_weights=False)
    for stage, (block, *args) in PATCHED.items():
        setattr(net, stage, getattr(inception, block)(*args))
    return net


MODELS = {"fid_inception_v3": PeerModel(_build)}
