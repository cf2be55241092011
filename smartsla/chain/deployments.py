"""The address book of deployed factories, so that users name agreements, not factories.

``$SMARTSLA_HOME/deployments.json`` maps a network name to the contracts deployed there by ``smartsla factory
deploy`` (the factory, and on dev chains the test dollar), with the chain id and the genesis block hash: a record from another chain (a node restarted with ``--fresh``, a URL
now pointing elsewhere) is never used, and an address without code is reported, not called.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from eth_utils import to_checksum_address

from smartsla.chain.chain import Chain
from smartsla.chain.config import state_home
from smartsla.encoding import BadAddress, checked_address


class DeploymentError(Exception):
    """No usable factory; the message says how to deploy or name one."""


@dataclass(frozen=True)
class DeploymentRecord:
    address: str
    chain_id: int
    genesis: str
    block: int
    transaction: str


def _book_path() -> Path:
    return state_home() / "deployments.json"


def _read_book() -> dict:
    path = _book_path()
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise DeploymentError(f"{path} is not valid JSON; fix or delete it (then deploy a factory again)") from None


def _genesis(chain: Chain) -> str:
    return chain.w3.eth.get_block(0)["hash"].hex()


def record_factory(chain: Chain, address: str, block: int, transaction: str) -> DeploymentRecord:
    return record_contract(chain, "factory", address, block, transaction)


def record_contract(chain: Chain, name: str, address: str, block: int, transaction: str) -> DeploymentRecord:
    if chain.kind == "embedded":
        # the embedded chain ends with the command: remembering its factory would only mislead
        return DeploymentRecord(address, chain.w3.eth.chain_id, _genesis(chain), block, transaction)
    book = _read_book()
    record = DeploymentRecord(to_checksum_address(address), chain.w3.eth.chain_id, _genesis(chain), block, transaction)
    book.setdefault(chain.name, {})[name] = asdict(record)
    _write_book(book)
    return record


def _write_book(book: dict) -> None:
    path = _book_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(book, indent=2))
    os.replace(tmp, path)


def record_agreement(chain: Chain, address: str, name: str, block: int) -> None:
    """Remember the name of an agreement this machine created (the name is the terms' ``agreement``; it is not on
    chain), so ``list`` can show it and commands accept it in place of the address. Per chain, like the factory."""
    if chain.kind == "embedded":
        return
    book = _read_book()
    names = book.setdefault(chain.name, {}).setdefault("agreements", {})
    names[to_checksum_address(address)] = {"name": name, "chain_id": chain.w3.eth.chain_id,
                                           "genesis": _genesis(chain), "block": block}
    _write_book(book)


def agreement_names(chain: Chain) -> dict[str, str]:
    """Address -> name of the agreements recorded on this very chain (a reset chain's records are ignored)."""
    entries = _read_book().get(chain.name, {}).get("agreements", {})
    if not isinstance(entries, dict) or not entries:
        return {}
    chain_id, genesis = chain.w3.eth.chain_id, _genesis(chain)
    return {address: entry["name"] for address, entry in entries.items()
            if isinstance(entry, dict) and entry.get("chain_id") == chain_id and entry.get("genesis") == genesis}


def agreement_by_name(chain: Chain, name: str) -> list[str]:
    """The recorded agreements called ``name`` on this chain (more than one if the same terms were created twice)."""
    return [address for address, known in agreement_names(chain).items() if known == name]


def recorded_factory(chain: Chain) -> DeploymentRecord | None:
    return recorded_contract(chain, "factory")


def recorded_contract(chain: Chain, name: str) -> DeploymentRecord | None:
    entry = _read_book().get(chain.name, {}).get(name)
    if not entry:
        return None
    record = DeploymentRecord(**entry)
    if record.chain_id != chain.w3.eth.chain_id or record.genesis != _genesis(chain):
        return None
    return record


def factory_address(chain: Chain, given: str | None = None) -> str:
    """The factory to use: ``given`` (checked), else the recorded one for this network and chain."""
    if given:
        try:
            address = checked_address(given, "--factory")
        except BadAddress as exc:
            raise DeploymentError(str(exc)) from None
    else:
        record = recorded_factory(chain)
        if record is None:
            raise DeploymentError(f"no factory is recorded for network {chain.name!r} on this chain: deploy one with "
                                  f"`smartsla factory deploy --network {chain.name}` or pass --factory ADDRESS")
        address = record.address
    if not chain.w3.eth.get_code(address):
        raise DeploymentError(f"there is no contract at {address} on {chain.name}; was the node restarted with "
                              "--fresh? deploy a factory again or pass the right --factory")
    return address
