"""Customer commands: ``accept`` (either party), ``fund``, ``status``, ``payouts``, ``withdraw``, ``list``."""

from __future__ import annotations

import argparse
import csv
import io
import os

from rich import box
from rich.table import Table
from web3.logs import DISCARD

from smartsla import penalty
from smartsla.chain.accounts import account_address
from smartsla.chain.deployments import agreement_names
from smartsla.cli.common import (
    ACCOUNT_ENV,
    UI,
    Session,
    UserError,
    account_for,
    add_account_option,
    add_factory_option,
    add_json_option,
    add_network_option,
    address_arg,
    dev_mint,
    open_session,
    report_done,
    when,
)
from smartsla.encoding import to_hex
from smartsla.onchain.history import load_history
from smartsla.onchain.types import PeriodState
from smartsla.terms.model import format_value
from smartsla.terms.parse import load_terms
from smartsla.units import format_bps, format_seconds, format_token_amount, human_duration

STATE_WORDS = {
    PeriodState.UNFUNDED: "not funded",
    PeriodState.FUNDED: "funded",
    PeriodState.SETTLED: "settled",
    PeriodState.SETTLED_BY_FALLBACK: "settled by fallback",
    PeriodState.SETTLED_UNFUNDED: "closed unfunded",
    PeriodState.REFUNDED: "refunded",
}


EPILOG = """\
examples:
  smartsla list --account customer
  smartsla accept 0xAGREEMENT --account customer                    # agree to its terms on-chain
  smartsla accept 0xAGREEMENT --sign --account cold-key             # a signed consent for someone to submit
  smartsla accept 0xAGREEMENT --for 0xPARTY --consent 0xSIG          # submit it (anyone may)
  smartsla fund 0xAGREEMENT --periods 3
  smartsla status 0xAGREEMENT
  smartsla payouts 0xAGREEMENT --csv > payouts.csv
  smartsla withdraw 0xAGREEMENT --to 0xTREASURY
  smartsla settle-fallback 0xAGREEMENT --period 4

Amounts are in the agreement's token (ETH or the ERC-20's own units). --json prints one JSON document.
"""


def _parser(sub, name: str, **kwargs):
    return sub.add_parser(name, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)


