"""Adding a model is one record: a toy Inception network defined here, in this file alone, is listed,
built, counted, documented, deployed and trained by the package as it is."""

import pytest
import torch

from inception_zoo import ModelRecord, Paper, create_model, get_record, list_models, optimize_for_inference
from inception_zoo.analysis import count_macs, count_params, model_stats, stats_table
from inception_zoo.layers import AuxSpec, Conv, Factorized, Mixed, Pool, Residual
from inception_zoo.registry import register_model, unregister_model

from helpers import close, realistic

# Parameters, counted by hand: conv weights + BatchNorm (2 per channel); the up-projection has a bias.
STEM = 3 * 16 * 9 + 2 * 16                                               # 3×3/2, 16
MIXED = (16 * 8 + 16) + (16 * 8 + 16) + (8 * 12 * 9 + 24) + (16 * 4 + 8)  # 1×1 | 1×1 -> 3×3 | pool -> 1×1
BLOCK = (24 * 8 + 16) + (24 * 8 + 16) + (8 * 8 * 3 + 16) + (8 * 12 * 3 + 24) + (20 * 24 + 24)
HEAD = 24 * 10 + 10
AUX = (24 * 8 + 16) + (8 * 10 + 10)

TOY = ModelRecord(
    name="toy_inception",
    summary="a toy Inception network (tests only)",
    paper=Paper(title="A toy network", arxiv="0000.00000"),
    layout=(
        ("stem", Conv(16, 3, 2, padding=1)),
        ("mixed_a", Mixed(
            branch1x1=(Conv(8),),
            branch3x3=(Conv(8), Conv(12, 3)),
            branch_pool=(Pool("avg", 3, 1), Conv(4)),
        )),
        ("pool", Pool("max", 3, 2, padding=1)),
        ("block_b", Residual((Conv(8),), (Conv(8), Factorized(8, 12, 3)), scale=0.2)),
    ),
    conv=dict(bn=True, bn_eps=1e-3),
    input_size=(3, 32, 32), min_input_size=(3, 4, 4), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
    interpolation="bilinear", crop_pct=1.0,
    num_classes=10, drop_rate=0.0,
    aux_heads=(AuxSpec("mixed_a", pool=(None, None, 2), convs=(Conv(8),)),),
    params=STEM + MIXED + BLOCK + HEAD, params_aux=STEM + MIXED + BLOCK + HEAD + AUX,
)


@pytest.fixture
def toy():
    register_model(TOY)
    try:
        yield TOY
    finally:
        unregister_model(TOY.name)


def test_listed_built_counted(toy):
    assert "toy_inception" in list_models() and get_record("toy_inception") is toy
    model = create_model("toy_inception").eval()
    assert count_params(model) == toy.params == 3402 and count_params(create_model("toy_inception", aux_logits=True)) == toy.params_aux
    assert list(model.state_dict())[:2] == ["features.stem.conv.weight", "features.stem.bn.weight"]
    assert "features.block_b.branch1.1.conv_nx1.conv.weight" in model.state_dict()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert count_macs(model) > 0 and "toy_inception" in stats_table([model_stats("toy_inception")])
    out = create_model("toy_inception", aux_logits=True).train()(torch.randn(2, 3, 32, 32))
    assert out.logits.shape == (2, 10) and [a.shape for a in out.aux] == [(2, 10)]


def test_documented(toy, tmp_path):
    from inception_zoo.docs import generate

    generate(tmp_path, readme=None, pattern="toy_inception")
    page = (tmp_path / "models" / "toy_inception.md").read_text()
    assert "| **total**" in page and f"{toy.params:,}" in page and "arXiv 0000.00000" in page
    assert (tmp_path / "img" / "toy_inception_stages.png").is_file()


def test_deployed(toy):
    model = realistic(create_model("toy_inception"))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert close(optimize_for_inference(model, "torch")(x), model(x))


def test_trained(toy, tmp_path):
    from inception_zoo.train import main

    argv = ["--model", "toy_inception", "--epochs", "1", "--max-steps", "3", "--batch-size", "16",
            "--log-every", "1", "--out", str(tmp_path)]
    assert main(argv) == 0
    assert (tmp_path / "last.safetensors").is_file()
    restored = create_model("toy_inception", in_chans=1, aux_logits=True, pretrained=tmp_path / "last.safetensors")
    assert restored.default_cfg["architecture"] == "toy_inception"
