"""What every ``smartsla`` subcommand shares: output (tables for people, ``--json`` for scripts), errors that
name the fix, and the options that pick a network, an account and a factory."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import requests
from rich.console import Console
from web3.exceptions import Web3Exception

from smartsla.chain.accounts import AccountError, load_account
from smartsla.chain.build import BuildError
from smartsla.chain.chain import Chain
from smartsla.chain.config import ConfigError, default_network, network_names
from smartsla.chain.deployments import DeploymentError, agreement_by_name, factory_address, recorded_contract
from smartsla.chain.node import NodeError
from smartsla.chain.reverts import ChainError, Reverted
from smartsla.encoding import BadAddress, checked_address, to_hex
from smartsla.onchain.client import Contracts
from smartsla.terms.errors import TermsError
from smartsla.units import human_duration

NETWORK_ENV = "SMARTSLA_NETWORK"
ACCOUNT_ENV = "SMARTSLA_ACCOUNT"
FACTORY_ENV = "SMARTSLA_FACTORY"


class UserError(Exception):
    """Something the user can fix; printed as one line, exit status 2."""


@dataclass
class UI:
    json_mode: bool = False
    # piped output is read by programs and wide terminals: do not cut addresses to 80 columns
    out: Console = field(default_factory=lambda: Console(highlight=False, soft_wrap=True, width=_piped_width()))
    err: Console = field(default_factory=lambda: Console(stderr=True, highlight=False, soft_wrap=True))

    def emit_json(self, data: Any) -> None:
        print(json.dumps(data, indent=None, default=str))

    def note(self, message: str) -> None:
        """Progress and narration: to stderr, so stdout stays clean for tables and JSON."""
        self.err.print(message, soft_wrap=True)

    def status(self, message: str):
        """A spinner on a terminal (quiet in --json mode); use as a context manager, ``.update(msg)``."""
        if self.json_mode or not self.err.is_terminal:
            return _QuietStatus()
        return self.err.status(message)

    def confirm(self, question: str, assume_yes: bool) -> bool:
        if assume_yes:
            return True
        if not sys.stdin.isatty():
            raise UserError(f"{question.rstrip('?')}: needs confirmation; run on a terminal or pass --yes")
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def _piped_width() -> int | None:
    if sys.stdout.isatty():
        return None
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() else 220


class _QuietStatus:
    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None


USER_ERRORS = (UserError, TermsError, BuildError, ChainError, ConfigError, AccountError, NodeError,
               DeploymentError, LookupError)


def when(timestamp: int) -> str:
    """A chain time for people."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(int(timestamp)))