def register(sub) -> None:
    accept = _parser(
        sub, "accept", help="agree on-chain to an agreement's terms (provider or customer; shows them, asks)",
        description="An agreement binds its provider and its customer only once each has agreed to its terms "
                    "on-chain; until then nothing is funded or settled. Creating it is the creator's consent, posting "
                    "bond the provider's and funding the customer's; this is for a party that does neither first "
                    "(an agreement someone else created, a contract wallet). With --sign it prints a signed consent "
                    "instead, which anyone may submit with --for and --consent (a contract wallet's signature is "
                    "checked by its ERC-1271 isValidSignature).")
    accept.add_argument("agreement", metavar="AGREEMENT")
    accept.add_argument("--sign", action="store_true", help="print a signed consent; send nothing")
    accept.add_argument("--for", dest="party", metavar="PARTY", help="submit PARTY's signed consent (with --consent)")
    accept.add_argument("--consent", metavar="SIGNATURE", help="the party's signature (0x...), with --for")
    accept.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _options(accept, "customer", "the consenting party (with --for: only the sender)")
    accept.set_defaults(handler=run_accept)

    fund = _parser(sub, "fund", help="escrow the fee for the next periods (customer)",
                          description="Escrow the fee for the next N unfunded periods that have not begun (a "
                                      "period that has begun can no longer be funded). The contract pays it out "
                                      "after each period, split by the measured service level.")
    fund.add_argument("agreement", metavar="AGREEMENT")
    fund.add_argument("--periods", type=int, default=1, metavar="N", help="how many periods (default %(default)s)")
    _options(fund, "customer", "the customer")
    fund.set_defaults(handler=run_fund)

    status = _parser(sub, "status", help="terms, escrow, bond, the current period and what is pending",
                            description="Where an agreement stands: parties, fee, escrow and bond, the current "
                                        "period and its time left, periods waiting for reports, money owed.")
    status.add_argument("agreement", metavar="AGREEMENT")
    _options(status, None, None)
    status.set_defaults(handler=run_status)

    payouts = sub.add_parser(
        "payouts", help="per period and service: measured value, credit, what each party was paid",
        description="Everything the contract paid, period by period, from the chain's records.")
    payouts.add_argument("agreement", metavar="AGREEMENT")
    payouts.add_argument("--csv", action="store_true", help="one CSV row per period and service on stdout")
    payouts.add_argument("--terms", metavar="TERMS.yaml",
                         help="the agreement's terms file (checked against its document hash): values are then shown "
                              "in each service's own objective (an Apdex score as 0.94, a success rate as a "
                              "percentage) and the combined value as the terms choose it; without it, the chain only "
                              "says lower-is-better (µs) or higher-is-better (ppm, shown as a percentage)")
    _options(payouts, None, None)
    payouts.set_defaults(handler=run_payouts)

    fallback = _parser(
        sub, "settle-fallback", help="settle an ended period the oracles did not report in time (anyone)",
        description="After a period's end plus the report deadline of the terms, anyone may settle it without "
                    "reports: the terms' fallback decides (full credit to the customer, or none).")
    fallback.add_argument("agreement", metavar="AGREEMENT")
    fallback.add_argument("--period", type=int, required=True, metavar="N")
    _options(fallback, "customer", "the account that sends the transaction")
    fallback.set_defaults(handler=run_fallback)

    withdraw = sub.add_parser(
        "withdraw", help="take money the contract keeps for you (a payment that could not be pushed)",
        description="Settlements push payments directly; when a push fails (a wallet that refuses, a token that "
                    "blocks the account) the amount is kept as owed. This sends it to you or to --to. With --for, "
                    "anyone has what is owed to OWNER paid to OWNER itself (a treasury contract that cannot call "
                    "the agreement still gets its money); only the owner may send it elsewhere.")
    withdraw.add_argument("agreement", metavar="AGREEMENT")
    withdraw.add_argument("--to", metavar="ADDRESS", help="send it here instead of to the account")
    withdraw.add_argument("--for", dest="owner", metavar="OWNER",
                          help="pay what the agreement owes OWNER (an address) to OWNER; the account only sends")
    _options(withdraw, "customer", "the account owed")
    withdraw.set_defaults(handler=run_withdraw)

    lst = _parser(sub, "list", help="the agreements where an account is provider, customer or oracle",
                         description="The agreements of the factory that name an account as provider, customer or "
                                     "oracle; without --address or --account, every agreement of the factory.")
    lst.add_argument("--address", metavar="ADDRESS", help="whose agreements (default: the --account's address)")
    add_network_option(lst)
    lst.add_argument("--account", default=os.environ.get(ACCOUNT_ENV), metavar="ACCOUNT",
                     help=f"whose agreements: a keystore or dev-account name (default: ${ACCOUNT_ENV})")
    add_factory_option(lst)
    add_json_option(lst)
    lst.set_defaults(handler=run_list)


def _options(parser: argparse.ArgumentParser, default_dev: str | None, what: str | None) -> None:
    add_network_option(parser)
    if default_dev:
        add_account_option(parser, default_dev, what)
    else:
        parser.add_argument("--account", default=None, metavar="ACCOUNT", help=argparse.SUPPRESS)
    add_factory_option(parser)
    add_json_option(parser)


# ------------------------------------------------------------------ accept, fund, withdraw


def terms_preview(session: Session, agreement) -> list[str]:
    """What a party is bound to, read from the chain: the lines shown before it agrees."""
    t = agreement.terms
    symbol, decimals = session.token_info(agreement.token)
    money = lambda units: format_token_amount(units, decimals)  # noqa: E731
    lines = [f"agreement {agreement.address} on {session.network}",
             f"  provider {t.provider}   customer {t.customer}",
             f"  fee {money(t.fee)} {symbol} per period; {t.period_count} periods of {format_seconds(t.period_length)} "
             f"from {when(t.start)}; bond {money(t.bond)} {symbol}; credits capped at {format_bps(t.cap_bps)}"]
    for service in t.services:
        objective = "latency" if service.lower_is_better else "availability"
        lines.append(f"  service {service.name}: {objective} target {format_value(objective, service.target)}, "
                     f"{len(service.tiers)} credit tier(s)")
    lines.append(f"  oracles {t.quorum} of {len(t.oracles)} (each report covering at least "
                 f"{format_value('availability', t.min_coverage)}); with no quorum "
                 f"{format_seconds(t.report_deadline)} after a period: "
                 f"{'full' if t.fallback_full_credit else 'no'} credit")
    return lines


