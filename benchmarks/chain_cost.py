"""What an agreement costs to run on a public chain, on paper: the gas and calldata measured on the embedded chain
(``benchmarks.gas``' scenarios, receipts' ``gasUsed``) priced at stated example fees with the chains' published fee
formulas. Ethereum L1 and an OP-stack L2 (Fjord L1 data fee), 1-day and 30-day periods, settled alone or in
batches of 100.

    python -m benchmarks.chain_cost [--write docs/deploying.md]

``--write`` replaces the part of the file between the ``cost:begin`` and ``cost:end`` markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from benchmarks.gas import Bench, Measured
from smartsla.chain.build import compile_contracts
from smartsla.chain.chain import Chain

GWEI = 10**9

# Example prices, stated where they are used; change them here to price another day.
ETH_USD = 3_000
L1_GAS_PRICES_GWEI = (2.0, 20.0)       # a quiet and a busy Ethereum (base fee + tip)
L2_GAS_PRICE_GWEI = 0.01                # an OP-stack chain's execution gas (base fee + tip)
L1_BASE_FEE_GWEI = 10.0                 # what the L2's L1 data fee is priced from
L1_BLOB_BASE_FEE_GWEI = 1.0
BASE_FEE_SCALAR = 1_368                 # example Ecotone/Fjord scalars (1e6-scaled), of the order OP Mainnet uses
BLOB_FEE_SCALAR = 810_949
# Fjord's constants (GasPriceOracle): estimatedSize = max(minTransactionSize * 1e6, intercept + coef * fastlzSize)
FJORD_INTERCEPT = -42_585_600
FJORD_FASTLZ_COEF = 836_500
FJORD_MIN_SIZE = 100
# Bytes of an EIP-1559 transaction besides its calldata, unsigned (chain id, nonce, fees, gas, to, value, access
# list, RLP headers): an estimate; the signature's 68 are added as GasPriceOracle.getL1FeeUpperBound adds them.
TX_ENVELOPE_BYTES = 50
BATCH = 100
FUND_AT_ONCE = 12                       # the customer funds 12 periods per deposit (benchmarks.gas' fund 12 periods)


def l1_data_fee_wei(unsigned_tx_bytes: int) -> int:
    """The Fjord L1 data fee of a transaction, with FastLZ's size replaced by its upper bound (txSize + txSize/255 +
    16, as GasPriceOracle.getL1FeeUpperBound does): what is charged at most. ABI calldata (many zero bytes)
    compresses well, so the real fee is lower."""
    tx_size = unsigned_tx_bytes + 68
    flz_upper_bound = tx_size + tx_size // 255 + 16
    estimated = max(FJORD_MIN_SIZE * 10**6, FJORD_INTERCEPT + FJORD_FASTLZ_COEF * flz_upper_bound)
    l1_fee_scaled = (BASE_FEE_SCALAR * round(L1_BASE_FEE_GWEI * GWEI) * 16
                     + BLOB_FEE_SCALAR * round(L1_BLOB_BASE_FEE_GWEI * GWEI))
    return estimated * l1_fee_scaled // 10**12


@dataclass(frozen=True)
class TxCost:
    """One agreement's share of one transaction: gas, and calldata bytes of the whole transaction / items."""

    gas: int
    tx_bytes: int     # unsigned transaction bytes of the whole transaction
    items: int = 1    # agreement-periods sharing it

    def l1_wei(self, gas_price_gwei: float) -> float:
        return self.gas * gas_price_gwei * GWEI

    def l2_wei(self) -> float:
        return self.gas * L2_GAS_PRICE_GWEI * GWEI + l1_data_fee_wei(self.tx_bytes) / self.items


def tx_cost(m: Measured, items: int = 1) -> TxCost:
    """From a measured operation (a batch's figures are already per item)."""
    return TxCost(m.gas, m.calldata * items + TX_ENVELOPE_BYTES, items)


def usd(wei: float) -> str:
    dollars = wei / 10**18 * ETH_USD
    return f"${dollars:,.2f}" if dollars >= 0.1 else f"${dollars:,.4f}"


