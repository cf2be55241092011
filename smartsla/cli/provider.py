"""Provider commands: ``factory deploy``, ``create``, ``bond``, ``announce``, ``terminate``, ``close``.

(``fund`` and ``withdraw`` are the customer's: see :mod:`smartsla.cli.customer`.)
"""

from __future__ import annotations

import argparse
import sys
import time

from smartsla import encoding
from smartsla.chain.accounts import list_keystores, name_resolver, name_source
from smartsla.chain.deployments import (
    record_agreement,
    record_contract,
    record_factory,
    recorded_contract,
    recorded_factory,
)
from smartsla.cli.common import (
    UI,
    Session,
    UserError,
    account_for,
    add_account_option,
    add_factory_option,
    add_json_option,
    add_network_option,
    dev_mint,
    family,
    open_session,
    report_done,
    tx_summary,
    when,
)
from smartsla.cli.terms import render_summary
from smartsla.encoding import to_hex
from smartsla.onchain.types import OnChainTerms
from smartsla.terms.model import Terms
from smartsla.terms.parse import load_terms
from smartsla.units import (UnitError, format_ppm, format_seconds, format_token_amount, parse_duration_seconds,
                            parse_token_amount)

CREATE_EPILOG = """\
examples:
  smartsla node start
  smartsla factory deploy
  smartsla create examples/multi-service.yaml --start-in 10m
  smartsla create terms.yaml --network sepolia --account keystore:ops --yes --json

Names in the terms (provider, customer, oracle members) may be addresses, names of your keystores, or on dev
chains dev-account names. A terms file without periods.start starts --start-in from now (default 5 minutes).
"""


PROVIDER_EPILOG = """\
examples:
  smartsla bond 0xAGREEMENT 500
  smartsla announce 0xAGREEMENT --start 2027-03-01T02:00:00Z --duration 30m
  smartsla announce 0xAGREEMENT --start +49h --duration 1h
  smartsla terminate sign 0xAGREEMENT --active-periods 4 --account provider-ops        # hands a signature over
  smartsla terminate submit 0xAGREEMENT --active-periods 4 --deadline UNIX --consent 0xSIG --account acme
  smartsla terminate revoke 0xAGREEMENT --account acme                               # void unexecuted consents
  smartsla close 0xAGREEMENT

The contract enforces the terms (notice, allowance, who may call); a refusal is explained and exits 3.
"""


PROVIDER_HELP = {"epilog": PROVIDER_EPILOG, "formatter_class": argparse.RawDescriptionHelpFormatter}


