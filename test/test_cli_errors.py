"""CLI inputs that are wrong get one clear line and exit 2 (never a traceback, never a silent clamp)."""
from __future__ import annotations

import pytest

from hirqa_ros.cli.main import main


@pytest.mark.parametrize(
    "args,message",
    [
        (["--smoothing", "1.5"], "--smoothing: 1.5 is outside [0, 0.99]"),
        (["--smoothing", "-0.1"], "outside"),
        (["--smoothing", "nan"], "finite"),
        (["--target-frr", "2"], "--target-frr: 2 is outside (0, 1)"),
        (["--target-frr", "0"], "outside (0, 1)"),
        (["--batch", "0"], "--batch: 0 is outside [1, 1024]"),
        (["--batch", "two"], "expected an integer"),
        (["--threshold", "0.2,0.6"], "error"),
    ],
)
def test_bag_eval_out_of_range_options_are_refused(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        main(["bag-eval", str(tmp_path / "bag"), "--out", str(tmp_path / "o"), *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # refused before any work


def test_import_official_bad_file_gives_no_unsafe_advice(tmp_path, capfd):
    """capfd, not capsys: code run from the pickle would write to the process's stdout."""
    torch = pytest.importorskip("torch", reason="torch not installed")
    import os

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint" * 10)

    class Code:
        def __reduce__(self):
            return (os.system, ("echo should-never-run",))

    evil = tmp_path / "evil.pth"
    torch.save({"model_state_dict": Code()}, evil)
    for ckpt in (garbage, evil):
        assert main(["import-official", "--ckpt", str(ckpt), "--variant", "hirqa-s",
                     "--out", str(tmp_path / "out")]) == 1
        captured = capfd.readouterr()
        err = captured.err
        assert "not a loadable PyTorch weights file" in err and len(err.strip().splitlines()) == 1
        assert "weights_only=False" not in err and "weights_only` set to `False" not in err
        assert "should-never-run" not in captured.out
        assert not (tmp_path / "out").exists()
    out = str(tmp_path / "o")
    assert main(["import-official", "--ckpt", "/dev/zero", "--variant", "hirqa-s", "--out", out]) == 2
    assert "not a regular file" in capfd.readouterr().err


def test_score_with_a_bad_model_card_fails_before_scoring(tmp_path, random_model_dir, capsys):
    """A NaN threshold used to crash `hirqa score` while printing, after all the scoring."""
    import shutil

    import cv2
    import numpy as np
    import yaml

    model = tmp_path / "m"
    shutil.copytree(random_model_dir, model)
    card = yaml.safe_load((model / "model.yaml").read_text())
    card["thresholds"]["warn"] = float("nan")
    (model / "model.yaml").write_text(yaml.safe_dump(card))
    cv2.imwrite(str(tmp_path / "a.png"), np.full((40, 40, 3), 90, np.uint8))
    assert main(["score", "--model", str(model), "--no-progress", str(tmp_path / "a.png")]) == 2
    captured = capsys.readouterr()
    assert "thresholds must be finite" in captured.err and captured.out == ""
