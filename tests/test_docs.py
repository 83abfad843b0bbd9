"""The generated docs: fresh, quiet, adding up, and matching the papers and a second counter."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import inception_zoo.docs
from inception_zoo import create_model, list_models
from inception_zoo.analysis import count_macs, count_params, stage_breakdown

ROOT = Path(__file__).parents[1]


def _generated_files(docs: Path) -> dict[str, bytes]:
    files = {"models.md": (docs / "models.md").read_bytes()}
    for folder in inception_zoo.docs.GENERATED_DIRS:
        files.update({f"{folder}/{p.name}": p.read_bytes() for p in sorted((docs / folder).iterdir())})
    return files


def _readme_block(readme: Path) -> str:
    text = readme.read_text()
    return text.split(inception_zoo.docs.README_BEGIN, 1)[1].split(inception_zoo.docs.README_END, 1)[0]


@pytest.mark.slow
def test_committed_docs_are_fresh_and_generation_is_quiet(tmp_path):
    """What CI checks: regenerating the docs changes nothing that is committed (run `inception-zoo docs`)."""
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    cmd = [sys.executable, "-m", "inception_zoo", "docs", "--out", str(tmp_path / "docs"), "--readme",
           str(tmp_path / "README.md")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", "fvcore or tracer warnings leaked to the terminal"
    fresh, committed = _generated_files(tmp_path / "docs"), _generated_files(ROOT / "docs")
    assert sorted(fresh) == sorted(committed), "docs/ has missing or extra generated files: run `inception-zoo docs`"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale docs: {stale}; run `inception-zoo docs` and commit the result"
    assert _readme_block(tmp_path / "README.md") == _readme_block(ROOT / "README.md"), "README's table is stale"


def test_progress_bar_on_request(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(inception_zoo.docs, "list_models", lambda: ["inception_v1_bn"])
    written = inception_zoo.docs.generate(tmp_path, readme=None, progress=True)
    assert "tracing models" in capsys.readouterr().err
    assert {p.name for p in written} == {"inception_v1_bn.md", "inception_v1_bn_stages.png", "models.md",
                                         "params_vs_gmacs.png"}
    page = (tmp_path / "models" / "inception_v1_bn.md").read_text()
    assert "| **total**" in page and "torchvision googlenet" in page


def test_readme_needs_markers(tmp_path):
    (tmp_path / "README.md").write_text("# no markers\n")
    with pytest.raises(ValueError, match="has no .* markers"):
        inception_zoo.docs.update_readme(tmp_path / "README.md", "x")


@pytest.mark.parametrize("name", list_models())
def test_stage_rows_add_up(name):
    model = create_model(name)
    rows = stage_breakdown(model)
    assert [r.name for r in rows] == [n for n, _ in model.features.named_children()] + ["head"]
    assert sum(r.params for r in rows) == count_params(model)
    assert sum(r.macs for r in rows) == count_macs(model)
    assert rows[-1].output_shape == (model.num_classes,)


# GoogLeNet, arXiv 1409.4842, Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj, and the grid.
TABLE_1 = [
    ("inception_3a", 64, 96, 128, 16, 32, 32, 28),
    ("inception_3b", 128, 128, 192, 32, 96, 64, 28),
    ("inception_4a", 192, 96, 208, 16, 48, 64, 14),
    ("inception_4b", 160, 112, 224, 24, 64, 64, 14),
    ("inception_4c", 128, 128, 256, 24, 64, 64, 14),
    ("inception_4d", 112, 144, 288, 32, 64, 64, 14),
    ("inception_4e", 256, 160, 320, 32, 128, 128, 14),
    ("inception_5a", 256, 160, 320, 32, 128, 128, 7),
    ("inception_5b", 384, 192, 384, 48, 128, 128, 7),
]


def test_googlenet_stages_match_a_hand_calculation_from_table_1():
    rows = {r.name: r for r in stage_breakdown(create_model("inception_v1"))}
    page = (ROOT / "docs" / "models" / "inception_v1.md").read_text()
    c_in = 192  # conv2_3x3's output feeds inception (3a)
    for name, c1, r3, c3, r5, c5, pp, grid in TABLE_1:
        weights = c_in * c1 + c_in * r3 + 9 * r3 * c3 + c_in * r5 + 25 * r5 * c5 + c_in * pp
        biases = c1 + r3 + c3 + r5 + c5 + pp
        c_out = c1 + c3 + c5 + pp
        assert rows[name].params == weights + biases, name
        assert rows[name].macs == weights * grid * grid, name  # no BatchNorm in the paper's network
        assert rows[name].output_shape == (c_out, grid, grid), name
        row = next(line for line in page.splitlines() if line.startswith(f"| {name} "))
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[1:4] == [f"{c_out}x{grid}x{grid}", f"{weights + biases:,}", f"{weights * grid * grid:,}"], name
        c_in = c_out


@pytest.mark.parametrize("name", list_models())
def test_fvcore_agrees_with_torch_flop_counter(name):
    """2 x fvcore MACs = torch's FlopCounterMode FLOPs within 1%, or the operators that differ are named."""
    model = create_model(name).eval()
    size = model.default_cfg["input_size"]
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, *size))
    torch_flops = counter.get_total_flops()
    fvcore_macs = count_macs(model)
    if abs(2 * fvcore_macs - torch_flops) > 0.01 * torch_flops:
        ops = {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}
        pytest.fail(f"{name}: 2 x fvcore = {2 * fvcore_macs:,}, FlopCounterMode = {torch_flops:,}; torch by op: {ops}")
