"""The factor registry: every factor is a plug-in found through entry points.

A factor is installed by a distribution that declares it in the ``tacit.factors``
entry-point group: the entry's name is the factor's name, its value the import path of
the factor's module (docs/factors.md, "Bring your own factor"). The built-in factors
register the same way in Tacit's own ``pyproject.toml``. Everything that differs per
factor (queue names, the envelope's factor byte, trust half-lives, pool scaling, the
demo's synthetic users) is derived from here; nothing else keeps a list of factors.

The module is imported to read its constants, so it must stay light (no torch at module
level): the API process imports it too. What a factor module holds:

- ``WIRE_CODE: int`` (required): the envelope's factor byte, 1-255, unique among the
  installed factors. 1-3 are the built-ins', 4-127 are kept for factors that ship with
  Tacit, 128-255 are for a deployment's own plug-ins.
- ``load(device: str = "cpu") -> FactorPipeline`` (required, called only by pools).
- ``HALF_LIFE_S: float`` (optional): how fast this factor's evidence fades in the trust
  score; settings override it, ``trust.default_half_life_s`` stands in when absent.
- ``SCALING: dict`` (optional): the pool's autoscaling figures (``core.scaling.PoolScaling``
  fields); defaults suit a GPU pool that scales to zero.
- ``CAPACITY: dict`` (optional): the factor's figures in the default capacity profile.
- ``PLAINTEXT_BOUNDS: dict`` (optional): ``{limit: (low, high or None)}``, the fields of
  the pipeline's ``limits`` that ``TACIT_PLAINTEXT__<FACTOR>_<LIMIT>`` may set, and their bounds.
- ``RESOURCES: dict`` (optional): the pool pod's ``cpu_request``, ``memory_request``,
  ``cpu_limit``, ``memory_limit`` in the manifests ``tacit deploy`` writes.
- ``BENCH: dict`` (optional): ``rows_per_job`` and ``max_batch`` for ``tacit bench worker``.
- Submodules, each optional: ``synthetic`` (``make_person(seed)`` and
  ``capture(person, rng, n) -> bytes``: the factor takes part in ``tacit demo``),
  ``train`` (``tacit train``), ``dataset`` (``tacit eval`` and ``tacit eval trust``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.base import FactorPipeline

GROUP = "tacit.factors"
NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")


class FactorError(ValueError):
    """A factor is unknown or its plug-in is broken; ``code`` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class FactorSpec:
    """One installed factor: its name, module and the constants it declares."""

    name: str
    module: str
    wire_code: int
    distribution: str = ""
    half_life_s: float | None = None
    scaling: Mapping[str, Any] = field(default_factory=dict)
    capacity: Mapping[str, Any] = field(default_factory=dict)
    bench: Mapping[str, Any] = field(default_factory=dict)
    plaintext_bounds: Mapping[str, tuple[int, int | None]] = field(default_factory=dict)
    resources: Mapping[str, str] = field(default_factory=dict)

    @property
    def queue(self) -> str:
        """The default name of the factor's score queue (settings may override it)."""
        return f"score.{self.name}"

    def provides(self, submodule: str) -> bool:
        """Whether the factor ships ``<module>.<submodule>`` (synthetic, train, dataset...)."""
        return _has_module(f"{self.module}.{submodule}")

    def submodule(self, name: str) -> ModuleType:
        if not self.provides(name):
            raise FactorError("factor_lacks_module", f"factor {self.name!r} has no {name!r} module")
        return importlib.import_module(f"{self.module}.{name}")

    def load(self, device: str = "cpu") -> FactorPipeline:
        """The factor's pipeline on `device` (imports the model: torch and the weights)."""
        pipeline: FactorPipeline = importlib.import_module(self.module).load(device=device)
        if pipeline.factor != self.name:
            raise FactorError(
                "factor_mismatch",
                f"{self.module}.load() returned a pipeline for {pipeline.factor!r}, not {self.name!r}",
            )
        return pipeline