# The contract's custom errors in words; the raw name and arguments stay in front for searching the docs.
REVERT_WORDS: dict[str, Callable[..., str]] = {
    "InsufficientNotice": lambda start, earliest: f"maintenance must be announced earlier: the window starts "
                                                  f"{when(start)}, the earliest allowed start is {when(earliest)}",
    "AllowanceExceeded": lambda period, used, allowance: f"period {period} would have {human_duration(used)} of "
                                                         f"maintenance; the terms allow {human_duration(allowance)}",
    "WindowOutsideTerm": lambda start, end: f"the window {when(start)} .. {when(end)} is outside the agreement",
    "PeriodNotOver": lambda period, ends: f"period {period} runs until {when(ends)}",
    "DeadlineNotReached": lambda period, opens: f"period {period} may be settled by fallback from {when(opens)} on; "
                                               "until then only oracle reports settle it",
    "PeriodAlreadySettled": lambda period: f"period {period} is already settled",
    "NotYetClosable": lambda ends, open_: f"the agreement runs until {when(ends)} and {open_} funded period(s) "
                                          "are not settled yet",
    "TerminationExpired": lambda deadline: f"the consent expired at {when(deadline)}; sign again",
    "NotCustomer": lambda caller: f"{caller} is not the customer; pass --account of the customer",
    "NotProvider": lambda caller: f"{caller} is not the provider; pass --account of the provider",
    "BadConsent": lambda expected, signer: f"a consent was signed by {signer}, but {expected} must sign it",
    "FundingBeyondTerm": lambda first, n, active: f"periods {first}..{first + n - 1} go beyond the "
                                                  f"{active} active period(s)",
    "NothingToFund": lambda: "nothing to add: a deposit needs at least one period, a bond an amount above 0",
    "AgreementClosed": lambda: "the agreement is closed",
    "PeriodNotActive": lambda period, active: f"period {period} is not one of the agreement's {active} active "
                                              f"period(s) (0..{active - 1})",
    "QuorumNotReached": lambda n, quorum: f"{n} report(s) given; the terms need {quorum}",
    "WrongValueCount": lambda expected, got: f"a report has {got} value(s); the agreement has {expected} service(s)",
    "NotAnOracle": lambda signer: f"a report is signed by {signer}, which is not in the agreement's oracle set",
    "DuplicateSigner": lambda signer: f"two reports are signed by {signer}; each oracle counts once",
    "ValueOutOfRange": lambda service, value: f"service {service}'s value {value} is above 100% (1000000 ppm)",
    "NonCanonicalTerms": lambda: ("the terms bytes are not the canonical ABI encoding of the terms they decode to; "
                                  "encode them with SlaFactory.encodeTerms (smartsla does)"),
    "NotAnAgreement": lambda target: (f"{target} is not an agreement of this factory (its code is not a clone of the "
                                      "factory's implementation); settleBatch settles only the factory's agreements"),
    "BatchItemOutOfGas": lambda position: (f"item {position} of the batch ran out of gas; send the batch with a "
                                           "higher gas limit (or fewer items)"),
    "NotAParty": lambda caller: f"{caller} is neither the provider nor the customer of this agreement",
    "NotYetBinding": lambda provider, customer: (
        "the agreement does not bind both parties yet: "
        + " and ".join(f"the {role} has not agreed to its terms on-chain" for role, ok
                       in (("provider", provider), ("customer", customer)) if not ok)
        + "; nothing is funded or settled until then (`smartsla accept AGREEMENT` as that party)"),
    "AlreadyConsented": lambda party: f"{party} has agreed to these terms already",
    "BondNotPosted": lambda required, posted: (
        f"the terms ask for a bond of {required} base units before any period is funded and {posted} is posted: "
        "the provider posts the rest first (`smartsla bond AGREEMENT AMOUNT`)"),
    "FundingMoved": lambda requested, fundable: (
        f"the deposit would now fund from period {fundable}, not {requested}: a period began (or another deposit "
        "landed) while the transaction waited; nothing was taken, fund again"),
    "RecipientIsAgreement": lambda: "the recipient is the agreement itself, which would strand the money: give "
                                    "another address",
    "TokenNotExact": lambda token, expected, received: (
        f"the token {token} delivered {received} base units of the {expected} sent (a fee-on-transfer token?): "
        "an agreement cannot hold such a token exactly, so it takes no deposit in it; use a plain ERC-20"),
    "CoverageTooLow": lambda oracle, service, coverage, least: (
        f"the report of {oracle} measured {coverage / 10_000:g}% of service {service}'s period, less than the "
        f"terms' min_coverage {least / 10_000:g}%: leave that report out"),
    "CoverageOutOfRange": lambda service, coverage: f"service {service}'s coverage {coverage} is above 100% "
                                                    "(1000000 ppm)",
    "EmptyWindow": lambda: "a maintenance window needs a duration above 0",
    "InvalidTermination": lambda requested, earliest, active: f"{requested} active periods is not possible: "
                                                             f"periods that have begun keep running (at least "
                                                             f"{earliest}), and it must be below the {active} "
                                                             "periods that run now",
    "BondTooLarge": lambda bond, limit: f"a bond of {bond} base units would not fit the period record with a fee; "
                                        f"at most {limit}",
    "NothingToWithdraw": lambda account: f"nothing is owed to {account}",
    "TransferFailed": lambda to, amount: f"sending {amount} to {to} failed; withdraw to another address (--to)",
    "ZeroRecipient": lambda: "withdrawing to the zero address would burn the money; give --to ADDRESS",
    "WrongPaymentAmount": lambda expected, got: f"the payment carried {got} wei; it must be exactly {expected}",
    "UnexpectedEther": lambda: "ETH was sent to an agreement that is not paid in ETH (or sent to it directly)",
    "TermsMismatch": lambda: "the terms passed are not the ones this agreement was created with",
    "NotFactory": lambda: "only the factory initialises an agreement",
    "AlreadyInitialized": lambda: "the agreement is initialised already",
    "InvalidTerms": lambda field, reason: f"the factory refused the terms: {field}: {reason}",
    # from OpenZeppelin, reached through the agreement
    "ECDSAInvalidSignature": lambda: "a signature does not recover to any signer",
    "ECDSAInvalidSignatureLength": lambda length: f"a signature is {length} bytes; it must be 65",
    "ECDSAInvalidSignatureS": lambda s: "a signature is malleable (its s value is in the upper half)",
    "SafeERC20FailedOperation": lambda token: f"the token {token} refused the transfer (allowance or balance)",
    "ReentrancyGuardReentrantCall": lambda: "a call re-entered the agreement; refused",
    "FailedDeployment": lambda: "the factory could not create the clone",
    "InsufficientBalance": lambda balance, needed: f"the factory holds {balance} wei but needs {needed}",
    "InvalidShortString": lambda: "a short string was invalid (EIP-712 domain)",
    "StringTooLong": lambda text: f"the string {text!r} is too long for a short string",
}


