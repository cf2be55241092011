"""Where the signing keys of providers, customers, oracles and auditors come from. Keys are never printed or logged.

An account is named on the command line (``--account``, or ``SMARTSLA_ACCOUNT``) as one of:

* ``NAME``: the encrypted keystore ``$SMARTSLA_HOME/keystores/NAME.json`` if it exists; otherwise, on dev
  chains only, the dev account of that name (``provider``, ``customer``, ``oracle-1``...: keys derived from the
  name, public knowledge, funded with dev ether);
* ``keystore:PATH`` or ``keystore:NAME``: an encrypted keystore (Web3 Secret Storage, as geth and eth-account
  write them); the password comes from ``SMARTSLA_PASSWORD`` or, on a terminal, a prompt;
* ``env:VAR``: a raw 0x private key held in the environment variable VAR.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address

from smartsla.chain.config import state_home

PASSWORD_ENV = "SMARTSLA_PASSWORD"
KEYSTORE_SCRYPT_N = 2**14  # eth-account's default 2**18 takes ~1 s per unlock; 2**14 is geth's "light" setting


class AccountError(Exception):
    """A key could not be found or unlocked; the message says which and how to fix it."""


@dataclass(frozen=True)
class KeystoreEntry:
    name: str
    address: str
    path: Path


def keystore_dir() -> Path:
    return state_home() / "keystores"


def key_from_env(var: str) -> LocalAccount:
    raw = os.environ.get(var)
    if not raw:
        raise AccountError(f"environment variable {var} is not set; it must hold the account's 0x private key")
    try:
        return Account.from_key(raw.strip())
    except Exception:  # noqa: BLE001 - the message must not echo the value
        raise AccountError(f"{var} does not hold a valid private key (64 hex digits, 0x optional)") from None


def read_password(what: str, password_env: str | None = PASSWORD_ENV, interactive: bool | None = None) -> str:
    password = os.environ.get(password_env) if password_env else None
    if password is not None:
        return password
    if interactive is None:
        interactive = sys.stdin.isatty()
    if not interactive:
        raise AccountError(f"no password for {what}: set {password_env or 'a password variable'}, "
                           "or run the command on a terminal to be asked")
    return getpass.getpass(f"password for {what}: ")


def decrypt_keystore(path: str | Path, password_env: str | None = PASSWORD_ENV,
                     interactive: bool | None = None) -> LocalAccount:
    path = Path(path)
    try:
        encrypted = json.loads(path.read_text())
    except FileNotFoundError:
        raise AccountError(f"keystore {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise AccountError(f"{path} is not a keystore file ({exc.__class__.__name__})") from None
    password = read_password(str(path), password_env, interactive)
    try:
        return Account.from_key(Account.decrypt(encrypted, password))
    except ValueError:
        raise AccountError(f"wrong password for keystore {path}") from None


def _keystore_path(name: str) -> Path:
    if not name or "/" in name or name.startswith("."):
        raise AccountError(f"account name {name!r}: use letters, digits, '-' and '_'")
    return keystore_dir() / f"{name}.json"


def save_keystore(name: str, account: LocalAccount, password: str, overwrite: bool = False) -> KeystoreEntry:
    """Encrypt the key into a new keystore file, readable by its owner only."""
    path = _keystore_path(name)
    if path.exists() and not overwrite:
        raise AccountError(f"a keystore named {name!r} exists ({path}); choose another name")
    if not password:
        raise AccountError("an empty password would leave the key unprotected; give a password")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    encrypted = Account.encrypt(account.key, password, kdf="scrypt", iterations=KEYSTORE_SCRYPT_N)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(encrypted, f)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    return KeystoreEntry(name, account.address, path)


def list_keystores() -> list[KeystoreEntry]:
    entries = []
    for path in sorted(keystore_dir().glob("*.json")):
        try:
            address = to_checksum_address("0x" + json.loads(path.read_text())["address"].removeprefix("0x"))
        except (OSError, ValueError, KeyError):
            continue
        entries.append(KeystoreEntry(path.stem, address, path))
    return entries


def _keystore_file(spec: str) -> Path | None:
    """The keystore a ``keystore:`` spec or a plain name means, or None when it names none."""
    if spec.startswith("keystore:"):
        target = spec[len("keystore:"):]
        return Path(target) if ("/" in target or target.endswith(".json")) else _keystore_path(target)
    stored = keystore_dir() / f"{spec}.json"
    return stored if spec and "/" not in spec and stored.exists() else None


def account_address(spec: str, chain=None) -> str:
    """The address ``spec`` names, without unlocking anything: a keystore says its address in the clear, so
    commands that only look (``list``) never ask for a password."""
    path = _keystore_file(spec)
    if path is not None:
        try:
            return to_checksum_address("0x" + json.loads(path.read_text())["address"].removeprefix("0x"))
        except FileNotFoundError:
            raise AccountError(f"keystore {path} does not exist") from None
        except (OSError, ValueError, KeyError):
            pass  # no readable address field: unlocking it is the only way to know
    return load_account(spec, chain).address


def load_account(spec: str, chain=None, interactive: bool | None = None) -> LocalAccount:
    """The account a command-line ``spec`` names (see the module's docstring). ``chain`` decides whether dev
    accounts are allowed (and funds them with dev ether)."""
    if spec.startswith("env:"):
        return key_from_env(spec[4:])
    if spec.startswith("keystore:"):
        return decrypt_keystore(_keystore_file(spec), interactive=interactive)
    if spec.startswith("0x") and len(spec) == 66:
        # a key on the command line ends up in shell history and `ps`: refuse it, point to the safe ways
        raise AccountError("a private key on the command line is visible to other users; put it in an environment "
                           "variable and pass --account env:VAR, or import it: `smartsla accounts import NAME`")
    stored = _keystore_file(spec)
    if stored is not None:
        return decrypt_keystore(stored, interactive=interactive)
    if chain is not None and chain.is_dev:
        return chain.account(spec)
    where = f"on {chain.name}" if chain is not None else "here"
    raise AccountError(f"no account {spec!r} {where}: dev accounts exist only on dev chains; import a key with "
                       f"`smartsla accounts import {spec}`, or pass --account env:VAR or keystore:PATH")


def name_resolver(chain) -> Callable[[str, str], str]:
    """The one way a terms file's account names become addresses, for every command (create, terms check, the
    audit): an address as written, a keystore name (its address, read without the password), or on dev chains
    a dev-account name. Anything else is an AccountError naming the key path and the fix."""
    keystores = {entry.name: entry.address for entry in list_keystores()}

    def resolve(value: str, path: str) -> str:
        if is_address(value):
            return to_checksum_address(value)
        if value in keystores:
            return keystores[value]
        if chain.is_dev:
            return chain.resolve(value)
        raise AccountError(f"{path}: {value!r} is neither an address nor a keystore name; on {chain.name} write "
                           "the address, or import the key with `smartsla accounts import`")
    return resolve


def name_source(value: str) -> str:
    """How :func:`name_resolver` reads ``value``, for previews: a typo (``acmee``) must not pass unseen as a new dev
    account."""
    if is_address(value):
        return "address"
    if value in {entry.name for entry in list_keystores()}:
        return f"keystore {value}"
    return f"dev account {value!r}: no keystore has this name"
