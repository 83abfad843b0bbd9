"""Cadene's pretrainedmodels (``pretrainedmodels.<name>(num_classes=1000, pretrained=None)``): BN-Inception,
Inception v3, Inception v4, Inception-ResNet v2 and Xception, each with its classifier named
``last_linear``.

* ``bninception``: the Caffe model of the BN-Inception paper as Cadene ported it (flat keys such as
  ``inception_3a_1x1_bn``); its weights take BGR input in 0-255 minus a per-channel mean (the input
  convention on our record's peer).
* ``inceptionv3``: torchvision's Inception3 with ``fc`` renamed ``last_linear`` after loading, and without
  torchvision's transform_input (mean = std = 0.5 input); the file it loads is torchvision's, keyed ``fc``.
* ``inceptionv4``, ``inceptionresnetv2``: the TF-slim ports that timm took over (the same keys as timm's
  inception_v4); their files hold 1001 classes, background first.
* ``xception``: the Keras port that timm keeps as legacy_xception, ``fc`` renamed ``last_linear`` after
  loading; the file it loads is keyed ``fc``.

Where the published file keeps the name from before the rename, ``published`` maps it too.
"""

from __future__ import annotations

import warnings

from . import PeerModel

DISTRIBUTION = "pretrainedmodels"


def _build(name: str):
    def build(aux: bool):
        with warnings.catch_warnings():  # torchvision's notice on pretrainedmodels' deprecated arguments
            warnings.simplefilter("ignore")
            import pretrainedmodels

            net = getattr(pretrainedmodels, name)(num_classes=1000, pretrained=None)
        if not aux and getattr(net, "AuxLogits", None) is not None:  # inceptionv3 always builds torchvision's
            net.aux_logits, net.AuxLogits = False, None
        return net

    return build


_LAST_LINEAR = ("last_linear.",)
_FC = (("last_linear.", "fc."),)  # renamed after loading: the published file says fc

MODELS = {
    "bninception": PeerModel(_build("bninception"), classifier=_LAST_LINEAR),
    "inceptionv3": PeerModel(_build("inceptionv3"), aux=("AuxLogits.",), classifier=_LAST_LINEAR, published=_FC),
    "inceptionv4": PeerModel(_build("inceptionv4"), classifier=_LAST_LINEAR),
    "inceptionresnetv2": PeerModel(_build("inceptionresnetv2"), classifier=_LAST_LINEAR),
    "xception": PeerModel(_build("xception"), classifier=_LAST_LINEAR, published=_FC),
}
