"""The comparison benchmark runs end to end and reports ratios computed from both sides."""

import json

import pytest

from inception_zoo.cli import main


@pytest.mark.slow
def test_bench_tiny_run(tmp_path, capsys):
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    argv = ["bench", "--models", "inception_v1_bn", "--repeats", "2", "--batch-size", "2", "--latency-iters", "1",
            "--sample-seconds", "0.01",
            "--channels-last", "--json", str(out), "--markdown", str(md), "--threads", "2"]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert set(report) == {"machine", "settings", "matmul_gflops", "runs"}
    assert {"cpu", "cores", "threads", "torch", "device"} <= set(report["machine"])
    assert report["matmul_gflops"] > 0 and report["settings"]["batch_size"] == 2
    (run,) = report["runs"]
    assert run["dtype"] == "fp32"
    (entry,) = run["models"]
    assert entry["model"] == "inception_v1_bn" and entry["peer"] == "torchvision googlenet"
    res = entry["results"]
    assert set(res) == {"ours", "deploy", "peer"}
    for r in res.values():
        assert r["latency_ms"] > 0 and r["throughput_img_s"] > 0 and r["peak_memory_mb"] is not None
        assert len(r["samples"]["latency"]) == 2
        assert r["achieved_gflops"] == pytest.approx(2 * entry["macs"] * r["throughput_img_s"] / 1e9)
        assert r["matmul_fraction"] == pytest.approx(r["achieved_gflops"] / report["matmul_gflops"])
    assert res["deploy"]["train_step_ms"] is None and res["ours"]["train_step_ms"] > 0
    for variant in ("ours", "deploy"):
        ratios = entry["ratios"][f"{variant}/peer"]
        assert ratios["latency"] == pytest.approx(res["peer"]["latency_ms"] / res[variant]["latency_ms"])
        assert ratios["throughput"] == pytest.approx(res[variant]["throughput_img_s"] / res["peer"]["throughput_img_s"])
    conv_only = res["deploy"]["conv_only_ms"]  # the deploy model's convolutions re-run alone, summed
    assert conv_only > 0 and "conv_only_ms" not in res["ours"]
    peer_batch_ms = 1000 * 2 / res["peer"]["throughput_img_s"]
    assert entry["ratios"]["deploy/peer"]["ceiling"] == pytest.approx(peer_batch_ms / conv_only)
    assert "ceiling" not in entry["ratios"]["ours/peer"]
    assert entry["ratios"]["ours/peer"]["train"] == pytest.approx(res["peer"]["train_step_ms"] / res["ours"]["train_step_ms"])
    text = md.read_text()
    assert "Command: `inception-zoo bench --models inception_v1_bn --repeats 2 --batch-size 2" in text
    assert "# Benchmarks" in text and "matrix-multiply rate" in text and "inception_v1_bn" in text
    assert "| fp32" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["--sample-seconds", "inf"], "must be a positive, finite number of seconds, got inf"),
    (["--batch-size", "abc"], "must be a positive integer, got 'abc'"),
    (["--repeats", "0"], "must be a positive integer, got 0"),
])
def test_bench_option_errors_are_one_clear_line(argv, message, capsys):
    with pytest.raises(SystemExit):
        main(["bench", *argv])
    assert message in capsys.readouterr().err


def test_bench_checks_output_folders_before_measuring(tmp_path):
    from inception_zoo import bench

    missing = tmp_path / "no" / "such" / "report.json"
    with pytest.raises(SystemExit, match="--json .* does not exist or is not writable"):
        bench.main(["--models", "inception_v1_bn", "--json", str(missing)])  # benchmarks/compare.py's entry
    with pytest.raises(SystemExit, match="--markdown .* does not exist or is not writable"):
        main(["bench", "--json", str(tmp_path / "ok.json"), "--markdown", str(missing)])
    assert not (tmp_path / "ok.json").exists()


def test_bench_rejects_models_without_peer():
    with pytest.raises(SystemExit, match="no model with a peer matches 'inception_resnet_v1'"):
        main(["bench", "--models", "inception_resnet_v1", "--no-memory"])


def test_targets_rows_show_median_per_repeat_range_and_ceiling():
    from inception_zoo.bench import targets

    def result(times, **extra):
        return {"samples": {"throughput": times}, "matmul_fraction": 0.9, **extra}

    entry = {
        "model": "inception_v3",
        "results": {"ours": result([100.0, 110.0]), "deploy": result([80.0, 90.0]), "peer": result([105.0, 99.0])},
        "ratios": {"ours/peer": {"throughput": 0.97}, "deploy/peer": {"throughput": 1.22, "ceiling": 1.3}},
    }
    report = {"machine": {"device": "cpu"}, "settings": {"batch_size": 8, "channels_last": True},
              "runs": [{"dtype": "fp32", "models": [entry]}, {"dtype": "bf16", "models": [entry]}]}
    rows = targets(report)
    assert rows == [  # fp32 only; per repeat: 105/100, 99/110 and 105/80, 99/90
        ["inception_v3", "ours/peer throughput >= 1.0", "0.97", "0.90-1.05", "**no**", "-"],
        ["inception_v3", "deploy/peer throughput >= 1.2", "1.22", "1.10-1.31", "yes", "1.30"],
        ["inception_v3", "deploy >= 60% of matmul rate", "90%", "-", "yes", "-"],
    ]
    report["settings"]["batch_size"] = 4
    assert targets(report) == []  # the targets are defined at batch 8