def run_accept(args: argparse.Namespace, ui: UI) -> int:
    if args.sign and (args.party or args.consent):
        raise UserError("--sign makes a consent; --for and --consent submit one: give one or the other")
    if bool(args.party) != bool(args.consent):
        raise UserError("--for PARTY and --consent SIGNATURE go together: the party's address and its signature")
    party = address_arg(args.party, "--for") if args.party else None
    consent = None
    if args.consent:
        try:
            consent = bytes.fromhex(args.consent.removeprefix("0x"))
        except ValueError:
            raise UserError(f"--consent {args.consent!r} is not a hex signature (0x...)") from None
    session = open_session(args)
    agreement = session.agreement(args.agreement, args.factory)
    account = account_for(args, session.chain)
    who = party or account.address
    roles = [r for r in agreement.roles(who) if r in ("provider", "customer")]
    if not roles:
        raise UserError(f"{who} is neither the provider nor the customer of {agreement.address}; "
                        + ("--for names the consenting party" if party else "pass --account of one of them"))
    role = roles[0]
    consents = agreement.consents()
    if consents[role]:
        raise UserError(f"the {role} ({who}) has agreed to these terms already"
                        + ("" if all(consents.values()) else "; the other party's consent is still needed"))
    if not args.json:
        for line in terms_preview(session, agreement):
            ui.out.print(line)
    if args.sign:
        signature = to_hex(agreement.sign_consent(account))
        command = f"smartsla accept {agreement.address} --for {account.address} --consent {signature}"
        if session.network != "development":
            command += f" --network {session.network}"
        if args.json:
            ui.emit_json({"agreement": agreement.address, "signer": account.address, "role": role,
                          "signature": signature, "submit": command})
        else:
            ui.out.print(f"{role} consent to these terms, for this agreement only:")
            ui.out.print(signature)
            ui.note(f"anyone may submit it: {command}")
        return 0
    if party is None and not ui.confirm(f"agree, as the {role}, to these terms?", args.yes):
        ui.err.print("nothing was sent")
        return 1
    receipt = agreement.accept_for(account, party, consent) if party else agreement.accept(account)
    binding = agreement.is_binding()
    return report_done(ui, args, f"{role} consent recorded", receipt,
                       binding="yes" if binding else "not yet: the other party's consent is still needed")


def run_fund(args: argparse.Namespace, ui: UI) -> int:
    if args.periods < 1:
        raise UserError("--periods must be at least 1")
    session = open_session(args)
    agreement = session.agreement(args.agreement, args.factory)
    symbol, decimals = session.token_info(agreement.token)
    customer = account_for(args, session.chain)
    amount = agreement.terms.fee * args.periods
    dev_mint(session, agreement, customer.address, amount)
    receipt = agreement.fund(customer, args.periods)
    # a period that has begun can no longer be funded: the contract funds from the first one not begun
    first = agreement.contract.events.Funded().process_receipt(receipt, errors=DISCARD)[0]["args"]["firstPeriod"]
    return report_done(ui, args, "funded", receipt, periods=f"{first}..{first + args.periods - 1}",
                 amount=f"{format_token_amount(amount, decimals)} {symbol}")


def run_fallback(args: argparse.Namespace, ui: UI) -> int:
    session = open_session(args)
    agreement = session.agreement(args.agreement, args.factory)
    receipt = agreement.settle_by_fallback(account_for(args, session.chain), args.period)
    settled = agreement.settlement(receipt)
    symbol, decimals = session.token_info(agreement.token)
    return report_done(ui, args, f"period {args.period} settled by fallback", receipt,
                 credit=format_bps(settled["creditBps"]),
                 to_customer=f"{format_token_amount(settled['compensation'], decimals)} {symbol}")


