"""Deploy the factory and one example agreement: a brownie-style task script over the smartsla library.

Plain Python:  .venv/bin/python scripts/deploy.py [--network embedded|anvil] [TERMS.yaml]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from smartsla.agreement import ETH, Contracts
from smartsla.chain import Chain
from smartsla.terms import load_terms

ROOT = Path(__file__).resolve().parent.parent


def main(network: str = "embedded", terms_file: str | Path = ROOT / "examples" / "aws-ec2.yaml") -> dict:
    terms = load_terms(terms_file)
    with Chain.connect(network) as chain:
        contracts = Contracts(chain)
        deployer = chain.account("deployer")
        factory = contracts.deploy_factory(deployer)
        token, decimals = ETH, 18
        if terms.payment.token == "test-usd":
            token, decimals = contracts.deploy_test_usd(deployer).address, 6
        chain_terms = terms.to_chain(lambda name, _path: chain.resolve(name), token, decimals, start=chain.now() + 120)
        agreement = factory.create(chain.account("provider"), chain_terms)
        result = {"network": network, "factory": factory.address, "agreement": agreement.address,
                  "create_gas": agreement.create_receipt["gasUsed"]}
        print(f"factory {factory.address}\nagreement {agreement.address} ({terms.agreement}), "
              f"create gas {result['create_gas']:,}")
        return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", default="embedded", choices=["embedded", "anvil"])
    parser.add_argument("terms", nargs="?", default=str(ROOT / "examples" / "aws-ec2.yaml"))
    args = parser.parse_args()
    sys.exit(0 if main(args.network, args.terms) else 1)
