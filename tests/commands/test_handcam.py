"""The ``handcam`` dispatcher: each subcommand is its stage command, and says so in its usage line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.cli import COMMANDS


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_subcommand_names_itself_as_typed(name):
    proc = run("-m", "pipeline.cli", name, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: handcam {name} ")


def test_the_module_form_keeps_its_own_name_and_errors_name_the_subcommand():
    assert run("-m", "pipeline.demo", "--help").stdout.startswith("usage: python -m pipeline.demo ")
    proc = run("-m", "pipeline.cli", "train", "--epochs", "0")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0].startswith("usage: handcam train ")
    assert proc.stderr.strip().splitlines()[-1] == "handcam train: error: argument --epochs: must be at least 1, got 0"


def test_python_m_pipeline_is_the_dispatcher_under_its_own_name():
    proc = run("-m", "pipeline", "study", "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: python -m pipeline study ")
    assert run("-m", "pipeline").stdout.startswith("usage: python -m pipeline COMMAND [options]")


def test_an_unknown_subcommand_is_one_line():
    proc = run("-m", "pipeline.cli", "trian")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == "error: unknown command 'trian'; choose one of " + ", ".join(COMMANDS) + " (handcam --help)"
