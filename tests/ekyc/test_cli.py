"""The `ekyc` command: `parse-mrz` in-process and as `uv run ekyc`, and the lazy wiring of the
reader's subcommands."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import types

import pytest

from ekyc import cli
from tests.ekyc.document import ROOT

VN_MRZ = ("IDVNM0910055134051091005513<<0\n"
          "9110052M3110050VNM<<<<<<<<<<<6\n"
          "NGUYEN<<VAN<DUC<<<<<<<<<<<<<<<\n")


def _run(monkeypatch, capsys, argv, stdin) -> tuple[int, str, str]:
    if isinstance(stdin, bytes):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    else:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_parse_mrz_prints_one_json_object_and_exits_0_when_valid(monkeypatch, capsys):
    code, out, err = _run(monkeypatch, capsys, ["parse-mrz", "--today", "2025-06-01"], VN_MRZ)
    assert code == 0, err
    data = json.loads(out)
    assert data["valid"] is True and data["format"] == "TD1"
    assert data["fields"]["national_id"] == "051091005513"
    assert data["fields"]["birth_date"] == "1991-10-05"
    assert out.count("\n") == 1  # one object, one line


def test_parse_mrz_exits_1_on_a_broken_check_digit(monkeypatch, capsys):
    broken = VN_MRZ.replace("9110052M", "9110053M")
    code, out, _ = _run(monkeypatch, capsys, ["parse-mrz"], broken)
    data = json.loads(out)
    assert code == 1 and data["valid"] is False
    assert "check_digit_birth_date" in data["errors"]


@pytest.mark.parametrize("stdin", ["", "hello\nworld\n", "<" * 5000, b"\xff\xfe\x00garbage\x80",
                                   bytes(range(256)) * 4])
def test_parse_mrz_garbage_is_invalid_never_a_traceback(monkeypatch, capsys, stdin):
    code, out, err = _run(monkeypatch, capsys, ["parse-mrz"], stdin)
    assert code == 1
    assert json.loads(out)["valid"] is False
    assert "Traceback" not in err


def test_usage_errors_and_help(monkeypatch, capsys):
    assert _run(monkeypatch, capsys, [], "")[0] == 2
    assert _run(monkeypatch, capsys, ["no-such-command"], "")[0] == 2
    assert _run(monkeypatch, capsys, ["parse-mrz", "--today", "yesterday"], "")[0] == 2
    code, out, _ = _run(monkeypatch, capsys, ["--help"], "")
    assert code == 0
    for command in ("parse-mrz", "read-document", "evaluate-documents"):
        assert command in out


def test_a_missing_reader_module_gives_a_clear_error_and_exit_2(monkeypatch, capsys):
    monkeypatch.setitem(cli._LAZY, "read-document",
                        ("ekyc.document.no_such_module", "cli_read_document", "read"))
    code, out, err = _run(monkeypatch, capsys, ["read-document", "front.jpg"], "")
    assert code == 2 and out == ""
    assert "ekyc read-document: not available" in err and "Traceback" not in err


def test_lazy_subcommands_get_their_own_arguments_and_exit_code(monkeypatch, capsys):
    fake = types.ModuleType("fake_reader")
    seen = {}

    def add_arguments(parser):
        parser.add_argument("front")
        parser.add_argument("back", nargs="?")
        parser.add_argument("--json", action="store_true")

    def cli_read_document(args):
        seen.update(vars(args))
        return 3

    fake.add_arguments, fake.cli_read_document = add_arguments, cli_read_document
    monkeypatch.setitem(sys.modules, "fake_reader", fake)
    monkeypatch.setitem(cli._LAZY, "read-document", ("fake_reader", "cli_read_document", "read"))
    code, _, _ = _run(monkeypatch, capsys, ["read-document", "f.jpg", "b.jpg", "--json"], "")
    assert code == 3
    assert seen == {"front": "f.jpg", "back": "b.jpg", "json": True}


def test_parse_mrz_does_not_import_opencv():
    script = ("import io, sys; sys.stdin = io.StringIO(sys.argv[1]); from ekyc.cli import main;"
              " code = main(['parse-mrz']); print('cv2' in sys.modules, file=sys.stderr);"
              " sys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", script, VN_MRZ], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "False"


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv is not on PATH")
def test_uv_run_ekyc_parse_mrz():
    # The console script as a user runs it (pyproject: ekyc = "ekyc.cli:main").
    ok = subprocess.run(["uv", "run", "--frozen", "ekyc", "parse-mrz"], input=VN_MRZ, cwd=ROOT,
                        capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["valid"] is True
    bad = subprocess.run(["uv", "run", "--frozen", "ekyc", "parse-mrz"], input="garbage\n",
                         cwd=ROOT, capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and json.loads(bad.stdout)["valid"] is False
    assert "Traceback" not in bad.stderr