def run_withdraw(args: argparse.Namespace, ui: UI) -> int:
    if args.to is not None:
        args.to = address_arg(args.to, "--to")
    if args.owner is not None:
        args.owner = address_arg(args.owner, "--for")
        if args.to is not None:
            raise UserError("--to and --for together: only the owner may send its money elsewhere; drop --to "
                            "(the money goes to OWNER) or --for (you withdraw your own)")
    session = open_session(args)
    agreement = session.agreement(args.agreement, args.factory)
    symbol, decimals = session.token_info(agreement.token)
    account = account_for(args, session.chain)
    owner = args.owner or account.address
    owed = agreement.owed(owner)
    if owed == 0:
        raise UserError(f"the agreement owes {owner} nothing; settled money was paid directly "
                        "(see `smartsla payouts`)")
    if args.owner is not None:
        receipt = agreement.pay_owed(account, owner)
    else:
        receipt = agreement.withdraw(account, args.to)
    return report_done(ui, args, "withdrawn", receipt, amount=f"{format_token_amount(owed, decimals)} {symbol}",
                       to=args.to or owner)


# ------------------------------------------------------------------ list


def run_list(args: argparse.Namespace, ui: UI) -> int:
    if args.address is not None:
        args.address = address_arg(args.address, "--address")
    session = open_session(args)
    factory = session.factory(args.factory)
    whose = args.address
    if whose is None and args.account:
        whose = account_address(args.account, session.chain)
    rows = []
    names = agreement_names(session.chain)
    now = session.chain.now()
    for event in factory.created_events():
        agreement = factory.from_event(event)     # decoded from the log in hand: no second scan per agreement
        roles = agreement.roles(whose) if whose else []
        if whose and not roles:
            continue
        t = agreement.terms
        rows.append({"agreement": agreement.address, "name": names.get(agreement.address), "roles": roles,
                     "provider": t.provider, "customer": t.customer, "periods": t.period_count,
                     "state": agreement_state(agreement, now), "start": t.start,
                     "end": agreement.period_end(t.period_count - 1), "block": event["blockNumber"]})
    if args.json:
        ui.emit_json(rows)
        return 0
    if not rows:
        ui.out.print(f"no agreements{' for ' + whose if whose else ''} in factory {factory.address}")
        return 0
    table = Table(title=f"agreements of factory {factory.address}" + (f" naming {whose}" if whose else ""))
    columns = ["agreement", "name", "state"] + (["roles"] if whose else ["provider", "customer"]) + ["runs"]
    for col in columns:
        table.add_column(col)
    for r in rows:
        runs = f"{when(r['start'])} .. {when(r['end'])}"
        parties = [", ".join(r["roles"])] if whose else [r["provider"], r["customer"]]
        table.add_row(r["agreement"], r["name"] or "-", r["state"], *parties, runs)
    ui.out.print(table)
    if any(r["name"] is None for r in rows):
        ui.note("name '-': created from another machine (names are recorded by `create` in $SMARTSLA_HOME)")
    return 0


def agreement_state(agreement, now: int) -> str:
    """One phrase for the agreement's phase: not begun, period N of M, ended (closable), closed."""
    if agreement.fn.closed().call():
        return "closed"
    t = agreement.terms
    active = agreement.active_periods()
    if now < t.start:
        return "not begun"
    current = current_period(agreement, now)
    if current is not None:
        return f"in period {current} of 0..{active - 1}"
    # only funded periods hold money; close waits for those alone
    unsettled = sum(1 for i in range(active) if agreement.period(i).state == PeriodState.FUNDED)
    return f"ended, {unsettled} funded period(s) to settle" if unsettled else "ended: anyone may close it"


# ------------------------------------------------------------------ status


def current_period(agreement, now: int) -> int | None:
    t = agreement.terms
    if now < t.start:
        return None
    index = (now - t.start) // t.period_length
    return index if index < agreement.active_periods() else None


