import subprocess
import sys

import pytest

from inception_zoo.cli import main


def test_table_subset_to_file(tmp_path, capsys):
    out = tmp_path / "table.md"
    assert main(["table", "--models", "inception_v1*", "--output", str(out)]) == 0
    text = out.read_text()
    lines = text.strip().splitlines()
    assert lines[0].split("|")[1].strip() == "model" and "GMACs" in lines[0]
    assert [line.split("|")[1].strip() for line in lines[2:]] == [
        "inception_v1", "inception_v1_bn", "inception_v1_cifar", "inception_v1_cifar_naive"
    ]
    v1_bn = lines[3].split("|")
    assert v1_bn[3].strip() == "6.62" and v1_bn[4].strip() == "1.505"
    assert "wrote" in capsys.readouterr().out


def test_table_format_option(capsys):
    assert main(["table", "--models", "bn_inception", "--format", "simple"]) == 0
    out = capsys.readouterr().out
    assert "bn_inception" in out and "11.30" in out and "|" not in out


def test_list_shows_aliases(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "bn_inception  (alias: inception_v2)" and "inception_v1  (alias: googlenet)" in lines
    assert main(["list", "nomatch"]) == 2
    assert "no model matches 'nomatch'" in capsys.readouterr().err


def test_version_and_case_insensitive_format(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.startswith("inception-zoo 0.")
    assert main(["table", "--models", "bn_inception", "--format", "GitHub"]) == 0
    line = capsys.readouterr().out.splitlines()[2]
    assert line.split("|")[3] == "        11.30 "  # numbers right-aligned


def test_table_no_match(capsys):
    assert main(["table", "--models", "resnet50"]) == 2
    assert "no model matches 'resnet50'" in capsys.readouterr().err


def test_table_bad_format():
    with pytest.raises(SystemExit) as info:
        main(["table", "--format", "bogus"])
    assert info.value.code == 2


def test_table_unwritable_output(tmp_path, capsys, monkeypatch):
    import inception_zoo.analysis

    def fail(name):
        raise AssertionError("the models were counted before the output path was checked")

    monkeypatch.setattr(inception_zoo.analysis, "model_stats", fail)
    assert main(["table", "--output", str(tmp_path / "no" / "such" / "dir.md")]) == 1
    assert "No such file or directory" in capsys.readouterr().err
    assert main(["table", "--output", ""]) == 2


@pytest.mark.slow
def test_table_console_script_is_quiet():
    """The main command, as a user runs it: nothing but the table on the terminal (fvcore and the tracer
    stay silent; the docs tests count every model the same way)."""
    proc = subprocess.run(
        [sys.executable, "-m", "inception_zoo", "table", "--models", "inception_v1_bn"], capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.strip().splitlines()
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["inception_v1_bn"]
