"""Users' YAML/JSON files are read with limits (size, depth, alias expansion) by one loader, refused
with a message naming the file; outputs are replaced only by complete outputs (files.staged_output)."""
from __future__ import annotations

import json
import sys

import pytest
from helpers_hostile import alias_bomb, leftovers, run_with_peak_rss

from hirqa_ros.files import UntrustedFileError, load_untrusted, staged_output, staged_outputs


def test_alias_bomb_labels_refused_with_peak_memory_under_200_mb(tmp_path):
    """The issue's case: a billion-laughs labels file used 1.9-5.4 GB in bag-eval. Peak RSS of a fresh
    process that imports the labels reader and reads the file (the whole process, imports included)."""
    bomb = alias_bomb(tmp_path / "bomb.yaml")
    code = ("import sys\nfrom hirqa_ros.bag.labels import Labels, LabelsError\n"
            "try:\n    Labels.load(sys.argv[1])\n"
            "except LabelsError as exc:\n    print(exc)\n    sys.exit(3)\n")
    p, peak_mb = run_with_peak_rss([sys.executable, "-c", code, str(bomb)])
    print(f"\nalias bomb ({bomb.stat().st_size} bytes): refused, peak RSS {peak_mb:.0f} MB")
    assert p.returncode == 3, p.stdout + p.stderr
    assert str(bomb) in p.stdout and "alias" in p.stdout
    assert peak_mb < 200


@pytest.mark.parametrize("text,message", [
    ("a: " + "[" * 200 + "]" * 200 + "\n", "deeper than"),
    ("x: &x [1, 2]\ny: [" + ", ".join(["*x"] * 10) + "]\n", None),  # small aliases are fine
    ("a: [\n", "not valid YAML"),
    ("\xff\xfe", None),
])
def test_yaml_limits(tmp_path, text, message):
    f = tmp_path / "f.yaml"
    f.write_bytes(text.encode("latin-1") if text.startswith("\xff") else text.encode())
    if text.startswith("\xff"):
        with pytest.raises(UntrustedFileError, match="not UTF-8"):
            load_untrusted(f, "labels")
    elif message is None:
        assert load_untrusted(f, "labels")["y"] == [[1, 2]] * 10
    else:
        with pytest.raises(UntrustedFileError, match=message) as exc:
            load_untrusted(f, "labels")
        assert str(f) in str(exc.value) and "labels" in str(exc.value)


@pytest.mark.slow  # over 10 s on the loaded 2-core machine
def test_oversized_and_special_files_are_refused(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("segments: []\n" + "# padding\n" * 200_000)
    with pytest.raises(UntrustedFileError, match="larger than"):
        load_untrusted(big, "labels")
    many = tmp_path / "many.yaml"
    many.write_text("x: [" + ", ".join("1" * 1 for _ in range(250_000)) + "]\n")
    with pytest.raises(UntrustedFileError, match="values"):
        load_untrusted(many, "labels")
    import os

    os.mkfifo(tmp_path / "fifo.yaml")
    with pytest.raises(UntrustedFileError, match="FIFO"):  # never opened: a FIFO would block
        load_untrusted(tmp_path / "fifo.yaml", "labels")
    with pytest.raises(UntrustedFileError, match="cannot read"):
        load_untrusted(tmp_path / "missing.yaml", "labels")


def test_recursive_alias_and_json_limits(tmp_path):
    rec = tmp_path / "rec.yaml"
    rec.write_text("a: &a [1, *a]\n")
    with pytest.raises(UntrustedFileError):
        load_untrusted(rec, "labels")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(UntrustedFileError, match=r"deep"):
        load_untrusted(deep, "card")
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"a": [1, 2, {"b": None}]}))
    assert load_untrusted(ok) == {"a": [1, 2, {"b": None}]}


def test_staged_output_replaces_whole_or_not_at_all(tmp_path):
    out = tmp_path / "result"
    out.mkdir()
    (out / "old.txt").write_text("complete earlier result")
    (out / "stale.bin").write_text("from the earlier run")
    with pytest.raises(KeyboardInterrupt), staged_output(out) as work:
        work.mkdir()
        (work / "new.txt").write_text("half")
        raise KeyboardInterrupt  # Ctrl-C mid-write
    assert sorted(p.name for p in out.iterdir()) == ["old.txt", "stale.bin"]
    assert leftovers(tmp_path) == []
    with staged_output(out) as work:
        work.mkdir()
        (work / "new.txt").write_text("complete")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]  # no stale file beside the new result
    assert leftovers(tmp_path) == [] and oct(out.stat().st_mode & 0o777) != "0o700"
    with staged_output(out, copy_of=out) as work:  # edit in place: a copy, moved back when done
        (work / "more.txt").write_text("x")
    assert sorted(p.name for p in out.iterdir()) == ["more.txt", "new.txt"]


def test_staged_outputs_commit_together(tmp_path):
    bag, labels = tmp_path / "bag", tmp_path / "bag.labels.yaml"
    labels.write_text("old")
    with pytest.raises(RuntimeError), staged_outputs([bag, labels]) as (b, lab):
        b.mkdir()
        lab.write_text("new")
        raise RuntimeError("disk full")
    assert not bag.exists() and labels.read_text() == "old"
    with staged_outputs([bag, labels]) as (b, lab):
        b.mkdir()
        lab.write_text("new")
    assert bag.is_dir() and labels.read_text() == "new" and leftovers(tmp_path) == []