@lru_cache(maxsize=256)
def _has_module(path: str) -> bool:
    try:
        return importlib.util.find_spec(path) is not None
    except ModuleNotFoundError:
        return False


def check_name(name: object) -> str:
    """A factor name is ``[a-z][a-z0-9_]{0,31}``; raises FactorError("bad_factor") otherwise."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise FactorError("bad_factor", f"factor names are [a-z][a-z0-9_]{{0,31}}, not {name!r}")
    return name


def _describe(name: str, module_path: str, distribution: str) -> FactorSpec:
    where = f"factor {name!r} ({module_path}, from {distribution or 'an unnamed distribution'})"
    check_name(name)
    try:
        module = importlib.import_module(module_path)
    except Exception as e:  # noqa: BLE001 - a broken plug-in is reported, by name
        raise FactorError("factor_broken", f"{where} cannot be imported: {e}") from e
    code = getattr(module, "WIRE_CODE", None)
    if not isinstance(code, int) or isinstance(code, bool) or not 1 <= code <= 255:
        raise FactorError("factor_broken", f"{where}: WIRE_CODE must be an int in 1..255")
    if not callable(getattr(module, "load", None)):
        raise FactorError("factor_broken", f"{where}: the module has no load(device) function")
    half_life = getattr(module, "HALF_LIFE_S", None)
    return FactorSpec(
        name=name,
        module=module_path,
        wire_code=code,
        distribution=distribution,
        half_life_s=None if half_life is None else float(half_life),
        scaling=dict(getattr(module, "SCALING", {})),
        capacity=dict(getattr(module, "CAPACITY", {})),
        bench=dict(getattr(module, "BENCH", {})),
        plaintext_bounds=dict(getattr(module, "PLAINTEXT_BOUNDS", {})),
        resources={k: str(v) for k, v in getattr(module, "RESOURCES", {}).items()},
    )


@lru_cache(maxsize=1)
def installed() -> Mapping[str, FactorSpec]:
    """Every installed factor by name, in wire-code order; refuses clashing plug-ins."""
    found: dict[str, FactorSpec] = {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        dist = ep.dist.name if ep.dist is not None else ""
        factor = _describe(ep.name, ep.value, dist)
        if ep.name in found and found[ep.name].module != factor.module:
            raise FactorError(
                "factor_clash",
                f"factor {ep.name!r} is installed twice: {found[ep.name].module} and {ep.value}",
            )
        found[ep.name] = factor
    codes: dict[int, str] = {}
    for f in found.values():
        if f.wire_code in codes:
            raise FactorError(
                "factor_clash",
                f"factors {codes[f.wire_code]!r} and {f.name!r} both declare WIRE_CODE {f.wire_code}",
            )
        codes[f.wire_code] = f.name
    return dict(sorted(found.items(), key=lambda kv: kv[1].wire_code))


def names() -> tuple[str, ...]:
    """The installed factors' names, in wire-code order."""
    return tuple(installed())


def get(name: str) -> FactorSpec:
    """The installed factor `name`; FactorError("unknown_factor") when it is not installed."""
    try:
        return installed()[name]
    except (KeyError, TypeError):
        raise FactorError(
            "unknown_factor", f"unknown factor {name!r}; installed: {', '.join(names())}"
        ) from None


def by_code(code: int) -> FactorSpec | None:
    """The factor whose envelope byte is `code`, if one is installed."""
    return next((f for f in installed().values() if f.wire_code == code), None)


def providing(submodule: str) -> tuple[str, ...]:
    """The installed factors that ship ``<module>.<submodule>`` (e.g. ``synthetic``)."""
    return tuple(n for n, f in installed().items() if f.provides(submodule))


def load_pipeline(factor: str, device: str = "cpu") -> FactorPipeline:
    """The installed factor's pipeline with its committed weights on `device` (``cpu``, ``cuda:N``)."""
    return get(factor).load(device)
