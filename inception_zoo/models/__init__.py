"""One module per paper, each a table of layer specs and the records of its models; importing this
package registers every model."""

from . import bn_inception, inception_resnet, inception_v1, inception_v3, inception_v4, xception  # noqa: F401
from .base import InceptionNet, InceptionOutputs
from .features import FeatureExtractor, FeatureInfo

__all__ = ["InceptionNet", "InceptionOutputs", "FeatureExtractor", "FeatureInfo"]