def status_data(session: Session, agreement) -> dict:
    t = agreement.terms
    now = session.chain.now()
    symbol, decimals = session.token_info(agreement.token)
    money = lambda units: format_token_amount(units, decimals)  # noqa: E731
    active = agreement.active_periods()
    periods = [agreement.period(i) for i in range(active)]
    current = current_period(agreement, now)
    deadline = t.report_deadline
    pending = []
    for i, record in enumerate(periods):
        end = agreement.period_end(i)
        if end <= now and record.state.is_open:
            pending.append({"period": i, "ended": end, "state": STATE_WORDS[record.state],
                            "fallback_from": end + deadline,
                            "waiting": "oracle reports" if end + deadline > now else "anyone may settle by fallback"})
    return {
        "agreement": agreement.address,
        "network": session.network,
        "chain_time": now,
        "provider": t.provider,
        "customer": t.customer,
        "token": symbol,
        "fee_per_period": money(t.fee),
        "periods": {"count": t.period_count, "active": active, "length_s": t.period_length,
                    "first_start": t.start},
        "oracles": {"members": list(t.oracles), "quorum": t.quorum, "report_deadline_s": deadline,
                    "min_coverage_ppm": t.min_coverage},
        "escrow": money(agreement.balance() - agreement.bond_balance()),
        "held": money(agreement.balance()),
        "bond": money(agreement.bond_balance()),
        "bond_required": money(t.bond),
        "bond_posted": agreement.bond_posted(),
        "consented": agreement.consents(),
        "creator": agreement.creator(),
        "funded_through": agreement.fn.nextFundable().call() - 1,
        "closed": agreement.fn.closed().call(),
        "current_period": None if current is None else {
            "index": current, "state": STATE_WORDS[periods[current].state],
            "ends": agreement.period_end(current), "time_left_s": agreement.period_end(current) - now},
        "periods_state": {STATE_WORDS[s]: sum(1 for r in periods if r.state == s) for s in PeriodState
                          if any(r.state == s for r in periods)},
        "pending": pending,
        "owed": {role: money(agreement.owed(getattr(t, role))) for role in ("provider", "customer")},
    }


def status_lines(data: dict) -> list[str]:
    """``smartsla status`` for people, from :func:`status_data`."""
    sym = data["token"]
    p = data["periods"]
    funded = data["funded_through"]
    lines = [
        f"[bold]agreement {data['agreement']}[/] on {data['network']} (chain time {when(data['chain_time'])})",
        f"  provider {data['provider']}   customer {data['customer']}",
        f"  fee {data['fee_per_period']} {sym} per period; {p['active']} of {p['count']} periods active, "
        f"{format_seconds(p['length_s'])} each, from {when(p['first_start'])}",
        f"  oracles {data['oracles']['quorum']} of {len(data['oracles']['members'])}; "
        f"reports due within {format_seconds(data['oracles']['report_deadline_s'])} of a period's end",
        f"  escrow {data['escrow']} {sym}, bond {data['bond']} {sym} (held in all {data['held']} {sym}); "
        + ("nothing funded yet" if funded < 0 else f"funded through period {funded}"),
    ]
    consented = data["consented"]
    missing = [role for role, ok in consented.items() if not ok]
    if missing and not data["closed"]:
        lines.append(f"  [yellow]not binding yet[/]: the {' and the '.join(missing)} "
                     f"{'has' if len(missing) == 1 else 'have'} not agreed to the terms on-chain, so nothing is "
                     f"funded or settled (`smartsla accept {data['agreement']}`; created by {data['creator']})")
    if not data["bond_posted"] and not data["closed"]:
        lines.append(f"  [yellow]bond short[/]: the terms ask for {data['bond_required']} {sym} before any period "
                     f"is funded; {data['bond']} {sym} posted (`smartsla bond {data['agreement']} AMOUNT`)")
    cur = data["current_period"]
    if data["closed"]:
        lines.append("  [bold]closed[/]: every period is settled and the bond went back to the provider")
    elif cur:
        lines.append(f"  now: period {cur['index']} ({cur['state']}), ends {when(cur['ends'])}, "
                     f"{human_duration(cur['time_left_s'])} left")
    elif data["chain_time"] < p["first_start"]:
        lines.append(f"  not begun: the first period starts in {human_duration(p['first_start'] - data['chain_time'])}")
    elif data["pending"]:
        lines.append("  every active period has ended; settle the pending ones, then `smartsla close` returns the bond")
    else:
        lines.append(f"  every active period has ended and is settled: `smartsla close {data['agreement']}` "
                     "returns the bond to the provider")
    if data["periods_state"]:
        lines.append("  periods: " + ", ".join(f"{n} {w}" for w, n in data["periods_state"].items()))
    for item in data["pending"]:
        if item["fallback_from"] > data["chain_time"]:
            waiting = f"waiting for oracle reports (the fallback opens {when(item['fallback_from'])})"
        else:
            waiting = (f"no quorum by the deadline: anyone may settle it now with `smartsla settle-fallback "
                       f"{data['agreement']} --period {item['period']}`")
        lines.append(f"  [yellow]pending[/]: period {item['period']} ended {when(item['ended'])}, {item['state']}, "
                     + waiting)
    owed = {k: v for k, v in data["owed"].items() if v != "0"}
    if owed:
        lines.append("  owed (withdraw with `smartsla withdraw`): " + ", ".join(f"{k} {v} {sym}" for k, v in owed.items()))
    return lines


