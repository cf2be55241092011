"""The daemon's configuration file (``oracle.yaml``) and its signing key.

The key comes from an encrypted keystore (password from an environment variable or a prompt) or from an
environment variable holding the raw key. It is never printed or logged: errors name where it came from only.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address

from smartsla.chain.accounts import AccountError, decrypt_keystore, key_from_env
from smartsla.units import UnitError, parse_duration_seconds

ALLOWED_KEYS = {"rpc_url", "chain_id", "factory", "key", "store", "evidence_dir", "listen", "peers", "terms",
                "control", "grace", "poll", "max_clock_skew", "prometheus"}


class ConfigError(ValueError):
    """The configuration is wrong; the message names the key and the fix."""


@dataclass(frozen=True)
class KeySource:
    keystore: Path | None = None
    password_env: str | None = None
    env: str | None = None

    def load(self, interactive: bool = False) -> LocalAccount:
        try:
            if self.env:
                return key_from_env(self.env)
            assert self.keystore is not None
            return decrypt_keystore(self.keystore, self.password_env, interactive)
        except AccountError as exc:
            raise ConfigError(f"key.{'env' if self.env else 'keystore'}: {exc}") from None


@dataclass(frozen=True)
class OracleConfig:
    rpc_url: str
    factory: str
    key: KeySource
    store: Path
    evidence_dir: Path
    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    chain_id: int | None = None
    peers: tuple[str, ...] = ()
    terms: tuple[Path, ...] = ()
    control: tuple[str, ...] = ()
    grace: int = 5
    poll: int = 2
    max_clock_skew: int = 60   # seconds between this machine's clock and the chain's before the log says so
    # where terms' events.prometheus expressions are read when they name no url of their own
    prometheus: str | None = None
    source: Path = field(default=Path("oracle.yaml"), compare=False)


def load_config(path: str | Path) -> OracleConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys ({', '.join(sorted(ALLOWED_KEYS))})")
    unknown = sorted(set(data) - ALLOWED_KEYS, key=str)
    if unknown:
        hints = [f"{k} (did you mean {close[0]}?)" if (close := difflib.get_close_matches(str(k), ALLOWED_KEYS, 1))
                 else str(k) for k in unknown]
        raise ConfigError(f"{path}: unknown key(s) {', '.join(hints)}; allowed: {', '.join(sorted(ALLOWED_KEYS))}")
    base = path.parent

    def need(key: str) -> Any:
        if key not in data or data[key] in (None, ""):
            raise ConfigError(f"{path}: {key} is required")
        return data[key]

    rpc_url = str(need("rpc_url"))
    if not rpc_url.startswith(("http://", "https://")):
        raise ConfigError(f"{path}: rpc_url must be an http(s) URL, got {rpc_url!r}")
    factory = str(need("factory"))
    if not is_address(factory):
        raise ConfigError(f"{path}: factory must be a 0x address, got {factory!r}")
    key = need("key")
    if not isinstance(key, dict) or not (("keystore" in key) ^ ("env" in key)):
        raise ConfigError(f"{path}: key must be {{keystore: FILE, password_env: VAR}} or {{env: VAR}}")
    key_source = KeySource(
        keystore=(base / Path(key["keystore"]).expanduser()) if "keystore" in key else None,
        password_env=key.get("password_env"),
        env=key.get("env"),
    )
    listen = str(data.get("listen", "127.0.0.1:0"))
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{path}: listen must be HOST:PORT, e.g. 127.0.0.1:9101, got {listen!r}")

    def seconds(key: str, default: str) -> int:
        try:
            return parse_duration_seconds(str(data.get(key, default)))
        except UnitError as exc:
            raise ConfigError(f"{path}: {key}: {exc}") from None

    prometheus = data.get("prometheus")
    if prometheus is not None and (not isinstance(prometheus, str) or not prometheus.startswith(("http://",
                                                                                                  "https://"))):
        raise ConfigError(f"{path}: prometheus must be the http(s) URL of a Prometheus server, e.g. "
                          f"http://127.0.0.1:9090, got {prometheus!r}")
    peers = data.get("peers", []) or []
    if not isinstance(peers, list) or not all(isinstance(p, str) and p.startswith("http") for p in peers):
        raise ConfigError(f"{path}: peers must be a list of http URLs of the other oracles")
    return OracleConfig(
        rpc_url=rpc_url,
        factory=to_checksum_address(factory),
        key=key_source,
        store=base / str(data.get("store", "oracle.db")),
        evidence_dir=base / str(data.get("evidence_dir", "evidence")),
        listen_host=host,
        listen_port=int(port),
        chain_id=data.get("chain_id"),
        peers=tuple(peers),
        terms=tuple(base / str(t) for t in data.get("terms", []) or []),
        control=tuple(str(c) for c in data.get("control", []) or []),
        grace=seconds("grace", "5s"),
        poll=seconds("poll", "2s"),
        max_clock_skew=seconds("max_clock_skew", "60s"),
        prometheus=prometheus,
        source=path,
    )
