"""Deploy the factory and one example agreement: a brownie-style task script over the smartsla library.

Plain Python:  .venv/bin/python scripts/deploy.py [--network embedded|anvil|development] [TERMS.yaml]
Brownie:       .venv-brownie/bin/brownie run scripts/deploy.py --network development   (see docs/brownie.md)

Under ``brownie run``, ``main()`` deploys with brownie's accounts and contract containers and takes from the
library only ``smartsla.terms`` and the dev accounts of ``smartsla.chain`` (the brownie environment has
brownie's web3 7, not the library's web3 8). Otherwise it deploys through ``smartsla.agreement``. Either way the
dev account "deployer" deploys, the provider creates the agreement, and its first period starts two minutes
after the latest block.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TERMS = ROOT / "examples" / "aws-ec2.yaml"
START_DELAY = 120  # seconds from the latest block to the first period


def main(network: str | None = None, terms_file: str | Path = DEFAULT_TERMS) -> dict:
    """Deploy; return the network, the factory's and the agreement's addresses and the creating gas."""
    if network is None and _inside_brownie():
        result = _deploy_with_brownie(terms_file)
    else:
        result = _deploy_with_library(network or "embedded", terms_file)
    print(f"factory {result['factory']}\nagreement {result['agreement']} ({result['name']}), "
          f"create gas {result['create_gas']:,}")
    return result


def _inside_brownie() -> bool:
    """True when `brownie run` called us: brownie is imported and connected to a network."""
    brownie = sys.modules.get("brownie")
    return brownie is not None and brownie.network.is_connected()


def _deploy_with_library(network: str, terms_file: str | Path) -> dict:
    from smartsla.chain.chain import Chain
    from smartsla.constants import ETH
    from smartsla.onchain.client import Contracts
    from smartsla.terms.parse import load_terms

    terms = load_terms(terms_file)
    with Chain.connect(network) as chain:
        contracts = Contracts(chain)
        deployer = chain.account("deployer")
        factory = contracts.deploy_factory(deployer)
        token, decimals = ETH, 18
        if terms.payment.token == "test-usd":
            token, decimals = contracts.deploy_test_usd(deployer).address, 6
        chain_terms = terms.to_chain(lambda name, _path: chain.resolve(name), token, decimals,
                                     start=chain.now() + START_DELAY)
        agreement = factory.create(chain.account("provider"), chain_terms)
        return {"network": network, "name": terms.agreement, "factory": factory.address,
                "agreement": agreement.address, "create_gas": agreement.create_receipt["gasUsed"]}


def _deploy_with_brownie(terms_file: str | Path) -> dict:
    # SlaFactory and TestUSD are the project's contract containers, which `brownie run` adds to the module
    from brownie import SlaFactory, TestUSD, accounts, network, web3

    from smartsla.chain.chain import dev_account
    from smartsla.terms.parse import load_terms

    terms = load_terms(terms_file)
    if web3.eth.get_block("latest").get("baseFeePerGas"):
        network.gas_price("auto")  # brownie's development gas price is 0: too low for a node with a base fee

    def resolve(name: str, _path: str) -> str:
        # dev-account names (provider, customer, oracle-1, ...) are the library's dev accounts, so smartsla's
        # tools know them by the same names; addresses written in the terms file stay as they are
        return name if name.startswith("0x") and len(name) == 42 else dev_account(name).address

    def sender(name: str):
        account = accounts.add(dev_account(name).key.hex())
        if account.balance() < 10**18:
            accounts[0].transfer(account, 10 * 10**18)  # gas money from the node's first unlocked account
        return account

    deployer = sender("deployer")
    factory = SlaFactory.deploy({"from": deployer})
    token, decimals = None, None
    if terms.payment.token == "test-usd":
        token, decimals = TestUSD.deploy({"from": deployer}).address, 6
    start = web3.eth.get_block("latest")["timestamp"] + START_DELAY
    chain_terms = terms.to_chain(resolve, token, decimals, start=start)
    tx = factory.create(factory.encodeTerms(chain_terms), {"from": sender(terms.provider)})
    agreement = tx.events["AgreementCreated"]["agreement"]
    if not web3.eth.get_code(agreement):
        raise RuntimeError(f"no contract at the created agreement's address {agreement}")
    return {"network": network.show_active(), "name": terms.agreement, "factory": factory.address,
            "agreement": agreement, "create_gas": tx.gas_used}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", default="embedded", help="a network from brownie-config.yaml")
    parser.add_argument("terms", nargs="?", default=str(DEFAULT_TERMS))
    args = parser.parse_args()
    sys.exit(0 if main(args.network, args.terms) else 1)
