"""Project configuration, read from ``brownie-config.yaml`` (the one source of compiler settings and networks)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import yaml


class ConfigError(Exception):
    """brownie-config.yaml is missing or does not say what the tools need."""


def project_root() -> Path:
    """The repository root: SMARTSLA_ROOT if set, else the folder above this package (in an installed package,
    the folder that holds it: no checkout, see :func:`is_checkout`)."""
    env = os.environ.get("SMARTSLA_ROOT")
    return Path(env).resolve() if env else Path(__file__).resolve().parents[2]


# An installed package carries the checkout's brownie-config.yaml here (a link in the repository, a copy in the
# wheel), so there is still one source of the networks and compiler settings.
PACKAGED_CONFIG = Path(__file__).with_name("brownie-config.yaml")


def is_checkout(root: Path | None = None) -> bool:
    """Whether the contracts' sources are here (a clone), rather than only the shipped build (a package)."""
    root = root or project_root()
    return (root / "brownie-config.yaml").is_file() and (root / "contracts").is_dir()


def state_home() -> Path:
    """Where smart-sla keeps what outlives a command: local nodes, keystores, deployed factories.
    SMARTSLA_HOME if set, else ~/.smartsla."""
    env = os.environ.get("SMARTSLA_HOME")
    return Path(env).expanduser().resolve() if env else Path.home() / ".smartsla"


def load_config(root: Path | None = None) -> dict[str, Any]:
    return _load_config(root or project_root())


@functools.lru_cache(maxsize=None)
def _load_config(root: Path) -> dict[str, Any]:
    path = root / "brownie-config.yaml"
    if not path.is_file() and not os.environ.get("SMARTSLA_ROOT"):
        path = PACKAGED_CONFIG
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; smart-sla reads compiler settings and networks from it") from None
    if not isinstance(data, dict) or "compiler" not in data or "networks" not in data:
        raise ConfigError(f"{path}: needs top-level `compiler` and `networks` sections")
    return data


def compiler_settings() -> dict[str, Any]:
    compiler = load_config()["compiler"]
    solc = compiler.get("solc", {})
    for key in ("version",):
        if key not in solc:
            raise ConfigError(f"brownie-config.yaml: compiler.solc.{key} is required")
    if "evm_version" not in compiler:
        raise ConfigError("brownie-config.yaml: compiler.evm_version is required (pin it: local chains lag solc)")
    return {
        "version": str(solc["version"]),
        "evm_version": str(compiler["evm_version"]),
        "optimizer": dict(solc.get("optimizer", {"enabled": True, "runs": 200})),
        "via_ir": bool(solc.get("via_ir", False)),
        "remappings": list(solc.get("remappings", [])),
    }


def network(name: str) -> dict[str, Any]:
    networks = load_config()["networks"]
    if name not in networks or name == "default":
        known = ", ".join(k for k in networks if k not in ("default", "live"))
        raise ConfigError(f"unknown network {name!r}; brownie-config.yaml defines: {known}")
    settings = dict(networks[name])
    if settings.get("kind") == "node" and os.environ.get("SMARTSLA_NODE_PORT"):
        # lets tests and a second checkout run their own node beside the user's on 8545
        settings["port"] = int(os.environ["SMARTSLA_NODE_PORT"])
    return settings


def network_names() -> list[str]:
    return [k for k in load_config()["networks"] if k not in ("default", "live")]


def default_network() -> str:
    return str(load_config()["networks"].get("default", "embedded"))
