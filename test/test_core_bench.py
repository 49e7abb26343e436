"""`hirqa bench`: prints the table with the torch eager baseline and speed-ups (numbers not asserted)."""

import json

import pytest

pytest.importorskip("torch", reason="torch not installed (the bench baseline is torch eager)")

from hirqa_ros.bench import BenchRow, format_table
from hirqa_ros.cli.main import main


def test_bench_cli_quick_run(random_model_dir, tmp_path, capsys):
    out = tmp_path / "rows.jsonl"
    rc = main(
        [
            "bench",
            "--model",
            str(random_model_dir),
            "--backends",
            "onnxruntime,tensorrt",
            "--sizes",
            "64x64,32x48",
            "--batches",
            "1,2",
            "--iters",
            "2",
            "--warmup",
            "1",
            "--jsonl",
            str(out),
            "--host-norm-baseline",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "torch-eager" in text and "onnxruntime" in text and "x eager" in text
    assert "e2e p50 ms" in text and "host ms/frame" in text
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(r["backend"], r["batch"], r["height"], r["width"]) for r in rows} == {
        (b, n, h, w)
        for b in ("torch-eager", "onnxruntime", "onnxruntime-hostnorm")
        for n in (1, 2)
        for h, w in ((64, 64), (32, 48))
    }
    for r in rows:
        assert r["p95_ms"] >= r["p50_ms"] > 0 and r["throughput"] > 0 and r["peak_rss_mb"] > 0
        assert r["speedup"] is not None
        # frame in -> score out includes the network call, so it cannot be (much) below it
        assert r["e2e_p50_ms"] > 0 and r["host_ms_per_frame"] >= 0
        if r["backend"] == "torch-eager":
            assert r["speedup"] == pytest.approx(1.0)
    if "tensorrt" not in {r["backend"] for r in rows}:
        assert "skipped tensorrt" in text


def test_bench_baseline_from_another_model(random_model_dir, tmp_path, capsys):
    """--baseline-model: the torch eager baseline times that directory's network (today's HiRQA-S),
    the other rows --model's (here MobileNetV2 heads and trunk, random), in one run."""
    import torch

    from hirqa_ros.export.model_dir import write_model_dir
    from hirqa_ros.model import HiRQA

    torch.manual_seed(0)
    other = write_model_dir(tmp_path / "random-mnv2", HiRQA("hirqa-mnv2").state_dict(), "hirqa-mnv2",
                            {"name": "random-mnv2"})
    out = tmp_path / "rows.jsonl"
    rc = main(["bench", "--model", str(other), "--baseline-model", str(random_model_dir), "--backends",
               "onnxruntime,torch", "--sizes", "64x64", "--batches", "1", "--iters", "2", "--warmup", "1",
               "--jsonl", str(out)])
    assert rc == 0
    assert "baseline = torch eager fp32 of random-test-weights (hirqa-s)" in capsys.readouterr().out
    rows = {r["backend"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert rows["torch-eager"]["model"] == "random-test-weights"
    assert rows["torch"]["model"] == rows["onnxruntime"]["model"] == "random-mnv2"
    assert rows["torch-eager"]["speedup"] == pytest.approx(1.0)


def test_bench_rejects_a_bad_baseline_model(tmp_path, capsys):
    assert main(["bench", "--baseline-model", str(tmp_path / "missing")]) == 2
    assert "--baseline-model" in capsys.readouterr().err


def test_bench_rejects_unknown_backend(capsys):
    assert main(["bench", "--backends", "openvino"]) == 2


def test_format_table_columns():
    row = BenchRow("onnxruntime", "cpu", "fp32", 4, 480, 640, 10.0, 12.5, 400.0, 900.0, None, 2.0, 11.5, 0.4)
    table = format_table([row])
    assert "480x640" in table and "2.00" in table and "p95 ms" in table
    assert "11.50" in table and "0.400" in table
    legacy = BenchRow("onnxruntime", "cpu", "fp32", 4, 480, 640, 10.0, 12.5, 400.0, 900.0)
    assert format_table([legacy]).splitlines()[1].count(" - ") >= 2  # no e2e timing: dashes


def test_bench_without_an_installed_model_times_random_weights(monkeypatch, capsys):
    from hirqa_ros import artifacts

    def nothing_installed():
        raise artifacts.NoDefaultModelError("no model here")

    monkeypatch.setattr(artifacts, "default_model_dir", nothing_installed)
    rc = main(["bench", "--backends", "onnxruntime", "--sizes", "32x32", "--batches", "1", "--iters", "1",
               "--warmup", "0"])
    assert rc == 0
    assert "model random-bench-weights (hirqa-s)" in capsys.readouterr().out
