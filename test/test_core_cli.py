"""`hirqa score` / `export` / `import-official` and the media reader, on real files."""

import csv
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from hirqa_ros import media
from hirqa_ros.cli.main import main


def _write_video(path: Path, frames: int = 7, size=(96, 64)) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    assert w.isOpened(), "OpenCV cannot write MJPG/avi here"
    rng = np.random.default_rng(3)
    for _ in range(frames):
        w.write(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    w.release()
    return path


@pytest.fixture
def mixed_folder(tmp_path):
    """Two good images (one in a subfolder), a corrupt JPEG, a zero-byte file, a text file, a video."""
    d = tmp_path / "inputs"
    (d / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    assert cv2.imwrite(str(d / "good.jpg"), img)
    assert cv2.imwrite(str(d / "sub" / "good.png"), img[:64, :80])
    good = (d / "good.jpg").read_bytes()
    (d / "corrupt.jpg").write_bytes(good[:40] + rng.integers(0, 256, 600, dtype=np.uint8).tobytes())
    (d / "empty.jpg").write_bytes(b"")
    (d / "notes.txt").write_text("not an image\n")
    _write_video(d / "clip.avi")
    return d


def test_score_folder_jsonl_reports_bad_files_and_exit_code(mixed_folder, random_model_dir, capsys):
    rc = main(
        [
            "score",
            "--model",
            str(random_model_dir),
            "--every",
            "3",
            "--jsonl",
            "--no-progress",
            str(mixed_folder),
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 1
    rows = [json.loads(line) for line in out.splitlines()]
    scored = [row for row in rows if row["score"] is not None]
    for row in scored:
        assert {"source", "frame", "score"} <= set(row)
        assert 0.0 < row["score"] < 1.0
        assert row["level"] in ("OK", "WARN", "ERROR")
    by_source = {}
    for row in scored:
        by_source.setdefault(Path(row["source"]).name, []).append(row["frame"])
    assert by_source == {"good.jpg": [None], "good.png": [None], "clip.avi": [0, 3, 6]}
    # the bad files are rows too, refused in the node's words (refusals.py), the message as "error"
    refused = {Path(row["source"]).name: row for row in rows if row["score"] is None}
    assert set(refused) == {"corrupt.jpg", "empty.jpg", "notes.txt"}
    for name, row in refused.items():
        assert (row["level"], row["reason"], row["fault"]) == (None, "decode_error", None), row
        assert row["error"] and row["error"] in err and name in err
    assert "0 bytes" in refused["empty.jpg"]["error"]
    assert "could not decode" in refused["corrupt.jpg"]["error"]


def test_score_all_good_exit_zero_table_and_csv(tmp_path, random_model_dir, capsys):
    rng = np.random.default_rng(1)
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), rng.integers(0, 256, (64, 72, 3), dtype=np.uint8))
    assert main(["score", "--model", str(random_model_dir), "--no-progress", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["source", "frame", "score", "level", "reason"] and len(out) == 3
    assert (
        main(
            [
                "score",
                "--model",
                str(random_model_dir),
                "--csv",
                "--input-policy",
                "crops:2x48",
                str(tmp_path / "img0.png"),
            ]
        )
        == 0
    )
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["source", "frame", "score", "level", "reason", "fault", "fault_confidence", "error"]
    assert len(rows) == 2
    assert rows[1][1] == "" and 0 < float(rows[1][2]) < 1
    assert rows[1][4:] == ["", "", "", ""]  # no reason; no fault head in this model: no class; no error


def test_score_missing_path_fails(tmp_path, random_model_dir, capsys):
    assert main(["score", "--model", str(random_model_dir), str(tmp_path / "nope.jpg")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_score_without_default_model_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HIRQA_MODEL", str(tmp_path / "nothing"))
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.zeros((40, 40, 3), np.uint8))
    assert main(["score", str(img)]) == 2
    err = capsys.readouterr().err
    assert "no default model is installed" in err and "hirqa import-official" in err


@pytest.mark.slow
def test_import_official_then_score_and_export(tmp_path, capsys):
    torch = pytest.importorskip("torch", reason="torch not installed")
    from hirqa_ros.model import HiRQA

    torch.manual_seed(4)
    ckpt = tmp_path / "HiRQA-S.pth"
    torch.save({"model_state_dict": HiRQA("hirqa-s").state_dict()}, ckpt)
    out_dir = tmp_path / "official"
    assert main(["import-official", "--ckpt", str(ckpt), "--variant", "hirqa-s", "--out", str(out_dir)]) == 0
    assert "licence" in capsys.readouterr().out
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.full((48, 64, 3), 90, np.uint8))
    assert main(["score", "--model", str(out_dir), "--backend", "torch", "--jsonl", str(img)]) == 0
    torch_score = json.loads(capsys.readouterr().out)["score"]
    assert main(["score", "--model", str(out_dir), "--backend", "onnxruntime", "--jsonl", str(img)]) == 0
    assert json.loads(capsys.readouterr().out)["score"] == pytest.approx(torch_score, abs=1e-4)

    onnx_out = tmp_path / "exported.onnx"
    assert main(["export", "--model", str(out_dir), "--onnx", str(onnx_out), "--fp16"]) == 0
    assert onnx_out.stat().st_size > 10e6
    from hirqa_ros.backends import probe

    if not probe("tensorrt").ok:
        assert main(["export", "--model", str(out_dir), "--engine", str(tmp_path / "x.plan")]) == 2
        assert "tensorrt" in capsys.readouterr().err
    assert (
        main(["import-official", "--ckpt", str(ckpt), "--variant", "hirqa", "--out", str(tmp_path / "y")])
        == 1
    )
    assert "--variant hirqa-s" in capsys.readouterr().err


def test_help_works_for_core_subcommands(capsys):
    for cmd in ("score", "export", "import-official"):
        with pytest.raises(SystemExit) as exc:
            main([cmd, "--help"])
        assert exc.value.code == 0
        assert "usage" in capsys.readouterr().out


def test_media_reader_every_nth_and_pixel_formats(tmp_path):
    video = _write_video(tmp_path / "v.avi", frames=5)
    frames = list(media.iter_media([video], every=2))
    assert [f.frame for f in frames] == [0, 2, 4]
    assert all(f.rgb.shape == (64, 96, 3) and f.rgb.dtype == np.uint8 for f in frames)
    deep = (np.arange(40 * 50 * 3, dtype=np.uint32).reshape(40, 50, 3) * 17 % 65536).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((30, 20), 200, np.uint8))
    rgba = np.dstack([np.zeros((10, 10, 3), np.uint8), np.full((10, 10), 255, np.uint8)])
    rgba[..., 0] = 255  # blue in BGR(A)
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    d = media.read_image(tmp_path / "deep.png")
    assert d.dtype == np.uint8 and d.shape == (40, 50, 3)
    np.testing.assert_array_equal(d[..., 0], ((deep[..., 2].astype(np.uint32) + 128) // 257).astype(np.uint8))
    assert media.read_image(tmp_path / "grey.png").shape == (30, 20, 3)
    assert tuple(media.read_image(tmp_path / "rgba.png")[0, 0]) == (0, 0, 255)
    (tmp_path / "broken.avi").write_bytes(b"RIFF" + b"\0" * 100)
    errors = [x for x in media.iter_media([tmp_path / "broken.avi"]) if isinstance(x, media.MediaError)]
    assert len(errors) == 1 and "video" in errors[0].message
    with pytest.raises(ValueError):
        list(media.iter_media([video], every=0))


def test_score_refuses_too_small_images_like_the_node(tmp_path, random_model_dir, capsys):
    """`hirqa score` runs the node's frame checks: a 12x10 image is refused, the rest of its batch scored."""
    rng = np.random.default_rng(5)
    cv2.imwrite(str(tmp_path / "a.png"), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / "b_tiny.png"), rng.integers(0, 256, (10, 12, 3), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / "c.png"), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    args = ["score", "--model", str(random_model_dir), "--jsonl", "--no-progress", str(tmp_path)]
    assert main(args) == 1
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [Path(r["source"]).name for r in rows] == ["a.png", "b_tiny.png", "c.png"]
    assert [r["reason"] for r in rows if r["score"] is None] == ["too_small"]  # the node's word for it
    assert rows[1]["error"] == "12x10 frame is below min_image_side=16"
    assert "b_tiny.png: 12x10 frame is below min_image_side=16" in err
    assert main([*args[:-1], "--min-image-side", "8", str(tmp_path)]) == 0
    out, _ = capsys.readouterr()
    assert len(out.splitlines()) == 3
