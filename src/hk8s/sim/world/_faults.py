"""The world's fault file: the Hetzner API's ``FaultSpec`` plus Talos and Kubernetes faults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from hk8s.errors import ConfigError, ConfigProblem
from hk8s.sim.hcloud import FaultSpec
from hk8s.sim.talos import TalosFaults

__all__ = ["WorldFaults"]


class _TalosSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stuck_in_maintenance: list[str] = Field(default_factory=list)
    failed_upgrades: list[str] = Field(default_factory=list)
    slow_boots: list[str] = Field(default_factory=list)
    slow_boot_factor: float = 5.0


class _KubeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Helm release name -> the error its install Job fails with.
    failing_releases: dict[str, str] = Field(default_factory=dict)


class WorldFaults(BaseModel):
    """The world's fault file: the Hetzner keys (``FaultSpec``) plus ``talos`` and
    ``kubernetes`` sections. Server names are ``fnmatch`` patterns::

        seed: 7
        errors: [{path: "/servers", method: POST, rate: 0.2, code: 503}]
        talos: {stuck_in_maintenance: ["*-app-2"], failed_upgrades: ["*-cp-3"],
                slow_boots: ["*"], slow_boot_factor: 3}
        kubernetes: {failing_releases: {cilium: "INSTALLATION FAILED: timed out"}}
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)
    hcloud: FaultSpec = Field(default_factory=FaultSpec)
    talos: _TalosSpec = Field(default_factory=_TalosSpec)
    kubernetes: _KubeSpec = Field(default_factory=_KubeSpec)

    @classmethod
    def parse(cls, data: dict[str, Any], *, source: str = "faults") -> WorldFaults:
        rest = {k: v for k, v in data.items() if k not in {"talos", "kubernetes"}}
        try:
            return cls(
                hcloud=FaultSpec.parse(rest, source=source),
                talos=_TalosSpec.model_validate(data.get("talos") or {}),
                kubernetes=_KubeSpec.model_validate(data.get("kubernetes") or {}),
            )
        except ValueError as exc:
            raise ConfigError(source, [ConfigProblem("$", str(exc))]) from exc

    @classmethod
    def load(cls, path: str | Path) -> WorldFaults:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(str(path), [ConfigProblem("$", f"cannot read: {exc}")]) from exc
        return cls.parse(data, source=str(path))

    def talos_faults(self) -> TalosFaults:
        spec = self.talos
        return TalosFaults(
            list(spec.stuck_in_maintenance),
            list(spec.failed_upgrades),
            list(spec.slow_boots),
            spec.slow_boot_factor,
        )