def run_status(args: argparse.Namespace, ui: UI) -> int:
    session = open_session(args)
    agreement = session.agreement(args.agreement, args.factory)
    data = status_data(session, agreement)
    if args.json:
        ui.emit_json(data)
        return 0
    for line in status_lines(data):
        ui.out.print(line)
    return 0


# ------------------------------------------------------------------ payouts


PAYOUT_COLUMNS = ["period", "service", "value", "target", "credit", "state", "to_customer", "from_bond",
                  "to_provider", "transaction", "time"]


def payout_rows(session: Session, agreement, terms=None) -> tuple[list[dict], dict]:
    """One row per settled period and service (and one for the combined value), plus totals. With the agreement's
    ``terms`` (already checked against its document hash) values are in each service's objective, and the
    combined value is shown as the terms choose it even with basis per-service."""
    history = load_history(session.contracts, agreement.address, agreement.factory.address)
    symbol, decimals = session.token_info(agreement.token)
    money = lambda units: format_token_amount(units, decimals)  # noqa: E731
    t = agreement.terms
    services = t.services
    rows: list[dict] = []
    for index in sorted(history.settlements):
        s = history.settlements[index]
        for k, service in enumerate(services):
            objective = terms.services[k].objective if terms is not None else (
                "latency" if service.lower_is_better else "availability")
            name = service.name
            value = s.values[k] if k < len(s.values) else None
            rows.append({
                "period": index, "service": name,
                "value": None if value is None else format_value(objective, value),
                "target": format_value(objective, service.target),
                "credit": format_bps(s.credit_bps), "state": STATE_WORDS[s.state],
                "to_customer": money(s.compensation), "from_bond": money(s.compensation_from_bond),
                "to_provider": money(s.provider_payout), "transaction": s.tx_hash, "time": s.timestamp,
            })
        if s.values and t.is_combined:
            # the credit of a combined agreement comes from this one number, not from any service's own
            rules = penalty.CreditRules.from_chain(t)
            objective = terms.combined_objective() if terms is not None else (
                "latency" if rules.combined.lower_is_better else "availability")
            rows.append({**rows[-1], "service": "(combined)",
                         "value": format_value(objective, penalty.combined_value(rules, list(s.values))),
                         "target": format_value(objective, rules.combined.target)})
        elif s.values and terms is not None and terms.combined_objective() is not None:
            # basis per-service: the combined number decides nothing, and is shown as the terms choose it
            objective = terms.combined_objective()
            rows.append({**rows[-1], "service": f"(combined, {terms.compensation.combined}, shown)",
                         "value": format_value(objective, penalty.combined_value(terms.credit_rules(),
                                                                                  list(s.values))),
                         "target": ""})
    return rows, payout_totals(history.totals(), agreement, money, symbol)


def matching_terms(path: str, agreement):
    """The terms file ``path`` if it is this agreement's (its document hash is the one on chain), else a
    ``UserError`` naming both hashes."""
    terms = load_terms(path)
    if terms.document_hash() != bytes(agreement.terms.document_hash):
        raise UserError(f"--terms {path} is not the terms of {agreement.address}: its document hash is "
                        f"{to_hex(terms.document_hash())}, the agreement's {to_hex(bytes(agreement.terms.document_hash))}")
    return terms