def rows(results: dict[str, Measured]) -> list[tuple[str, list[str]]]:
    settle_alone = tx_cost(results["settle_steady"])
    settle_batched = tx_cost(results[f"settle_batch_{BATCH}"], BATCH)
    fund = results[f"fund_{FUND_AT_ONCE}"]
    fund_share = TxCost(fund.gas // FUND_AT_ONCE, fund.calldata + TX_ENVELOPE_BYTES, FUND_AT_ONCE)
    one_time = [tx_cost(results["create_erc20"]), tx_cost(results["post_bond"])]

    def month(periods: int, settle: TxCost) -> list[str]:
        """Per agreement and 30-day month: each period settled once and its fee deposited (12 at a time)."""
        per_period = [settle, fund_share]
        cells = [usd(periods * sum(c.l1_wei(p) for c in per_period)) for p in L1_GAS_PRICES_GWEI]
        cells.append(usd(periods * sum(c.l2_wei() for c in per_period)))
        return cells

    out = [
        ("1-day periods, each settled alone", month(30, settle_alone)),
        (f"1-day periods, settled in batches of {BATCH}", month(30, settle_batched)),
        ("30-day periods, settled alone", month(1, settle_alone)),
        (f"30-day periods, settled in batches of {BATCH}", month(1, settle_batched)),
        ("once: create the agreement and post the bond",
         [usd(sum(c.l1_wei(p) for c in one_time)) for p in L1_GAS_PRICES_GWEI]
         + [usd(sum(c.l2_wei() for c in one_time))]),
    ]
    return out


def markdown(results: dict[str, Measured], description: str) -> str:
    header = ("| per agreement, per month | " + " | ".join(f"Ethereum L1 at {p:g} gwei" for p in L1_GAS_PRICES_GWEI)
              + " | OP-stack L2 |")
    lines = [
        "<!-- cost:begin (generated by `python -m benchmarks.chain_cost --write docs/deploying.md`; do not edit) -->",
        "",
        f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d} on {description}; gas from receipts "
        f"(settle alone {results['settle_steady'].gas:,}, in a batch of {BATCH} "
        f"{results[f'settle_batch_{BATCH}'].gas:,} per agreement-period, fund {FUND_AT_ONCE} periods "
        f"{results[f'fund_{FUND_AT_ONCE}'].gas:,}, create {results['create_erc20'].gas:,}, post bond "
        f"{results['post_bond'].gas:,}), 1 service, 2-of-3 reports, ERC-20 paid to both parties.",
        "",
        header,
        "|---|" + "---|" * (len(L1_GAS_PRICES_GWEI) + 1),
        *(f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows(results)),
        "",
        f"Example prices: ETH = ${ETH_USD:,}; L1 gas {' or '.join(f'{p:g}' for p in L1_GAS_PRICES_GWEI)} gwei; "
        f"on the L2, execution gas {L2_GAS_PRICE_GWEI:g} gwei and the Fjord L1 data fee "
        "`estimatedSize * (baseFeeScalar * l1BaseFee * 16 + blobFeeScalar * l1BlobBaseFee) / 1e12` with "
        f"l1BaseFee {L1_BASE_FEE_GWEI:g} gwei, l1BlobBaseFee {L1_BLOB_BASE_FEE_GWEI:g} gwei, baseFeeScalar "
        f"{BASE_FEE_SCALAR:,}, blobFeeScalar {BLOB_FEE_SCALAR:,}. `estimatedSize` uses FastLZ's upper bound "
        "(as `GasPriceOracle.getL1FeeUpperBound`), so the L2 column is what is charged at most; a batch's data fee "
        f"is shared by its {BATCH} items. The customer's deposit is counted per period (12 periods a deposit); "
        "the token's `approve` is not.",
        "",
        "<!-- cost:end -->",
    ]
    return "\n".join(lines)


def write(path: Path, section: str) -> None:
    text = path.read_text()
    pattern = re.compile(r"<!-- cost:begin.*?<!-- cost:end -->", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path}: no <!-- cost:begin --> ... <!-- cost:end --> markers to replace")
    path.write_text(pattern.sub(lambda _: section, text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chain_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--write", metavar="PATH", help="replace the cost section of PATH (docs/deploying.md)")
    args = parser.parse_args(argv)
    console = Console()
    with Chain.connect("embedded") as chain:
        bench = Bench(chain, compile_contracts())
        with console.status("measuring gas on the embedded chain"):
            results = bench.run()
        description = f"the embedded chain (py-evm), chain id {chain.w3.eth.chain_id}"
    section = markdown(results, description)
    console.print(section)
    if args.write:
        write(Path(args.write), section)
        console.print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
