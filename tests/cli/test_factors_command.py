"""`tacit factors` lists what the registry finds, plug-ins included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from tests.fake_factors import install, install_swipe, plugins  # noqa: F401 - a fixture


def test_the_names_are_the_installed_factors_a_plug_in_last(
    plugins: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a plug-in factor installed beside the built-ins
    install_swipe(plugins)
    # When a script asks for the names
    assert main(["factors", "--names"]) == 0
    # Then it gets one per line, in wire-code order
    assert capsys.readouterr().out.split() == ["keystroke", "gait", "face", "swipe"]


def test_the_json_says_each_factor_s_code_queue_and_what_it_ships(
    plugins: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a plug-in factor whose queue an operator renamed
    install_swipe(plugins)
    monkeypatch.setenv("TACIT_QUEUES__SWIPE", "score.swipe.eu")
    from core.settings import get_settings

    get_settings.cache_clear()
    try:
        assert main(["factors", "--json"]) == 0
    finally:
        get_settings.cache_clear()
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["swipe"]["wire_code"] == 200 and rows["swipe"]["queue"] == "score.swipe.eu"
    assert rows["swipe"]["distribution"] == "tacit_swipe" and rows["swipe"]["provides"] == []
    assert rows["gait"]["provides"] == ["synthetic", "train", "dataset"]


def test_a_broken_plug_in_is_named_with_its_code(
    plugins: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a plug-in whose module declares no wire code
    install(
        plugins, "tacit_bad", {"bad": "plugin_bad"}, {"plugin_bad": "def load(device='cpu'): ..."}
    )
    # Then the command fails and says which factor and why
    assert main(["factors"]) == 2
    err = capsys.readouterr().err
    assert "'bad'" in err and "WIRE_CODE" in err and "factor_broken" in err
