import importlib

import pytest

from neurospine.cli.main import COMMAND_MODULES, build_parser, main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "labels" in out and "models" in out


def test_every_command_module_exists_and_registers():
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"neurospine.cli.{name}")
        assert callable(module.register)
    parser = build_parser()
    assert parser.prog == "neurospine"


def test_labels_command_writes_itksnap(tmp_path):
    out = tmp_path / "labels.txt"
    assert main(["labels", "--format", "itksnap", "--out", str(out)]) == 0
    assert "spinal_cord" in out.read_text()


def test_models_json_runs(capsys):
    assert main(["models", "--json"]) == 0
    assert capsys.readouterr().out.strip().startswith("[")


def test_no_command_is_usage_error():
    assert main([]) == 2