def register(sub) -> None:
    factory = family(sub, "factory", "deploy the agreement factory (once per network)")
    deploy = factory.add_parser(
        "deploy", help="deploy SlaFactory (and on dev chains a test dollar) and remember them for this network",
        description="Deploy the factory that creates agreements. Its address is recorded in "
                    "$SMARTSLA_HOME/deployments.json for the network, so later commands find it.")
    add_network_option(deploy)
    add_account_option(deploy, "deployer", "the account that pays for the deployment")
    add_json_option(deploy)
    deploy.add_argument("--yes", action="store_true",
                        help="deploy a second factory although one is recorded for this chain (asked otherwise)")
    deploy.set_defaults(handler=run_factory_deploy)

    create = sub.add_parser("create", help="deploy an agreement from a terms file (shows it, asks to confirm)",
                            description="Validate the terms, show them as the parties will be bound, and create "
                                        "the agreement through the factory.",
                            epilog=CREATE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    create.add_argument("terms", metavar="TERMS.yaml")
    add_network_option(create)
    add_account_option(create, "provider", "the account that sends the creating transaction")
    add_factory_option(create)
    create.add_argument("--start-in", default="5m", metavar="DURATION",
                        help="when periods.start is not in the file: start this long from now (default %(default)s)")
    create.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_json_option(create)
    create.set_defaults(handler=run_create)

    bond = sub.add_parser("bond", **PROVIDER_HELP,
                          help="post a bond that pays credits above 100%% of the fee (provider)",
                          description="Post a bond. Credits above 100%% of a period's fee are paid from it; "
                                      "`smartsla close` returns what is left after the last period.")
    bond.add_argument("agreement", metavar="AGREEMENT")
    bond.add_argument("amount", metavar="AMOUNT", help="in token units, e.g. 500 or 0.25")
    _common_agreement_options(bond, "provider", "the provider")
    bond.set_defaults(handler=run_bond)

    announce = sub.add_parser(
        "announce", **PROVIDER_HELP, help="announce a maintenance window (provider); its slices are not counted",
        description="Announce maintenance. The contract enforces the notice and the per-period allowance of the "
                    "terms; oracles read the window from the chain and exclude it from the measurement.")
    announce.add_argument("agreement", metavar="AGREEMENT")
    announce.add_argument("--start", required=True, metavar="TIME",
                          help="unix seconds, ISO-8601 (2027-03-01T02:00:00Z), or +DURATION from now (+49h)")
    announce.add_argument("--duration", required=True, metavar="DURATION", help="e.g. 30m, 2h")
    _common_agreement_options(announce, "provider", "the provider")
    announce.set_defaults(handler=run_announce)

    terminate = family(sub, "terminate", "end an agreement early, with both parties' consent")
    sign = terminate.add_parser(
        "sign", **PROVIDER_HELP, help="sign consent to end early (each party signs; the other submits)",
        description="Sign, as provider or customer, consent to lower the number of active periods. Prints the "
                    "signature to hand to the other party. Nothing is sent to the chain.")
    sign.add_argument("agreement", metavar="AGREEMENT")
    sign.add_argument("--active-periods", type=int, required=True, metavar="N",
                      help="periods that still run (those begun always run to their end)")
    sign.add_argument("--valid-for", default="1d", metavar="DURATION",
                      help="the consent expires after this (default %(default)s)")
    sign.add_argument("--deadline", type=int, metavar="UNIX", help="exact expiry instead of --valid-for")
    _common_agreement_options(sign, "provider", "the signing party (provider or customer)")
    sign.set_defaults(handler=run_terminate_sign)
    submit = terminate.add_parser(
        "submit", **PROVIDER_HELP, help="sign too and send the termination with the other party's consent",
        description="Add your own consent and send the termination; refunds funded periods that have not begun.")
    submit.add_argument("agreement", metavar="AGREEMENT")
    submit.add_argument("--active-periods", type=int, required=True, metavar="N")
    submit.add_argument("--deadline", type=int, required=True, metavar="UNIX",
                        help="the deadline the other party signed")
    submit.add_argument("--consent", required=True, metavar="SIGNATURE", help="the other party's signature (0x...)")
    _common_agreement_options(submit, "customer", "the submitting party (provider or customer)")
    submit.set_defaults(handler=run_terminate_submit)
    revoke = terminate.add_parser(
        "revoke", **PROVIDER_HELP, help="withdraw every termination consent not yet executed (yours and theirs)",
        description="Each consent names the agreement's termination nonce; this moves it on, so no consent signed "
                    "before (by either party) can be executed any more. A termination moves it on too.")
    revoke.add_argument("agreement", metavar="AGREEMENT")
    _common_agreement_options(revoke, "provider", "the revoking party (provider or customer)")
    revoke.set_defaults(handler=run_terminate_revoke)

    close = sub.add_parser("close", **PROVIDER_HELP,
                           help="after the last period: return the bond to the provider (anyone may call)",
                           description="When every active period has ended and every funded one is settled, "
                                       "return the bond left to the provider. Anyone may send it. Before both "
                                       "parties have agreed to the terms, either may close at any time: that "
                                       "withdraws the offer (it asks first).")
    close.add_argument("agreement", metavar="AGREEMENT")
    close.add_argument("--yes", action="store_true",
                       help="withdraw an offer not yet binding both parties without asking (a party may, any time)")
    _common_agreement_options(close, "provider", "the account that sends the transaction")
    close.set_defaults(handler=run_close)


def _common_agreement_options(parser: argparse.ArgumentParser, default_dev: str, what: str) -> None:
    add_network_option(parser)
    add_account_option(parser, default_dev, what)
    add_factory_option(parser)
    add_json_option(parser)


# ------------------------------------------------------------------ factory deploy


def run_factory_deploy(args: argparse.Namespace, ui: UI) -> int:
    session = open_session(args)
    deployer = account_for(args, session.chain)
    earlier = recorded_factory(session.chain)
    if earlier is not None and session.chain.w3.eth.get_code(earlier.address):
        # the record names one factory per chain: a second one would hide the first one's agreements from `list`
        ui.note(f"[yellow]warning:[/] factory {earlier.address} is recorded for {args.network}; deploying another "
                "replaces the record, and commands stop finding the agreements of the first one unless given "
                f"--factory {earlier.address}")
        if not ui.confirm("deploy a second factory?", args.yes):
            ui.err.print("nothing was deployed")
            return 1
    with ui.status("deploying the factory") as status:
        factory = session.contracts.deploy_factory(deployer)
        receipt = factory.deploy_receipt
        record_factory(session.chain, factory.address, receipt["blockNumber"], tx_summary(receipt)["transaction"])
        result = {"network": args.network, "factory": factory.address, **tx_summary(receipt)}
        if session.chain.is_dev:
            status.update("deploying the test dollar (dev chains only)")
            usd = session.contracts.deploy_test_usd(deployer)
            record_contract(session.chain, "test-usd", usd.address, session.chain.w3.eth.block_number, "")
            result["test_usd"] = usd.address
    if args.json:
        ui.emit_json(result)
        return 0
    ui.out.print(f"factory {factory.address} on {args.network} (block {receipt['blockNumber']}, "
                 f"gas {receipt['gasUsed']:,})")
    if "test_usd" in result:
        ui.out.print(f"test dollar (tUSD, 6 decimals, free to mint on dev chains) {result['test_usd']}")
    if session.chain.kind == "embedded" or session.chain.anvil is not None:
        ui.note(f"[yellow]note:[/] the {args.network} chain ends with this command; use --network development "
                "to keep it")
    else:
        ui.note("recorded: later commands on this network use this factory")
    return 0


# ------------------------------------------------------------------ create


def address_resolver(session: Session):
    """Maps names in a terms file to addresses (:func:`smartsla.chain.accounts.name_resolver`, as the audit does)."""
    return name_resolver(session.chain)


def token_for(session: Session, terms: Terms) -> tuple[str | None, int | None]:
    token = terms.payment.token
    if token == "ETH":
        return None, None
    if token == "test-usd":
        record = recorded_contract(session.chain, "test-usd")
        if record is None or not session.chain.w3.eth.get_code(record.address):
            raise UserError(f"payment.token is test-usd, but no test dollar is deployed on {session.network}: run "
                            f"`smartsla factory deploy --network {session.network}` (dev chains only)")
        return record.address, 6
    info = session.contracts.token_info(token)
    if not info.has_metadata:
        # Converting "1000" in the terms needs the token's decimals; a guess would deploy wrong amounts.
        raise UserError(f"payment.token {token} has no ERC-20 decimals() on {session.network}: the amounts in the "
                        "terms cannot be converted; use a token with metadata")
    return token, info.decimals


def _start_in(text: str) -> int:
    try:
        return parse_duration_seconds(text)
    except UnitError as exc:
        raise UserError(f"--start-in: {exc}") from None


def print_binding(ui: UI, terms: Terms, chain_terms: OnChainTerms, symbol: str, decimals: int) -> None:
    """The terms as written (the summary of ``terms show``), then what the names and amounts become on-chain."""
    render_summary(terms, ui)
    t = chain_terms
    money = lambda units: f"{format_token_amount(units, decimals)} {symbol}"  # noqa: E731
    ui.out.print("[bold]as deployed[/]")
    ui.out.print(f"  provider  {t.provider} ({name_source(terms.provider)})\n"
                 f"  customer  {t.customer} ({name_source(terms.customer)})")
    ui.out.print(f"  fee       {money(t.fee)} per period; bond {money(t.bond)}")
    ui.out.print(f"  periods   {t.period_count} x {format_seconds(t.period_length)}, the first from {when(t.start)}")
    ui.out.print(f"  oracles   {t.quorum} of, each report measuring at least {format_ppm(t.min_coverage)} of every "
                 "service's period")
    for name, address in zip(terms.oracles.members, t.oracles):
        ui.out.print(f"    {address} ({name_source(name)})")
    ui.out.print(f"  document  {to_hex(terms.document_hash())}")


def run_create(args: argparse.Namespace, ui: UI) -> int:
    terms = load_terms(args.terms)
    session = open_session(args)
    chain = session.chain
    if chain.kind == "embedded" and not args.factory:
        # nothing outlives a command on the embedded chain, so its factory is made here
        factory = session.contracts.deploy_factory(chain.account("deployer"))
        if terms.payment.token == "test-usd":
            usd = session.contracts.deploy_test_usd(chain.account("deployer"))
            record_contract(chain, "test-usd", usd.address, 0, "")
            token, decimals = usd.address, 6
        else:
            token, decimals = token_for(session, terms)
        ui.note("[yellow]note:[/] on the embedded chain the agreement ends with this command; "
                "use --network development to keep it")
    else:
        factory = session.factory(args.factory)
        token, decimals = token_for(session, terms)
    sender = account_for(args, chain)
    chain_terms = terms.to_chain(address_resolver(session), token, decimals,
                                 now=max(chain.now(), int(time.time())) + _start_in(args.start_in))
    symbol, token_decimals = ("ETH", 18) if token is None else session.token_info(token)
    for warning in _create_warnings(chain, factory, terms, chain_terms):
        ui.note(f"[yellow]warning:[/] {warning}")
    if not (args.yes or args.json or sys.stdin.isatty()):
        raise UserError("create needs confirmation: run it on a terminal to see the terms and answer, or pass "
                        "--yes (see them first with `smartsla terms show`)")
    if not args.json:
        print_binding(ui, terms, chain_terms, symbol, token_decimals)
    if not ui.confirm(f"create this agreement on {args.network} from {sender.address}?", args.yes or args.json):
        ui.err.print("nothing was created")
        return 1
    with ui.status("creating the agreement"):
        agreement = factory.create(sender, chain_terms)
    receipt = agreement.create_receipt
    record_agreement(chain, agreement.address, terms.agreement, receipt["blockNumber"])
    result = {"network": args.network, "agreement": agreement.address, "factory": factory.address,
              "name": terms.agreement, "document_hash": to_hex(terms.document_hash()),
              "start": agreement.terms.start, **tx_summary(receipt)}
    if args.json:
        ui.emit_json(result)
    else:
        ui.out.print(f"agreement {agreement.address} created (block {receipt['blockNumber']}, "
                     f"gas {receipt['gasUsed']:,}); first period starts {when(agreement.terms.start)}")
        ui.note(f"next: the customer funds it with `smartsla fund {agreement.address} --periods N`")
    return 0


def _create_warnings(chain, factory, terms: Terms, chain_terms: OnChainTerms) -> list[str]:
    """What a provider would want to know before creating: a term already over or under way, a duplicate."""
    now = chain.now()
    out = []
    last_end = chain_terms.period_end(chain_terms.period_count - 1)
    if last_end <= now:
        out.append(f"every period of these terms has ended already (the last at {when(last_end)}): the agreement "
                   "would have nothing left to fund")
    elif chain_terms.start < now:
        out.append(f"the first period began at {when(chain_terms.start)}, before now: periods that have begun "
                   "cannot be funded")
    doc = terms.document_hash()
    twins = [e["args"]["agreement"] for e in factory.created_events() if bytes(e["args"]["documentHash"]) == doc]
    if twins:
        out.append(f"the factory already created an agreement from this terms document: {', '.join(twins)}")
    return out


# ------------------------------------------------------------------ bond, announce, terminate, close


def _amount(text: str, decimals: int, what: str) -> int:
    try:
        return parse_token_amount(text, decimals)
    except UnitError as exc:
        raise UserError(f"{what}: {exc}") from None


def run_bond(args: argparse.Namespace, ui: UI) -> int:
    session = open_session(args)
    agreement = session.agreement(args.agreement, args.factory)
    symbol, decimals = session.token_info(agreement.token)
    amount = _amount(args.amount, decimals, "AMOUNT")
    provider = account_for(args, session.chain)
    dev_mint(session, agreement, provider.address, amount)
    receipt = agreement.post_bond(provider, amount)
    return report_done(ui, args, "bond posted", receipt, amount=f"{format_token_amount(amount, decimals)} {symbol}",
                 bond_balance=f"{format_token_amount(agreement.bond_balance(), decimals)} {symbol}")


def parse_time(text: str, now: int, what: str) -> int:
    text = text.strip()
    try:
        if text.startswith("+"):
            return now + parse_duration_seconds(text[1:])
        return int(encoding.parse_time(text))
    except (UnitError, ValueError) as exc:
        raise UserError(f"{what}: {text!r} is not a time: give unix seconds, ISO-8601 with a zone "
                        f"(2027-03-01T02:00:00Z) or +DURATION ({exc})") from None


def run_announce(args: argparse.Namespace, ui: UI) -> int:
    session = open_session(args)
    agreement = session.agreement(args.agreement, args.factory)
    start = parse_time(args.start, session.chain.now(), "--start")
    try:
        duration = parse_duration_seconds(args.duration)
    except UnitError as exc:
        raise UserError(f"--duration: {exc}") from None
    receipt = agreement.announce_maintenance(account_for(args, session.chain), start, duration)
    return report_done(ui, args, "maintenance announced", receipt, start=when(start), end=when(start + duration))


def _party(agreement, account) -> str:
    roles = [r for r in agreement.roles(account.address) if r in ("provider", "customer")]
    if not roles:
        raise UserError(f"{account.address} is neither the provider nor the customer of {agreement.address}; "
                        "pass --account of one of them")
    return roles[0]


def _termination_range(agreement, now: int) -> tuple[int, int]:
    """(earliest, active): the contract takes a new number of active periods from earliest (periods that have begun
    run to their end) up to, not including, the current number."""
    t = agreement.terms
    earliest = 0 if now < t.start else (now - t.start) // t.period_length + 1
    return earliest, agreement.active_periods()


def _check_termination(agreement, active_periods: int, deadline: int, now: int) -> None:
    earliest, active = _termination_range(agreement, now)
    if active_periods < 0:
        raise UserError(f"--active-periods {active_periods}: give a number of periods, {earliest}..{active - 1}")
    if not 0 <= deadline < 2**64:
        raise UserError(f"--deadline {deadline}: give unix seconds, e.g. {now + 86400} for a day from now")
    if active_periods >= active:
        already = "" if active == agreement.terms.period_count else " (it was terminated already)"
        raise UserError(f"--active-periods {active_periods}: the agreement runs {active} period(s){already}; a "
                        f"termination can only lower that, to {earliest}..{active - 1}" if earliest < active else
                        f"--active-periods {active_periods}: the agreement runs {active} period(s) and all have "
                        "begun; nothing is left to end early")
    if active_periods < earliest:
        raise UserError(f"--active-periods {active_periods}: periods 0..{earliest - 1} have begun and run to their "
                        f"end; give {earliest}..{active - 1}")
    if deadline <= now:
        raise UserError(f"--deadline {deadline} ({when(deadline)}) has passed on this chain ({when(now)}); the "
                        "contract refuses an expired consent: sign again with a later --deadline or --valid-for")


def _name_for(address: str, chain, role: str) -> str:
    """How the other party names its own account in --account: its keystore here, else a dev name, else a hint."""
    for entry in list_keystores():
        if entry.address == address:
            return entry.name
    if chain.is_dev and chain.resolve(role) == address:
        return role
    return f"THE-{role.upper()}S-ACCOUNT"


def run_terminate_sign(args: argparse.Namespace, ui: UI) -> int:
    session = open_session(args)
    agreement = session.agreement(args.agreement, args.factory)
    account = account_for(args, session.chain)
    role = _party(agreement, account)
    now = session.chain.now()
    try:
        deadline = args.deadline or now + parse_duration_seconds(args.valid_for)
    except UnitError as exc:
        raise UserError(f"--valid-for: {exc}") from None
    _check_termination(agreement, args.active_periods, deadline, now)
    signature = to_hex(agreement.sign_termination(account, args.active_periods, deadline))
    other = "customer" if role == "provider" else "provider"
    other_account = _name_for(getattr(agreement.terms, other), session.chain, other)
    command = (f"smartsla terminate submit {agreement.address} --active-periods {args.active_periods} "
               f"--deadline {deadline} --consent {signature} --account {other_account}")
    if session.network != "development":
        command += f" --network {session.network}"
    result = {"agreement": agreement.address, "signer": account.address, "role": role,
              "active_periods": args.active_periods, "deadline": deadline, "nonce": agreement.termination_nonce(),
              "signature": signature, "submit": command}
    if args.json:
        ui.emit_json(result)
    else:
        ui.out.print(f"{role} consent to run {args.active_periods} period(s), valid until {when(deadline)} "
                     f"(deadline {deadline}):")
        ui.out.print(signature)
        ui.note(f"the {other} ({getattr(agreement.terms, other)}) submits it: {command}")
    return 0


def run_terminate_submit(args: argparse.Namespace, ui: UI) -> int:
    session = open_session(args)
    agreement = session.agreement(args.agreement, args.factory)
    account = account_for(args, session.chain)
    role = _party(agreement, account)
    try:
        consent = bytes.fromhex(args.consent.removeprefix("0x"))
    except ValueError:
        consent = b""
    if len(consent) != 65:
        raise UserError("--consent: not a signature (0x and 130 hex digits, as `terminate sign` prints it)")
    other = "customer" if role == "provider" else "provider"
    other_address = getattr(agreement.terms, other)
    # what the agreement can still do first: a consent already executed is void, and "terminated already" says why
    _check_termination(agreement, args.active_periods, args.deadline, session.chain.now())
    signer = agreement.termination_signer(args.active_periods, args.deadline, consent)
    if signer == account.address:
        raise UserError(f"this consent is your own ({role}) signature: the {other} ({other_address}) submits it, "
                        "adding theirs, or signs one for you to submit")
    if signer != other_address:
        raise UserError(f"the consent is not the {other}'s for --active-periods {args.active_periods} and "
                        f"--deadline {args.deadline} at termination nonce {agreement.termination_nonce()}: give both "
                        "exactly as `terminate sign` printed them (a signature over other numbers recovers to an "
                        "unrelated address); a consent signed before the last termination or revocation is void, "
                        "ask for a new one")
    own = agreement.sign_termination(account, args.active_periods, args.deadline)
    provider_sig, customer_sig = (own, consent) if role == "provider" else (consent, own)
    receipt = agreement.terminate(account, args.active_periods, args.deadline, provider_sig, customer_sig)
    return report_done(ui, args, "terminated", receipt, active_periods=args.active_periods)


def run_terminate_revoke(args: argparse.Namespace, ui: UI) -> int:
    session = open_session(args)
    agreement = session.agreement(args.agreement, args.factory)
    account = account_for(args, session.chain)
    if not {"provider", "customer"} & set(agreement.roles(account.address)):
        raise UserError(f"{account.address} is neither the provider nor the customer of {agreement.address}: only "
                        "they can revoke consents (choose the --account)")
    receipt = agreement.revoke_termination_consents(account)
    return report_done(ui, args, "consents revoked", receipt, nonce=agreement.termination_nonce())


def run_close(args: argparse.Namespace, ui: UI) -> int:
    session = open_session(args)
    agreement = session.agreement(args.agreement, args.factory)
    account = account_for(args, session.chain)
    missing = agreement.missing_consents()
    if missing and agreement.roles(account.address) and not agreement.fn.closed().call():
        # the contract lets a party close an agreement that does not bind both yet at any time: that ends it for good
        ui.note(f"the {' and the '.join(missing)} {'has' if len(missing) == 1 else 'have'} not agreed to the terms "
                "yet, so closing now withdraws the offer for good (no period can run) and returns the bond")
        if not ui.confirm("close, withdrawing the offer?", args.yes):
            ui.err.print("nothing was sent")
            return 1
    receipt = agreement.close(account)
    return report_done(ui, args, "closed", receipt)