def explain_revert(exc: Reverted) -> str:
    shown = f"{exc.error}({', '.join(map(str, exc.error_args))})" if exc.error_args else exc.error
    words = REVERT_WORDS.get(exc.error)
    if words is None:
        return shown
    try:
        return f"{shown}: {words(*exc.error_args)}"
    except (TypeError, ValueError):
        return shown


def handle_errors(ui: UI, run: Callable[[], int]) -> int:
    try:
        return int(run() or 0)
    except USER_ERRORS as exc:
        message = exc.args[0] if isinstance(exc, LookupError) and exc.args else str(exc)
        ui.err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
        return 2
    except Reverted as exc:
        ui.err.print(f"[bold red]error:[/] the contract refused: {explain_revert(exc)}", soft_wrap=True)
        return 3
    except BrokenPipeError:
        # the reader (`head`, a closed pager) went away: stop quietly, and keep Python's exit flush quiet too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Web3Exception as exc:
        # the node answered, but not as asked (out of gas, nonce, a method it lacks): say what it said
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, dict):
            detail = detail.get("message", detail)
        ui.err.print(f"[bold red]error:[/] the node refused: {detail}", soft_wrap=True)
        return 2
    except requests.exceptions.ConnectionError as exc:
        ui.err.print(f"[bold red]error:[/] lost the connection to the node ({exc.__class__.__name__}); is it "
                     "still running? `smartsla node status`", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        ui.err.print("interrupted")
        return 130


# ------------------------------------------------------------------ options


def add_network_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--network", default=os.environ.get(NETWORK_ENV) or default_network(),
                        metavar="NAME",
                        help=f"a network of brownie-config.yaml: {', '.join(network_names())} "
                             f"(default: ${NETWORK_ENV} or %(default)s)")


def add_account_option(parser: argparse.ArgumentParser, default_dev: str, what: str) -> None:
    parser.add_argument("--account", default=os.environ.get(ACCOUNT_ENV), metavar="ACCOUNT",
                        help=f"{what}: a keystore name, keystore:PATH, env:VAR holding a key, or on dev chains a dev "
                             f"account name (default: ${ACCOUNT_ENV}, else the dev account {default_dev!r})")
    parser.set_defaults(default_dev_account=default_dev)


def add_factory_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--factory", default=os.environ.get(FACTORY_ENV), metavar="ADDRESS",
                        help=f"the SlaFactory (default: ${FACTORY_ENV}, else the one `smartsla factory deploy` "
                             "recorded for this network)")


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout instead of tables")


def open_chain(args: argparse.Namespace) -> Chain:
    return Chain.connect(args.network)