def payout_totals(totals: dict[str, int], agreement, money, symbol: str) -> dict:
    """The one set of totals ``payouts`` shows and prints as JSON (docs/workflows.md, "Customer"): what came in,
    what went to each party and why, and what the contract still holds. Refunds are the customer's own fees coming
    back, so they are kept apart from credits."""
    t = agreement.terms
    return {
        "token": symbol,
        "bond_required": money(t.bond),
        "bond_posted": agreement.bond_posted(),
        "deposited": {"fees": money(totals["escrowed_fees"]), "bond": money(totals["escrowed_bonds"])},
        "to_customer": {"credits": money(totals["compensation"]),
                        "credits_from_bond": money(totals["compensation_from_bond"]),
                        "refunds": money(totals["refunded"])},
        "to_provider": {"fees": money(totals["provider_payouts"]), "bond_returned": money(totals["bond_returned"])},
        "owed": {"customer": money(agreement.owed(t.customer)), "provider": money(agreement.owed(t.provider))},
        "held": {"fees_of_unsettled_periods": money(totals["open_fees"]), "bond": money(totals["bond_left"]),
                 "owed": money(totals["owed"]), "now": money(totals["held_now"])},
    }


def run_payouts(args: argparse.Namespace, ui: UI) -> int:
    session = open_session(args)
    agreement = session.agreement(args.agreement, args.factory)
    terms = matching_terms(args.terms, agreement) if args.terms else None
    with ui.status("reading the agreement's history"):
        rows, totals = payout_rows(session, agreement, terms)
    if args.json:
        ui.emit_json({"agreement": agreement.address, "periods": rows, "totals": totals})
        return 0
    if args.csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=PAYOUT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        print(buffer.getvalue(), end="")
        return 0
    sym = totals["token"]
    # fits 80 columns: the transaction and the time are in --json and --csv, the table keeps to what a reader compares
    table = Table(title=f"payouts of {agreement.address}, amounts in {sym}", box=box.SIMPLE_HEAD, pad_edge=False,
                  padding=(0, 0), show_edge=False)
    for col, justify in (("period", "right"), ("service", "left"), ("measured", "right"), ("target", "right"),
                         ("credit", "right"), ("to customer", "right"), ("from bond", "right"),
                         ("to provider", "right"), ("settled", "left")):
        table.add_column(col, justify=justify, no_wrap=col in ("service", "measured", "settled"))
    last = None
    fallbacks = []
    for r in rows:
        first_of_period = r["period"] != last
        if first_of_period and last is not None:
            table.add_section()
        by_fallback = r["state"] == STATE_WORDS[PeriodState.SETTLED_BY_FALLBACK]
        if first_of_period and by_fallback:
            fallbacks.append(r["period"])
        measured = r["value"] or ("none*" if by_fallback else "-")
        settled = {"settled": "reports", "closed unfunded": "unfunded"}.get(r["state"], "fallback*" if by_fallback
                                                                              else r["state"])
        table.add_row(str(r["period"]) if first_of_period else "", r["service"], measured, r["target"],
                      *((r["credit"], r["to_customer"], r["from_bond"], r["to_provider"], settled)
                        if first_of_period else [""] * 5))
        last = r["period"]
    ui.out.print(table)
    if not rows:
        ui.out.print("no period is settled yet")
    if fallbacks:
        ui.out.print(f"* period {', '.join(map(str, fallbacks))}: no quorum of oracles reported by the deadline, so "
                     f"the terms' fallback ({'full' if agreement.terms.fallback_full_credit else 'no'} credit) "
                     "settled it; nothing was measured")
    c, p, held, owed = totals["to_customer"], totals["to_provider"], totals["held"], totals["owed"]
    ui.out.print(f"deposited: fees {totals['deposited']['fees']}, bond {totals['deposited']['bond']} {sym} (the terms "
                 f"ask for a bond of {totals['bond_required']} {sym}: "
                 + ("posted" if totals["bond_posted"] else "not posted yet, so no period can be funded") + ")")
    ui.out.print(f"to the customer: credits {c['credits']} (of which from the bond {c['credits_from_bond']}), "
                 f"its own fees refunded {c['refunds']} {sym}")
    ui.out.print(f"to the provider: fees {p['fees']}, bond returned {p['bond_returned']} {sym}")
    ui.out.print(f"still in the contract: {held['now']} {sym} (fees of periods not settled "
                 f"{held['fees_of_unsettled_periods']}, bond {held['bond']}, owed {held['owed']})"
                 + ("" if owed["customer"] == owed["provider"] == "0" else
                    f"; owed to the customer {owed['customer']}, to the provider {owed['provider']}: "
                    "`smartsla withdraw` takes it"))
    return 0
