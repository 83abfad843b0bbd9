"""facenet-pytorch's ``InceptionResnetV1`` (``facenet_pytorch.models.inception_resnet_v1``):
Inception-ResNet-v1 in the layout of David Sandberg's facenet, with its 512-d embedding head
(``last_linear``, ``last_bn``) and the identity classifier ``logits`` its published checkpoints hold (8631
VGGFace2 or 10575 CASIA-WebFace identities). Built with ``classify=True`` and no ``pretrained``, so nothing
is downloaded.

facenet-pytorch pins old torch releases; its model runs on any, so it is installed with ``--no-deps``."""

from __future__ import annotations

from . import PeerModel

DISTRIBUTION = "facenet-pytorch"  # the package's name on PyPI (the import name is facenet_pytorch)


def _build(aux: bool):
    from facenet_pytorch.models.inception_resnet_v1 import InceptionResnetV1

    return InceptionResnetV1(classify=True, num_classes=8631)  # the classifier of the default vggface2 weights


# The embedding head and the classifier are one group, paired with our head.embed, head.bn, head.fc.
MODELS = {"InceptionResnetV1": PeerModel(_build, classifier=("last_linear.", "last_bn.", "logits."))}
