"""The comparison benchmark runs end to end and reports ratios computed from both sides."""

import json

import pytest

from inception_zoo.cli import main


@pytest.mark.slow
def test_bench_tiny_run(tmp_path, capsys):
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    argv = ["bench", "--models", "inception_v1_bn", "--repeats", "2", "--batch-size", "2", "--latency-iters", "1",
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
    assert "# Benchmarks" in text and "matrix-multiply rate" in text and "inception_v1_bn" in text
    assert "| fp32" in capsys.readouterr().out


def test_bench_rejects_models_without_peer():
    with pytest.raises(SystemExit, match="no model with a peer matches 'inception_resnet_v1'"):
        main(["bench", "--models", "inception_resnet_v1", "--no-memory"])
