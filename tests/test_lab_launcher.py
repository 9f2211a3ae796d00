"""The launcher behind ``make lab`` (``lab/start.py``): its checks, messages and configuration, without
starting JupyterLab (``tests/site/test_lab.py`` starts it and runs a chapter in a real browser)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def launcher() -> ModuleType:
    spec = importlib.util.spec_from_file_location("study_lab_start", REPO / "lab" / "start.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_taken_port_is_replaced_and_the_message_names_both(launcher: ModuleType) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        port, note = launcher.choose_port(taken)
    assert port != taken
    assert note == f"port {taken} is taken (another JupyterLab?): using port {port} instead"


def test_a_free_port_is_kept_without_a_note(launcher: ModuleType) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    assert launcher.choose_port(free) == (free, None)


def test_this_environment_has_what_jupyterlab_needs(launcher: ModuleType) -> None:
    launcher.check_environment()


def test_a_missing_kernel_says_to_run_make_setup(launcher: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    def missing(self: object, name: str) -> None:
        raise NoSuchKernel(name)

    monkeypatch.setattr(KernelSpecManager, "get_kernel_spec", missing)
    with pytest.raises(launcher.LabError, match=r"no Jupyter kernel 'python3' .*run `make setup`"):
        launcher.check_environment()


def test_a_missing_jupyterlab_says_to_run_make_setup(launcher: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == "jupyterlab" else real(name, *args)
    )
    with pytest.raises(launcher.LabError, match=r"jupyterlab not installed in .*run `make setup`"):
        launcher.check_environment()


def test_a_kernel_of_another_python_is_refused(launcher: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    other = SimpleNamespace(argv=["/opt/other/bin/python", "-m", "ipykernel_launcher"], resource_dir="/home/k/python3")
    monkeypatch.setattr(KernelSpecManager, "get_kernel_spec", lambda self, name: other)
    with pytest.raises(launcher.LabError, match=r"runs /opt/other/bin/python, not this project's"):
        launcher.check_environment()


def test_files_are_served_relative_to_the_root_and_bad_ones_named(launcher: ModuleType) -> None:
    root = REPO / "chapters"
    assert launcher.lab_paths(root, [str(root / "attention_computed.md")]) == ["attention_computed.md"]
    with pytest.raises(launcher.LabError, match=r"no_such\.md: no such file; the chapters are .*attention_comp"):
        launcher.lab_paths(root, ["no_such.md"])
    with pytest.raises(launcher.LabError, match=r"is outside .*chapters"):
        launcher.lab_paths(root, [str(REPO / "README.md")])


def test_a_bad_file_stops_the_launcher_before_jupyterlab_starts(
    launcher: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert launcher.main(["chapters/no_such.md", "--root", str(REPO / "chapters")]) == 2
    assert "make lab: chapters/no_such.md: no such file" in capsys.readouterr().err


def test_jupyterlab_options_pass_through_and_others_are_refused(launcher: ModuleType) -> None:
    args = launcher.parse_args(["--no-browser", "--LabApp.expose_app_in_browser=True"])
    assert args.extra == ("--LabApp.expose_app_in_browser=True",) and args.no_browser
    with pytest.raises(SystemExit):
        launcher.parse_args(["--bogus"])


def test_the_command_runs_this_python_on_localhost_with_the_token(launcher: ModuleType) -> None:
    root = REPO / "chapters"
    command = launcher.lab_command(root, 8899, "tok", False, ["attention_computed.md"])
    assert command[:3] == [sys.executable, "-m", "jupyterlab"]
    assert {"--ServerApp.ip=127.0.0.1", "--ServerApp.port=8899", "--ServerApp.port_retries=0",
            "--IdentityProvider.token=tok", "--ServerApp.open_browser=False"} <= set(command)
    assert command[-1] == str(root / "attention_computed.md")


def test_the_reader_s_home_config_is_left_alone(launcher: ModuleType, tmp_path: Path) -> None:
    env = launcher.lab_environment(tmp_path)
    assert env["JUPYTER_CONFIG_DIR"] == str(tmp_path / "config")
    assert (tmp_path / "config" / "migrated").is_file()  # jupyter_core copies nothing into it
    assert env["JUPYTER_CONFIG_PATH"].split(os.pathsep)[0] == str(REPO / "lab")
    assert env["JUPYTERLAB_SETTINGS_DIR"].startswith(str(tmp_path))
    assert env["JUPYTERLAB_WORKSPACES_DIR"].startswith(str(tmp_path))
    assert env["HF_HUB_OFFLINE"] in {"1", os.environ.get("HF_HUB_OFFLINE")}


def test_the_configuration_opens_markdown_as_notebooks_and_fetches_nothing() -> None:
    overrides = json.loads((REPO / "lab" / "settings" / "overrides.json").read_text())
    viewers = overrides["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers == {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}
    notification = overrides["@jupyterlab/apputils-extension:notification"]
    assert notification == {"fetchNews": "false", "checkForUpdates": False}
    lab = json.loads((REPO / "lab" / "jupyter_lab_config.json").read_text())["LabApp"]
    assert lab["news_url"] is None and lab["extension_manager"] == "readonly"
    assert lab["check_for_updates_class"] == "jupyterlab.NeverCheckForUpdate"
    disabled = json.loads((REPO / "lab" / "labconfig" / "page_config.json").read_text())["disabledExtensions"]
    assert disabled == {
        "@jupyterlab/apputils-extension:announcements": True,
        "@jupyterlab/extensionmanager-extension:plugin": True,
    }


def test_make_lab_runs_the_launcher_with_the_chapter_and_port() -> None:
    if shutil.which("make") is None:
        pytest.skip("no make")
    out = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", "lab", "OPEN=chapters/attention_computed.md", "LAB_PORT=9999",
         "LAB_OPTIONS=--no-browser"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout
    assert ".venv/bin/python lab/start.py --port 9999 --no-browser chapters/attention_computed.md" in out, out


def test_missing_npm_copies_of_bertviz_s_scripts_are_a_warning_naming_the_fix(
    launcher: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(launcher, "REPO", tmp_path)
    assert "run `make site-assets`" in launcher.view_scripts_note()
    (tmp_path / "site" / "node_modules").mkdir(parents=True)
    (tmp_path / "site" / "node_modules" / ".package-lock.json").write_text("{}")
    assert launcher.view_scripts_note() is None