def account_for(args: argparse.Namespace, chain: Chain):
    spec = getattr(args, "account", None) or args.default_dev_account
    if not getattr(args, "account", None) and not chain.is_dev:
        raise UserError(f"on {chain.name} name the account that signs: --account NAME|keystore:PATH|env:VAR")
    account = load_account(spec, chain)
    # on dev chains every account gets dev ether for gas, keystore ones included, so nobody stalls on a faucet
    chain.ensure_ether(account.address)
    return account


def family(sub: Any, name: str, help_text: str, description: str | None = None) -> Any:
    """A parser for a family of actions (``smartsla node ...``); without an action it prints its own help."""
    parser = sub.add_parser(name, help=help_text, description=description or help_text)
    parser.set_defaults(family_parser=parser)
    return parser.add_subparsers(dest=f"{name}_action", metavar="ACTION")


# ------------------------------------------------------------------ chain sessions


@dataclass
class Session:
    """One command's connection: the chain, the compiled contracts bound to it, and the factory if needed."""

    chain: Chain
    contracts: Any
    network: str

    def factory(self, given: str | None):
        return self.contracts.factory_at(factory_address(self.chain, given))

    def agreement(self, address: str, factory_given: str | None):
        if address.startswith("0x"):
            address = address_arg(address, "AGREEMENT")
        else:
            address = self._address_of_name(address)
        if not self.chain.w3.eth.get_code(address):
            raise UserError(f"there is no contract at {address} on {self.network}; check the address and --network")
        factory = self.factory(factory_given)
        try:
            return factory.agreement(address)
        except LookupError:
            raise UserError(f"{address} was not created by the factory {factory.address}; pass the factory that "
                            "created it with --factory") from None

    def _address_of_name(self, name: str) -> str:
        """AGREEMENT given by the name `create` recorded on this machine (the terms' ``agreement``)."""
        found = agreement_by_name(self.chain, name)
        if len(found) == 1:
            return found[0]
        if found:
            raise UserError(f"AGREEMENT {name!r} names {len(found)} agreements on {self.network}: "
                            f"{', '.join(found)}; give the address")
        raise UserError(f"AGREEMENT {name!r} is neither an address (0x and 40 hex digits) nor the name of an "
                        f"agreement created from this machine on {self.network}; `smartsla list` shows both")

    def token_info(self, token: str) -> tuple[str, int]:
        """(symbol, decimals) for showing an agreement's amounts (see :class:`TokenInfo` for the fallback)."""
        info = self.contracts.token_info(token)
        return info.symbol, info.decimals


def address_arg(text: str, what: str) -> str:
    """An address given on the command line, checksummed; a typo'd checksum or a non-address is the user's to fix
    (exit 2), never the node's to refuse."""
    try:
        return checked_address(text, what)
    except BadAddress as exc:
        raise UserError(str(exc)) from None


def open_session(args: argparse.Namespace) -> Session:
    chain = open_chain(args)
    return Session(chain, Contracts(chain), args.network)


def tx_summary(receipt: dict) -> dict:
    return {"transaction": to_hex(bytes(receipt["transactionHash"])), "block": receipt["blockNumber"],
            "gas_used": receipt["gasUsed"]}


def report_done(ui: UI, args: argparse.Namespace, what: str, receipt: dict, **extra) -> int:
    result = {"agreement": args.agreement, "action": what, **extra, **tx_summary(receipt)}
    if args.json:
        ui.emit_json(result)
    else:
        shown = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in extra.items())
        ui.out.print(f"{what}: done{'; ' + shown if shown else ''} (block {receipt['blockNumber']}, "
                     f"gas {receipt['gasUsed']:,})")
    return 0


def dev_mint(session: Session, agreement, holder: str, amount: int) -> None:
    """On dev chains the test dollar is free: top the payer up so that a demo never stalls on a faucet."""
    if agreement.is_eth or not session.chain.is_dev:
        return
    record = recorded_contract(session.chain, "test-usd")
    if record is None or record.address != agreement.token:
        return
    token = session.contracts.token(agreement.token)
    short = amount - token.functions.balanceOf(holder).call()
    if short > 0:
        session.chain.transact(session.chain.account("deployer"), token.functions.mint(holder, short))
