import pytest
import torch
import torch.nn.functional as F

from inception_zoo import InceptionLoss, InceptionOutputs, create_model


@pytest.fixture
def batch():
    torch.manual_seed(0)
    return torch.randn(6, 10), (torch.randn(6, 10), torch.randn(6, 10)), torch.randint(0, 10, (6,))


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_plain_logits_equal_torch_cross_entropy(batch, smoothing):
    logits, _, target = batch
    expected = F.cross_entropy(logits, target, label_smoothing=smoothing)
    torch.testing.assert_close(InceptionLoss(label_smoothing=smoothing)(logits, target), expected)


def test_smoothing_by_hand(batch):
    logits, _, target = batch
    eps, k = 0.1, logits.shape[1]
    soft = torch.full_like(logits, eps / k).scatter_(1, target[:, None], 1 - eps + eps / k)
    expected = -(soft * logits.log_softmax(1)).sum(1).mean()
    torch.testing.assert_close(InceptionLoss(label_smoothing=eps)(logits, target), expected)


def test_aux_weighting(batch):
    logits, aux, target = batch
    ce = lambda x: F.cross_entropy(x, target, label_smoothing=0.1)  # noqa: E731
    out = InceptionOutputs(logits, aux)
    loss = InceptionLoss(label_smoothing=0.1, aux_weight=0.4)(out, target)
    torch.testing.assert_close(loss, ce(logits) + 0.4 * ce(aux[0]) + 0.4 * ce(aux[1]))
    per_head = InceptionLoss(aux_weight=(0.3, 0.5))(out, target)
    plain = lambda x: F.cross_entropy(x, target)  # noqa: E731
    torch.testing.assert_close(per_head, plain(logits) + 0.3 * plain(aux[0]) + 0.5 * plain(aux[1]))


def test_default_is_googlenet_aux_weight(batch):
    logits, aux, target = batch
    loss = InceptionLoss()(InceptionOutputs(logits, aux), target)
    expected = sum([F.cross_entropy(logits, target)] + [0.3 * F.cross_entropy(a, target) for a in aux])
    torch.testing.assert_close(loss, expected)


def test_with_a_model_and_backward():
    model = create_model("inception_v1_bn", num_classes=5, aux_logits=True).train()
    out = model(torch.randn(2, 3, 64, 64))
    loss = InceptionLoss(label_smoothing=0.1, aux_weight=0.3)(out, torch.tensor([1, 4]))
    loss.backward()
    assert loss.ndim == 0 and model.aux_heads[0].head.fc.weight.grad is not None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(label_smoothing=1.5), r"label_smoothing must be a number in \[0, 1\]"),
        (dict(label_smoothing="0.1"), r"label_smoothing must be a number in \[0, 1\]"),
        (dict(label_smoothing=True), r"label_smoothing must be a number in \[0, 1\]"),
        (dict(label_smoothing=None), r"label_smoothing must be a number in \[0, 1\]"),
        (dict(aux_weight=-0.1), "aux_weight must be a finite number >= 0"),
        (dict(aux_weight=float("nan")), "aux_weight must be a finite number >= 0"),
        (dict(aux_weight=float("inf")), "aux_weight must be a finite number >= 0"),
        (dict(aux_weight="0.3"), "aux_weight must be a finite number >= 0"),
        (dict(aux_weight=None), "aux_weight must be a finite number >= 0"),
        (dict(aux_weight=(0.3, -1)), "aux_weight must be a finite number >= 0"),
        (dict(reduction="none"), "reduction must be 'mean' or 'sum'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InceptionLoss(**kwargs)


def test_weight_count_mismatch_and_bad_output(batch):
    logits, aux, target = batch
    with pytest.raises(ValueError, match="3 aux weights given for 2 auxiliary outputs"):
        InceptionLoss(aux_weight=(0.1, 0.2, 0.3))(InceptionOutputs(logits, aux), target)
    with pytest.raises(TypeError, match="logits tensor or inception_zoo.InceptionOutputs, got builtins.tuple"):
        InceptionLoss()((logits, aux), target)
    with pytest.raises(TypeError, match="got torchvision.models.googlenet.GoogLeNetOutputs"):
        import torchvision

        InceptionLoss()(torchvision.models.GoogLeNetOutputs(logits, aux[1], aux[0]), target)
    with pytest.raises(TypeError, match="aux must be a tuple of tensors, got NoneType"):
        InceptionLoss()(InceptionOutputs(logits, None), target)


def test_per_head_weights_in_eval_and_a_bare_aux_tensor(batch):
    logits, aux, target = batch
    per_head = InceptionLoss(aux_weight=(0.3, 0.3))
    torch.testing.assert_close(per_head(logits, target), F.cross_entropy(logits, target))  # eval: no aux
    one = InceptionLoss(aux_weight=0.4)(InceptionOutputs(logits, aux[0]), target)
    torch.testing.assert_close(one, F.cross_entropy(logits, target) + 0.4 * F.cross_entropy(aux[0], target))
