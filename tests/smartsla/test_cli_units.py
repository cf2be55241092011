"""Pieces of the `smartsla` command that need no node: revert explanations, times on the command line, token
metadata. Each of these once hid a bug behind a fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartsla.chain.chain import Chain
from smartsla.chain.reverts import Reverted
from smartsla.cli.common import UserError, explain_revert
from smartsla.cli.provider import parse_time
from smartsla.onchain.client import Contracts


def test_deadline_not_reached_is_explained_in_words():
    # The explanation's parameter once shadowed the time formatter: the call raised, and the raw name was shown.
    text = explain_revert(Reverted("DeadlineNotReached", (3, 1_800_000_000)))
    assert "period 3 may be settled by fallback from 2027-01-15 08:00:00 UTC on" in text


def test_every_revert_explanation_renders():
    from smartsla.cli.common import REVERT_WORDS

    for name, words in REVERT_WORDS.items():
        arity = words.__code__.co_argcount
        args = tuple(1_800_000_000 + i for i in range(arity))
        text = explain_revert(Reverted(name, args))
        assert words(*args) in text, name


@pytest.mark.parametrize("text", ["2027-03-01T02:00:00", "2027-03-01 02:00"])
def test_a_time_without_a_zone_is_refused(text):
    with pytest.raises(UserError, match="zone"):
        parse_time(text, now=1_800_000_000, what="--start")


@pytest.mark.parametrize(("text", "expected"), [
    ("2027-03-01T02:00:00Z", 1_803_866_400), ("2027-03-01T03:00:00+01:00", 1_803_866_400),
    ("1803866400", 1_803_866_400), ("+1h", 1_800_003_600),
])
def test_times_with_a_zone_seconds_and_durations(text, expected):
    assert parse_time(text, now=1_800_000_000, what="--start") == expected


def test_a_token_without_metadata_is_shown_in_base_units():
    """A token with no symbol() or decimals() must not be shown as if it had 18 decimals: one fallback, stated."""
    with Chain.connect("embedded") as chain:
        contracts = Contracts(chain)
        deployer = chain.account("deployer")
        # a contract with code but no ERC-20 metadata: the factory itself
        factory = contracts.deploy_factory(deployer)
        info = contracts.token_info(factory.address)
        assert info.decimals == 0 and not info.has_metadata
        assert factory.address[:10] in info.symbol
        usd = contracts.deploy_test_usd(deployer)
        real = contracts.token_info(usd.address)
        assert (real.symbol, real.decimals, real.has_metadata) == ("tUSD", 6, True)
        assert contracts.token_info("0x" + "00" * 20) == ("ETH", 18, True)


def test_every_error_the_contracts_can_raise_is_explained_in_words():
    """Contract refusals reach users as words: no custom error of SlaAgreement, SlaFactory or what they call
    (OpenZeppelin's) is printed raw."""
    from smartsla.chain.build import compile_contracts
    from smartsla.cli.common import REVERT_WORDS

    artifacts = compile_contracts()
    raised = {e["name"] for name in ("SlaAgreement", "SlaFactory") for e in artifacts[name].abi if e["type"] == "error"}
    assert sorted(raised - set(REVERT_WORDS)) == []


def test_bad_addresses_and_paths_are_refused_before_any_work(tmp_path, capsys, monkeypatch):
    """One error line, exit 2, nothing done: an address that is not one, an HTML report in a missing folder
    (that once printed a traceback after the whole audit, with exit 1, the code of an audit FAIL)."""
    from smartsla.cli import main

    monkeypatch.setenv("SMARTSLA_HOME", str(tmp_path / "home"))
    assert main(["list", "--network", "embedded", "--address", "0xnothex"]) == 2
    err = capsys.readouterr().err
    assert "--address" in err and "Traceback" not in err
    assert main(["audit", "0x" + "12" * 20, "--network", "embedded", "--html", str(tmp_path / "missing" / "a.html")]) == 2
    err = capsys.readouterr().err
    assert "--html" in err and "missing" in err and "Traceback" not in err


def test_withdraw_for_another_owner_refuses_a_redirect_and_a_bad_address(tmp_path, capsys, monkeypatch):
    """`withdraw --for OWNER` pays OWNER itself: with --to it would let anyone redirect another's money."""
    from smartsla.cli import main

    monkeypatch.setenv("SMARTSLA_HOME", str(tmp_path / "home"))
    agreement = "0x" + "12" * 20
    assert main(["withdraw", agreement, "--network", "embedded", "--for", "0xnothex"]) == 2
    assert "--for" in capsys.readouterr().err
    assert main(["withdraw", agreement, "--network", "embedded", "--for", "0x" + "34" * 20,
                 "--to", "0x" + "56" * 20]) == 2
    err = capsys.readouterr().err
    assert "only the owner may send its money elsewhere" in err and "Traceback" not in err


def _status(**over) -> dict:
    data = {"agreement": "0x" + "ab" * 20, "network": "development", "chain_time": 1_800_000_000,
            "provider": "0xP", "customer": "0xC", "token": "tUSD", "fee_per_period": "1000",
            "periods": {"count": 3, "active": 3, "length_s": 3600, "first_start": 1_799_990_000},
            "oracles": {"members": ["0x1", "0x2", "0x3"], "quorum": 2, "report_deadline_s": 600},
            "escrow": "0", "held": "0", "bond": "0", "funded_through": 2, "closed": False, "current_period": None,
            "periods_state": {"settled": 3}, "pending": [], "owed": {"provider": "0", "customer": "0"},
            "bond_required": "0", "bond_posted": True, "consented": {"provider": True, "customer": True},
            "creator": "0xP"}
    data.update(over)
    return data


def test_status_says_closed_and_what_to_do_next():
    from smartsla.cli.customer import status_lines

    closed = "\n".join(status_lines(_status(closed=True, chain_time=1_700_000_000)))
    assert "closed" in closed and "not begun" not in closed
    ended = "\n".join(status_lines(_status()))
    assert "smartsla close 0x" in ended
    nothing = "\n".join(status_lines(_status(funded_through=-1)))
    assert "nothing funded yet" in nothing and "period -1" not in nothing
    late = "\n".join(status_lines(_status(pending=[{"period": 1, "ended": 1_799_997_200, "state": "funded",
                                                      "fallback_from": 1_799_997_800}])))
    assert "smartsla settle-fallback 0x" in late and "--period 1" in late and "waiting for anyone" not in late
    early = "\n".join(status_lines(_status(pending=[{"period": 2, "ended": 1_799_999_990, "state": "funded",
                                                       "fallback_from": 1_800_000_590}])))
    assert "waiting for oracle reports" in early


def test_status_says_who_has_not_consented_and_what_bond_is_missing():
    from smartsla.cli.customer import status_lines

    binding = "\n".join(status_lines(_status()))
    assert "not binding" not in binding and "bond short" not in binding
    offer = "\n".join(status_lines(_status(consented={"provider": True, "customer": False}, creator="0xS",
                                           bond_posted=False, bond_required="500", bond="200")))
    assert "not binding yet" in offer and "the customer has not agreed" in offer and "smartsla accept 0x" in offer
    assert "created by 0xS" in offer
    assert "bond short" in offer and "ask for 500 tUSD" in offer and "200 tUSD posted" in offer
    neither = "\n".join(status_lines(_status(consented={"provider": False, "customer": False})))
    assert "the provider and the customer have not agreed" in neither


def test_the_create_preview_says_where_each_account_comes_from(tmp_path, monkeypatch, capsys):
    """A typo in a party's name would silently become a fresh dev account: the preview says which names are
    keystores, which are addresses and which are dev accounts no keystore backs."""
    from eth_account import Account

    from smartsla.chain.accounts import save_keystore
    from smartsla.cli.common import UI
    from smartsla.cli.provider import print_binding
    from smartsla.terms.parse import load_terms

    monkeypatch.setenv("SMARTSLA_HOME", str(tmp_path))
    save_keystore("acme", Account.create(), "pw")
    text = (Path(__file__).resolve().parents[2] / "examples" / "aws-ec2.yaml").read_text()
    terms = load_terms(text.replace("customer: customer", "customer: acme").replace("provider: provider",
                                                                                  "provider: acmee"))
    with Chain.connect("embedded") as chain:
        from smartsla.chain.accounts import name_resolver

        onchain = terms.to_chain(name_resolver(chain), "0x" + "11" * 20, 6, now=chain.now())
    print_binding(UI(), terms, onchain, "tUSD", 6)
    out = capsys.readouterr().out
    assert "(keystore acme)" in out
    assert "(dev account 'acmee': no keystore has this name)" in out


def test_an_address_is_read_from_a_keystore_without_its_password(tmp_path, monkeypatch):
    """`list --account keystore:FILE` only needs the address, which a keystore holds in the clear."""
    from eth_account import Account

    from smartsla.chain.accounts import AccountError, account_address, save_keystore

    monkeypatch.setenv("SMARTSLA_HOME", str(tmp_path))
    monkeypatch.delenv("SMARTSLA_PASSWORD", raising=False)
    acct = Account.create()
    entry = save_keystore("ops", acct, "pw")
    assert account_address("ops") == acct.address
    assert account_address(f"keystore:{entry.path}") == acct.address
    with pytest.raises(AccountError, match="does not exist"):
        account_address(f"keystore:{tmp_path / 'nope.json'}")
