"""The `smartsla` command's answers to bad input and refusals, and the paths the end-to-end run does not take
(keystores, termination by both parties' signatures, maintenance), against a real `development` node."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from smartsla.chain.chain import dev_key
from smartsla.cli import main
from tests.helpers.devnode import DevNode

pytestmark = pytest.mark.anvil

ADDRESS = "0x" + "12" * 20


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    dev = DevNode(tmp_path_factory.mktemp("cli") / "home")
    dev.run("node", "start")
    try:
        factory = dev.run("factory", "deploy", "--json", json_out=True)
        created = dev.run("create", "examples/multi-service.yaml", "--yes", "--start-in", "1h", "--json",
                          json_out=True)
        dev.run("bond", created["agreement"], "500")  # the terms' bond, before the customer can fund
        dev.factory, dev.usd, dev.agreement = factory["factory"], factory["test_usd"], created["agreement"]
        yield dev
    finally:
        dev.run("node", "stop", check=False)


@pytest.fixture
def cli(node, monkeypatch, capsys):
    """Runs `smartsla ...` in this process against the module's node; returns (exit code, stdout, stderr)."""
    for key in ("SMARTSLA_HOME", "SMARTSLA_NODE_PORT", "SMARTSLA_NETWORK"):
        monkeypatch.setenv(key, node.env[key])
    for key in ("SMARTSLA_ACCOUNT", "SMARTSLA_PASSWORD", "SMARTSLA_FACTORY"):
        monkeypatch.delenv(key, raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_node_down_and_unknown_networks_are_named_with_the_fix(cli, monkeypatch, tmp_path):
    code, _, err = cli("status", ADDRESS, "--network", "nowhere")
    assert code == 2 and "unknown network 'nowhere'" in err and "development" in err
    monkeypatch.delenv("SMARTSLA_SEPOLIA_URL", raising=False)
    code, _, err = cli("status", ADDRESS, "--network", "sepolia")
    assert code == 2 and "$SMARTSLA_SEPOLIA_URL" in err
    monkeypatch.setenv("SMARTSLA_NODE_PORT", "9")  # nothing listens on the discard port
    code, _, err = cli("status", ADDRESS)
    assert code == 2 and "not running" in err and "smartsla node start" in err


def test_unknown_agreements_are_refused_before_any_transaction(cli, node):
    code, _, err = cli("status", "0x1234")
    assert code == 2 and "not an address" in err
    code, _, err = cli("fund", ADDRESS)
    assert code == 2 and f"no contract at {ADDRESS}" in err.replace("\n", "")
    code, _, err = cli("payouts", node.usd)  # a contract, but not an agreement of this factory
    assert code == 2 and "was not created by the factory" in err


def test_no_factory_recorded_on_a_fresh_chain(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("SMARTSLA_HOME", str(tmp_path))  # another home: its address book is empty
    code, _, err = cli("create", "examples/aws-ec2.yaml", "--yes")
    assert code == 2 and "no factory is recorded" in err and "smartsla factory deploy" in err
    code, _, err = cli("list", "--factory", "0xnot")
    assert code == 2 and "--factory '0xnot' is not an address" in err
    code, out, _ = cli("node", "status")  # this home started no node
    assert code == 1 and "not running" in out


def test_missing_keys_and_keys_on_the_command_line(cli, node, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    code, _, err = cli("fund", node.agreement, "--account", "env:NO_SUCH_KEY")
    assert code == 2 and "NO_SUCH_KEY is not set" in err
    raw = "0x" + dev_key("customer").hex()
    code, out, err = cli("fund", node.agreement, "--account", raw)
    assert code == 2 and "visible to other users" in err and raw not in out + err
    monkeypatch.setenv("BAD_KEY", "0x1234")
    code, out, err = cli("fund", node.agreement, "--account", "env:BAD_KEY")
    assert code == 2 and "BAD_KEY does not hold a valid private key" in err and "0x1234" not in err


def test_keystore_import_use_and_wrong_password(cli, node, monkeypatch):
    key = "0x" + dev_key("customer").hex()
    monkeypatch.setenv("CUSTOMER_KEY", key)
    monkeypatch.setenv("SMARTSLA_PASSWORD", "correct horse")
    code, out, err = cli("accounts", "import", "acme", "--key-env", "CUSTOMER_KEY", "--json")
    assert code == 0, err
    entry = json.loads(out)
    assert key[2:] not in out + err
    code, out, _ = cli("accounts", "list", "--json")
    assert {"name": "acme", "address": entry["address"]}.items() <= json.loads(out)[0].items()
    code, _, err = cli("accounts", "import", "acme", "--key-env", "CUSTOMER_KEY")
    assert code == 2 and "exists" in err

    code, out, err = cli("fund", node.agreement, "--account", "acme", "--json")  # the customer, from its keystore
    assert code == 0, err
    assert json.loads(out)["periods"].startswith("0..")
    monkeypatch.setenv("SMARTSLA_PASSWORD", "wrong")
    code, _, err = cli("fund", node.agreement, "--account", "acme")
    assert code == 2 and "wrong password" in err
    monkeypatch.delenv("SMARTSLA_PASSWORD")
    code, _, err = cli("fund", node.agreement, "--account", "acme")
    assert code == 2 and "SMARTSLA_PASSWORD" in err  # no terminal here to ask on


def test_the_contract_refusing_is_exit_3_with_its_reason(cli, node):
    code, _, err = cli("fund", node.agreement, "--account", "provider")
    assert code == 3 and "NotCustomer" in err
    code, _, err = cli("bond", node.agreement, "lots")
    assert code == 2 and "AMOUNT" in err
    code, _, err = cli("withdraw", node.agreement)
    assert code == 2 and "owes" in err and "nothing" in err
    code, _, err = cli("announce", node.agreement, "--start", "next tuesday", "--duration", "1h")
    assert code == 2 and "--start" in err
    code, _, err = cli("announce", node.agreement, "--start", "+1h", "--duration", "1h")
    assert code == 3 and "InsufficientNotice" in err and "announced earlier" in err  # 48 hours' notice


def test_create_asks_before_deploying(cli):
    code, out, err = cli("create", "examples/aws-ec2.yaml")
    assert code == 2 and "--yes" in err and "terms show" in err  # not a terminal: no silent deployment
    assert out == ""


def test_refusals_in_words_and_the_fallback(cli, node):
    created = node.run("create", "examples/multi-service.yaml", "--yes", "--start-in", "1h", "--json", json_out=True)
    address = created["agreement"]
    code, _, err = cli("settle-fallback", address, "--period", "0")
    assert code == 3 and "NotYetBinding" in err and "the customer has not agreed to its terms" in err
    code, _, err = cli("fund", address)
    assert code == 3 and "BondNotPosted" in err and "the provider posts the rest first" in err
    code, _, err = cli("close", address)  # a party may withdraw an offer not yet binding: asked first
    assert code == 2 and "withdraws the offer" in err and "--yes" in err
    code, _, err = cli("accept", address, "--account", "customer", "--yes")
    assert code == 0 and "binding yes" in _, err
    code, _, err = cli("settle-fallback", address, "--period", "0")
    assert code == 3 and "PeriodNotOver" in err and "period 0 runs until" in err
    code, _, err = cli("close", address)
    assert code == 3 and "NotYetClosable" in err and "runs until" in err
    code, out, _ = cli("payouts", address, "--csv")
    assert code == 0 and out.splitlines() == [
        "period,service,value,target,credit,state,to_customer,from_bond,to_provider,transaction,time"]


def test_termination_needs_both_signatures(cli, node):
    created = node.run("create", "examples/multi-service.yaml", "--yes", "--start-in", "1h", "--json", json_out=True)
    address = created["agreement"]
    node.run("bond", address, "500")
    assert cli("fund", address, "--periods", "3")[0] == 0
    code, out, err = cli("terminate", "sign", address, "--active-periods", "1", "--account", "provider", "--json")
    assert code == 0, err
    consent = json.loads(out)
    # the provider cannot use its own consent twice: said before any transaction, naming who must submit
    code, _, err = cli("terminate", "submit", address, "--active-periods", "1", "--deadline", str(consent["deadline"]),
                       "--consent", consent["signature"], "--account", "provider")
    assert code == 2 and "your own (provider) signature" in err and "the customer" in err
    # the printed command is complete: the other party's account included
    # (the customer's keystore if one here holds its key, as the keystore test's 'acme' does, else its dev name)
    assert consent["submit"].endswith(("--account customer", "--account acme"))
    assert consent["signature"] in consent["submit"]
    # other numbers than those signed recover to a stranger: said as such, not as that stranger's consent
    code, _, err = cli("terminate", "submit", address, "--active-periods", "2", "--deadline", str(consent["deadline"]),
                       "--consent", consent["signature"], "--account", "customer")
    assert code == 2 and "exactly as `terminate sign` printed them" in err
    code, out, err = cli("terminate", "submit", address, "--active-periods", "1", "--deadline",
                         str(consent["deadline"]), "--consent", consent["signature"], "--account", "customer", "--json")
    assert code == 0, err
    code, out, _ = cli("status", address, "--json")
    status = json.loads(out)
    assert status["periods"]["active"] == 1 and status["escrow"] == "1000"  # two of three fees refunded
    code, out, _ = cli("payouts", address, "--json")
    totals = json.loads(out)["totals"]
    assert totals["to_customer"] == {"credits": "0", "credits_from_bond": "0", "refunds": "2000"}  # fees, not credits
    code, out, _ = cli("payouts", address)
    assert code == 0 and "its own fees refunded 2000" in out and "credits 0" in out
    # a second submit of the same consent: the agreement runs 1 period already
    code, _, err = cli("terminate", "submit", address, "--active-periods", "1", "--deadline",
                       str(consent["deadline"]), "--consent", consent["signature"], "--account", "customer")
    assert code == 2 and "runs 1 period(s) (it was terminated already)" in err


def test_termination_consent_that_could_never_be_submitted_is_refused_at_signing(cli, node):
    address = node.run("create", "examples/multi-service.yaml", "--yes", "--start-in", "1h", "--json",
                       json_out=True)["agreement"]
    for args, says in ((["--active-periods", "20"], "runs 6 period(s); a termination can only lower that, to 0..5"),
                       (["--active-periods", "6"], "can only lower"),
                       (["--active-periods", "-1"], "give a number of periods"),
                       (["--active-periods", "2", "--deadline", "1000"], "has passed on this chain"),
                       (["--active-periods", "2", "--valid-for", "soon"], "--valid-for")):
        code, out, err = cli("terminate", "sign", address, *args, "--account", "provider")
        assert code == 2 and says in err and out == "", (args, err)
    code, _, err = cli("terminate", "submit", address, "--active-periods", "2", "--deadline", "99999999999",
                       "--consent", "0x1234", "--account", "customer")
    assert code == 2 and "130 hex digits" in err


def test_family_without_action_prints_its_help(cli):
    code, out, _ = cli("node")
    assert code == 2 and "start" in out and "stop" in out


def test_fallback_settles_a_period_nobody_reported(devnode, monkeypatch):
    from smartsla.chain.chain import Chain

    devnode.run("factory", "deploy")
    address = devnode.run("create", "examples/multi-service.yaml", "--yes", "--start-in", "1h", "--json",
                          json_out=True)["agreement"]
    devnode.run("bond", address, "500")
    assert devnode.run("fund", address, "--json", json_out=True)["periods"] == "0..0"
    status = devnode.run("status", address, "--json", json_out=True)
    monkeypatch.setenv("SMARTSLA_NODE_PORT", str(devnode.port))
    with Chain.connect("development") as chain:  # no oracle reports: 30 days and the 2-day deadline pass
        chain.travel_to(status["periods"]["first_start"] + 32 * 86400 + 1)
    pending = devnode.run("status", address, "--json", json_out=True)["pending"]
    assert pending[0]["period"] == 0 and pending[0]["waiting"] == "anyone may settle by fallback"
    settled = devnode.run("settle-fallback", address, "--period", "0", "--account", "stranger", "--json",
                          json_out=True)
    assert settled["credit"] == "100%" and settled["to_customer"] == "1000 tUSD"  # fallback: full-credit
    payouts = devnode.run("payouts", address, "--json", json_out=True)
    assert payouts["periods"][0]["state"] == "settled by fallback"
    table = devnode.run("payouts", address).stdout
    assert "none*" in table and "fallback*" in table and "nothing was measured" in table
    assert "full credit" in table


def test_a_second_factory_and_a_duplicate_or_past_agreement_are_warned_about(cli, node, tmp_path):
    """Deploying a second factory would hide the first one's agreements from `list`: asked, refused without a
    terminal or --yes, nothing deployed. Creating the same terms document again, or terms whose periods began
    already, is said before the agreement is created."""
    code, out, err = cli("factory", "deploy")
    assert code == 2 and "is recorded" in err and "--yes" in err and out == ""
    code, out, err = cli("create", "examples/multi-service.yaml", "--yes", "--start-in", "2h", "--json")
    assert code == 0
    assert f"already created an agreement from this terms document: {node.agreement}" in err
    past = tmp_path / "past.yaml"
    past.write_text(Path("examples/aws-ec2.yaml").read_text().replace("periods:", "periods:\n  start: 2020-01-01T00:00:00Z", 1))
    code, out, err = cli("create", str(past), "--yes", "--json")
    assert "every period of these terms has ended already" in err


def test_node_advance_moves_the_dev_clock_forward_only(devnode):
    before = devnode.run("node", "status", "--json", json_out=True)["block_timestamp"]
    moved = devnode.run("node", "advance", "31d", "--json", json_out=True)
    assert moved["before"] >= before and moved["after"] == moved["before"] + 31 * 86400
    # later blocks carry on from the new time (the node mines a block a second)
    time.sleep(2.2)
    assert devnode.run("node", "status", "--json", json_out=True)["block_timestamp"] >= moved["after"]
    for bad in ("0s", "1.5s", "soon"):
        proc = devnode.run("node", "advance", bad, check=False)
        assert proc.returncode == 2 and proc.stderr.startswith("error: DURATION") and "Traceback" not in proc.stderr


def test_list_shows_names_and_states_and_names_stand_for_addresses(devnode):
    devnode.run("factory", "deploy")
    first = devnode.run("create", "examples/multi-service.yaml", "--yes", "--start-in", "1h", "--json",
                        json_out=True)["agreement"]
    other = devnode.run("create", "examples/aws-ec2.yaml", "--yes", "--start-in", "1h", "--json",
                        json_out=True)["agreement"]
    listed = {r["agreement"]: r for r in devnode.run("list", "--json", json_out=True)}
    assert listed[first]["name"] == "multi-service-2027" and listed[other]["name"] == "aws-ec2-region"
    assert {r["state"] for r in listed.values()} == {"not begun"}
    status = devnode.run("status", "multi-service-2027", "--json", json_out=True)
    assert status["agreement"] == first
    proc = devnode.run("status", "no-such-agreement", check=False)
    assert proc.returncode == 2 and "nor the name of an agreement" in proc.stderr
    # the same terms twice: the name is ambiguous, so the addresses are listed
    again = devnode.run("create", "examples/multi-service.yaml", "--yes", "--start-in", "1h", "--json",
                        json_out=True)["agreement"]
    proc = devnode.run("status", "multi-service-2027", check=False)
    assert proc.returncode == 2 and first in proc.stderr and again in proc.stderr
    devnode.run("node", "advance", "200d")
    states = {r["agreement"]: r["state"] for r in devnode.run("list", "--json", json_out=True)}
    assert states[first] == "ended: anyone may close it"  # nothing was funded, so nothing waits to settle
    assert states[other].startswith("in period 6 of 0..11")
    # a chain reset forgets the names with the chain
    devnode.run("node", "stop")
    devnode.run("node", "start", "--fresh")
    devnode.run("factory", "deploy", "--yes")
    proc = devnode.run("status", "aws-ec2-region", check=False)
    assert proc.returncode == 2 and "nor the name" in proc.stderr


def test_a_customer_short_of_ether_hears_the_contracts_refusal_or_its_balance(cli, node, monkeypatch, tmp_path):
    """The node refuses to estimate what its sender cannot pay ("insufficient funds"), which hid the contract's
    own refusal: funding beyond the term must say so, and an affordable-in-terms call must name the balance."""
    monkeypatch.setenv("SMARTSLA_PASSWORD", "pw")
    assert cli("accounts", "new", "poor-customer")[0] == 0
    terms = tmp_path / "eth.yaml"
    text = (Path(__file__).resolve().parents[2] / "examples" / "multi-service.yaml").read_text()
    terms.write_text(text.replace("token: test-usd", "token: ETH").replace('fee: "1000"', 'fee: "100000"')
                     .replace('bond: "500"', 'bond: "1"').replace("customer: customer", "customer: poor-customer"))
    code, out, err = cli("create", str(terms), "--yes", "--start-in", "1h", "--json")
    assert code == 0, err
    address = json.loads(out)["agreement"]
    assert cli("bond", address, "1")[0] == 0
    code, _, err = cli("fund", address, "--periods", "20", "--account", "poor-customer")
    assert code == 3 and "FundingBeyondTerm(0, 20, 6)" in err and "node refused" not in err
    code, _, err = cli("fund", address, "--periods", "2", "--account", "poor-customer")
    assert code == 2 and "holds" in err and "sends 200000 ETH plus gas" in err and "--ether 200001" in err


def test_a_mistyped_checksum_is_the_users_to_fix_not_the_nodes(cli, node):
    flipped = "0x" + "".join(c.swapcase() for c in node.agreement[2:])  # same hex, checksum case wrong
    for args, what in ((["status", flipped], "AGREEMENT"), (["list", "--address", flipped], "--address"),
                       (["audit", flipped], "AGREEMENT"), (["withdraw", node.agreement, "--to", flipped], "--to"),
                       (["status", node.agreement, "--factory", flipped], "--factory"),
                       (["node", "fund", flipped], "address")):
        code, _, err = cli(*args)
        assert code == 2 and f"{what} {flipped} has a wrong EIP-55 checksum" in err and "node" not in err, (args, err)
    code, out, err = cli("status", node.agreement.lower(), "--json")  # lower case carries no checksum: accepted
    assert code == 0 and json.loads(out)["agreement"] == node.agreement


def test_an_agreement_the_customer_created_binds_once_the_provider_consents_by_a_signature_anyone_submits(cli, node):
    """The creator's consent is its creating; the other party signs one (a cold key, say) and a third account sends
    it. Until then the chain takes no money and records nothing against the provider."""
    code, out, err = cli("create", "examples/aws-ec2.yaml", "--yes", "--start-in", "1h", "--json",
                         "--account", "customer")
    assert code == 0, err
    address = json.loads(out)["agreement"]
    status = json.loads(cli("status", address, "--json")[1])
    assert status["consented"] == {"provider": False, "customer": True}
    assert status["creator"] == status["customer"]
    code, out, _ = cli("status", address)
    assert "not binding yet" in out and "the provider has not agreed" in out
    code, _, err = cli("fund", address)
    assert code == 3 and "NotYetBinding" in err and "the provider has not agreed to its terms" in err
    code, _, err = cli("accept", address, "--account", "provider")  # no terminal: asked, not sent
    assert code == 2 and "--yes" in err
    code, _, err = cli("accept", address, "--account", "customer", "--yes")
    assert code == 2 and "agreed to these terms already" in err
    code, _, err = cli("accept", address, "--account", "stranger", "--yes")
    assert code == 2 and "neither the provider nor the customer" in err
    code, out, err = cli("accept", address, "--account", "provider", "--sign", "--json")
    assert code == 0, err
    signed = json.loads(out)
    assert signed["role"] == "provider" and signed["submit"].startswith(f"smartsla accept {address} --for ")
    code, _, err = cli("accept", address, "--for", status["provider"], "--consent", "0x" + "11" * 65,
                       "--account", "stranger")
    assert code == 3 and "BadConsent" in err
    code, out, err = cli("accept", address, "--for", signed["signer"], "--consent", signed["signature"],
                         "--account", "stranger", "--json")
    assert code == 0, err
    assert json.loads(out)["binding"] == "yes"
    assert cli("fund", address)[0] == 0
