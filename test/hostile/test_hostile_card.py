"""One validation of the model card at load time, for every precision: exact types, finite, ordered
thresholds, required keys; a card without thresholds is refused unless the user passes them."""
from __future__ import annotations

import copy
import math

import cv2
import numpy as np
import pytest
from helpers_hostile import edit_card, one_line_error

from hirqa_ros.artifacts import ArtifactError, MissingThresholds, card_thresholds, load_artifact
from hirqa_ros.cli.main import main

INT8 = {"thresholds": {"warn": 0.5, "error": 0.3, "calibrated": True}}


def _set(path: str, value):
    def edit(card):
        *keys, last = path.split(".")
        node = card
        for k in keys:
            node = node.setdefault(k, {}) if k != "int8" else node.setdefault("int8", copy.deepcopy(INT8))
        node[last] = value
    return edit


@pytest.mark.parametrize("path,value,message", [
    ("thresholds.warn", True, "thresholds must be numbers, got warn=True (bool)"),
    ("thresholds.warn", "0.5", "must be numbers, got warn='0.5' (str)"),
    ("thresholds.warn", math.nan, "thresholds must be finite"),
    ("thresholds.error", math.inf, "thresholds must be finite"),
    ("thresholds.warn", 0.2, "need 0 <= error"),  # inverted: warn 0.2 < error
    ("thresholds.warn", 1.5, "need 0 <= error"),
    ("thresholds.calibrated", "yes", "calibrated must be true or false"),
    ("thresholds", [0.5, 0.3], "must be a mapping"),
    ("int8.thresholds.warn", math.nan, "(int8): thresholds must be finite"),
    ("int8.thresholds.error", 0.9, "(int8): bad thresholds: need 0 <= error"),
    ("int8.thresholds", None, "the int8 section has no thresholds"),
])
def test_bad_thresholds_refused_at_load_for_every_precision(tmp_path, random_model_dir, capsys, path, value,
                                                            message):
    model = edit_card(random_model_dir, tmp_path / "m", _set(path, value))
    with pytest.raises(ArtifactError, match=r"model\.yaml") as exc:
        load_artifact(model)
    assert message in str(exc.value)
    cv2.imwrite(str(tmp_path / "a.png"), np.full((40, 40, 3), 90, np.uint8))
    for precision in ("fp32", "int8"):  # refused when the card is read, whichever model would run
        assert main(["score", "--model", str(model), "--precision", precision, "--no-progress",
                     str(tmp_path / "a.png")]) == 2
        captured = capsys.readouterr()
        assert message in captured.err and captured.out == "" and one_line_error(captured.err)


def test_card_without_thresholds_needs_them_from_the_user(tmp_path, random_model_dir, capsys):
    model = edit_card(random_model_dir, tmp_path / "m", lambda c: c.pop("thresholds"))
    art = load_artifact(model)  # the card is valid: the thresholds can come from the user
    with pytest.raises(MissingThresholds, match="--threshold WARN,ERROR"):
        art.thresholds_for("fp32")
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    assert main(["score", "--model", str(model), "--no-progress", str(img)]) == 2
    captured = capsys.readouterr()
    assert "has no 'thresholds'" in captured.err and captured.out == "" and one_line_error(captured.err)
    assert main(["score", "--model", str(model), "--no-progress", "--jsonl", "--threshold", "0.99,0.98",
                 str(img)]) == 0
    assert '"level": "ERROR"' in capsys.readouterr().out  # the given thresholds are the ones used


@pytest.mark.parametrize("text", ["nan", "0.2,0.6", "2", "-0.1", "a,b", "0.5,0.3,0.1"])
def test_threshold_option_is_range_checked(tmp_path, capsys, text):
    with pytest.raises(SystemExit) as exc:
        main(["score", "--threshold", text, str(tmp_path)])
    assert exc.value.code == 2 and "--threshold" in capsys.readouterr().err


def test_card_thresholds_accepts_ints_and_rejects_missing_keys():
    assert card_thresholds({"warn": 1, "error": 0}, "card").warn == 1.0
    assert card_thresholds(None, "card") is None
    with pytest.raises(ArtifactError, match="lack 'error'"):
        card_thresholds({"warn": 0.5}, "card")


def test_card_alias_bomb_is_refused(tmp_path, random_model_dir):
    model = tmp_path / "m"
    import shutil

    shutil.copytree(random_model_dir, model)
    text = (model / "model.yaml").read_text()
    chain = ["&a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    chain += [f"&{chr(97 + i)} [" + ", ".join(["*" + chr(96 + i)] * 10) + "]" for i in range(1, 8)]
    (model / "model.yaml").write_text(text + "extra: [" + ", ".join(chain) + "]\n")
    with pytest.raises(ArtifactError, match="alias"):
        load_artifact(model)


def test_node_takes_the_users_thresholds_when_the_card_has_none(tmp_path, random_model_dir):
    """The node with a card that has no thresholds: refused in one line that names the parameters to
    set; with warn_threshold and error_threshold given, it starts and judges with them."""
    from helpers_node import NodeProcess, domain_id

    model = edit_card(random_model_dir, tmp_path / "m", lambda c: c.pop("thresholds"))
    common = {"model_path": str(model), "backend": "onnxruntime", "frozen_timeout_s": 0.0}
    refused = NodeProcess(common, domain_id(81), tmp_path / "refused.log")
    try:
        assert refused.proc.wait(60) == 1
    finally:
        refused.stop()
    log = refused.log()
    assert "has no 'thresholds'" in log and "-p warn_threshold:=W" in log and "Traceback" not in log
    given = NodeProcess({**common, "warn_threshold": 0.6, "error_threshold": 0.4}, domain_id(81),
                        tmp_path / "given.log")
    try:
        given.wait_ready()
        assert "thresholds warn=0.600 error=0.400" in given.log()
    finally:
        given.stop()
