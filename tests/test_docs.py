"""The generated docs: every table recomputed and compared with what is committed (the plots draw these
tables' figures), the counts adding up, matching the papers, the peers and a second counter."""

from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import inception_zoo.docs as docs
from inception_zoo import create_model, list_models, list_records
from inception_zoo.analysis import count_params, stage_breakdown

from helpers import twins_marked_heavy

ROOT = Path(__file__).parents[1]
STALE = "stale docs: run `inception-zoo docs` and commit the result"


def _summary() -> str:
    """docs/models.md up to its pretrained-weights section."""
    return (ROOT / "docs" / "models.md").read_text(encoding="utf-8").split("## Pretrained weights")[0]


def _table_rows(markdown: str) -> dict[str, list[str]]:
    """A GitHub markdown table's rows as cells, keyed by the first cell (links reduced to their text)."""
    rows = {}
    for line in markdown.splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        cells[0] = cells[0].split("](")[0].lstrip("[")
        rows[cells[0]] = cells
    return rows


@pytest.mark.parametrize("name", twins_marked_heavy(list_models()))
def test_model_docs_are_fresh_and_add_up(name):
    """What CI checks per model: its page, its rows of docs/models.md and of the README are what the
    generator writes today; its per-stage rows add up; its peer counts the same; fvcore agrees with
    torch's FlopCounterMode (2 x MACs = FLOPs within 1%)."""
    fresh = docs.collect(name)
    stats, rows = fresh.stats, fresh.rows
    page = (ROOT / "docs" / "models" / f"{name}.md").read_text(encoding="utf-8")
    assert page == docs.model_page(name, stats, rows, fresh.cfg), STALE
    assert (ROOT / "docs" / "img" / f"{name}_stages.png").is_file(), STALE
    expected = _table_rows(docs.summary_table([stats]))[name]
    assert _table_rows(_summary())[name] == expected, STALE
    assert _table_rows(docs.read_block(ROOT / "README.md", "models"))[name] == expected, STALE

    with torch.device("meta"):  # counts and torch's FLOPs from shapes alone: no second real model
        model = create_model(name).eval()
    assert sum(r.params for r in rows) == count_params(model) == stats.params
    assert sum(r.macs for r in rows) == stats.macs  # nothing is counted outside the stages and the head
    if stats.peer:  # the same network in torchvision / timm / pytorchcv / ...; Keras': parameters only
        assert stats.peer_params == stats.params
        assert stats.peer_macs in (stats.macs, None) and (stats.peer_macs is None) == stats.peer.startswith("keras")
    counter = FlopCounterMode(display=False)
    with torch.device("meta"), torch.no_grad(), counter:
        model(torch.zeros(1, *model.default_cfg["input_size"]))
    torch_flops = counter.get_total_flops()
    if abs(2 * stats.macs - torch_flops) > 0.01 * torch_flops:
        ops = {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}
        pytest.fail(f"{name}: 2 x fvcore = {2 * stats.macs:,}, FlopCounterMode = {torch_flops:,}; torch by op: {ops}")


def test_docs_hold_exactly_the_registered_models():
    names = list_models()
    assert sorted(p.stem for p in (ROOT / "docs" / "models").glob("*.md")) == names, STALE
    assert sorted(_table_rows(_summary())) == sorted(names + ["model"]), STALE
    assert sorted(_table_rows(docs.read_block(ROOT / "README.md", "models"))) == sorted(names + ["model"]), STALE
    assert docs.read_block(ROOT / "README.md", "zoo") == docs.zoo_table(list_records()), STALE
    summary = (ROOT / "docs" / "models.md").read_text(encoding="utf-8")
    pretrained = "## Pretrained weights\n\n" + docs.pretrained_table(list_records()) + "\n\n" + docs.PRETRAINED_NOTES
    assert summary.endswith("(img/params_vs_gmacs.png)\n\n" + pretrained), STALE
    pngs = {p.name for p in (ROOT / "docs" / "img").glob("*.png")}
    assert pngs == {f"{n}_stages.png" for n in names} | {"params_vs_gmacs.png"}, STALE


def test_generation_writes_pages_plots_and_readme(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{docs.markers('zoo')[0]}\n{docs.markers('zoo')[1]}\n\n"
                      f"{docs.markers('models')[0]}\nold\n{docs.markers('models')[1]}\ntail\n")
    written = docs.generate(tmp_path / "docs", readme=readme, progress=True, pattern="inception_v1_bn")
    assert "tracing models" in capsys.readouterr().err
    assert {p.name for p in written} == {"inception_v1_bn.md", "inception_v1_bn_stages.png", "models.md",
                                         "params_vs_gmacs.png", "README.md"}
    page = (tmp_path / "docs" / "models" / "inception_v1_bn.md").read_text()
    assert "| **total**" in page and "torchvision googlenet" in page
    assert (tmp_path / "docs" / "img" / "inception_v1_bn_stages.png").read_bytes()[:4] == b"\x89PNG"
    text = readme.read_text()
    assert text.startswith("# x\n") and text.endswith("tail\n") and "old" not in text
    assert "[inception_v1_bn](docs/models/inception_v1_bn.md)" in text and "`googlenet`" in text


def test_readme_needs_markers(tmp_path):
    (tmp_path / "README.md").write_text("# no markers\n")
    with pytest.raises(ValueError, match="has no .* markers for the generated zoo block"):
        docs.update_readme(tmp_path / "README.md", {"zoo": "x"})
    assert (tmp_path / "README.md").read_text() == "# no markers\n"


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


def test_googlenet_stages_match_a_hand_calculation_from_table_1(built):
    rows = {r.name: r for r in stage_breakdown(built("inception_v1"))}
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
