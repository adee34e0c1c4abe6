"""The factor registry: what the tacit.factors entry points install, and what it refuses."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from core import factors as registry
from core.factors import FactorError
from tests.fake_factors import install, install_swipe, plugins  # noqa: F401 - a fixture


def test_the_built_in_factors_register_through_entry_points_in_wire_code_order() -> None:
    # Given Tacit as installed, with no plug-in
    # Then the registry finds its three factors, each with its envelope byte
    assert registry.names() == ("keystroke", "gait", "face")
    assert [f.wire_code for f in registry.installed().values()] == [1, 2, 3]
    assert registry.get("gait").queue == "score.gait"
    assert registry.by_code(3) is registry.get("face")


def test_describing_the_factors_imports_no_model() -> None:
    # The API reads the registry on every upload: a factor module must not pull in torch.
    import subprocess

    code = "import sys, core.factors as f; f.installed(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_plug_in_is_one_more_factor_with_its_queue_code_half_life_and_scaling(
    plugins: Path,
) -> None:
    # Given a distribution that declares a factor of its own
    install_swipe(plugins)
    # When the registry is read
    swipe = registry.get("swipe")
    # Then it comes after the built-ins, by its wire code, with what it declares
    assert registry.names()[-1] == "swipe" and swipe.wire_code == 200
    assert (swipe.queue, swipe.half_life_s, swipe.distribution) == (
        "score.swipe",
        45.0,
        "tacit_swipe",
    )
    from core.scaling import pool_scaling
    from core.settings import Settings
    from core.trust.fusion import FusionParams

    assert pool_scaling()["swipe"].min_replicas == 2
    settings = Settings()
    assert settings.queues.score_queue("swipe") == "score.swipe"
    assert FusionParams.from_settings(settings.trust).half_life("swipe") == 45.0


@pytest.mark.parametrize(
    ("entries", "source", "message"),
    [
        ({"swipe": "plugin_nocode"}, "def load(device='cpu'): ...", "WIRE_CODE"),
        ({"swipe": "plugin_big"}, "WIRE_CODE = 256\ndef load(device='cpu'): ...", "WIRE_CODE"),
        ({"swipe": "plugin_noload"}, "WIRE_CODE = 201", "load(device)"),
        ({"swipe": "plugin_clash"}, "WIRE_CODE = 2\ndef load(device='cpu'): ...", "both declare"),
        ({"Swipe-1": "plugin_badname"}, "WIRE_CODE = 202\ndef load(device='cpu'): ...", "[a-z]"),
        ({"swipe": "plugin_raises"}, "raise RuntimeError('no GPU here')", "cannot be imported"),
    ],
)
def test_a_broken_plug_in_is_refused_by_name_with_what_is_wrong(
    plugins: Path, entries: dict[str, str], source: str, message: str
) -> None:
    # Given a plug-in that breaks one rule of the contract
    (module,) = entries.values()
    install(plugins, "tacit_bad", entries, {module: source})
    # When the registry is read, then it refuses, saying which plug-in and why
    with pytest.raises(FactorError) as e:
        registry.installed()
    assert message in str(e.value)


def test_a_name_outside_the_registry_is_unknown_everywhere_it_is_named() -> None:
    from pydantic import ValidationError

    from core.protocol.envelope import factor_code
    from core.protocol.errors import ProtocolError
    from core.settings import QueueSettings

    with pytest.raises(FactorError) as e:
        registry.get("iris")
    assert e.value.code == "unknown_factor" and "keystroke" in str(e.value)
    with pytest.raises(ProtocolError) as p:
        factor_code("iris")
    assert p.value.code == "envelope_unknown_factor"
    with pytest.raises(ValidationError):
        QueueSettings(iris="score.iris")  # a typo in TACIT_QUEUES__<FACTOR> is refused
    with pytest.raises(FactorError):
        registry.check_name("x" * 33)


def test_plaintext_limits_are_the_factors_own_within_their_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError

    from core.settings import Settings

    monkeypatch.setenv("TACIT_PLAINTEXT__GAIT_MAX_WINDOWS", "64")
    assert Settings().plaintext.model_dump() == {"gait_max_windows": 64}
    monkeypatch.setenv("TACIT_PLAINTEXT__GAIT_MAX_FRAMES", "8")  # gait declares no frames
    with pytest.raises(ValidationError):
        Settings()
