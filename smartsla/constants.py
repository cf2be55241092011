"""The numbers and codes that both sides of the ABI, and every room of smartsla and oracle, must agree on.

The first block mirrors ``contracts/libraries/SlaTerms.sol`` name for name, so a reader can grep one name in
Solidity and Python alike; a test holds the two sides together. This module is a leaf: it imports nothing of the
project, so any room may use it without a cycle.
"""

from __future__ import annotations

import re

# --- SlaTerms.sol: scales, limits and codes
PPM = 1_000_000  # availability in parts per million: 100% is PPM
BPS = 10_000  # credits in basis points of the fee: 100% is BPS
MAX_PERIODS = 1024
# services and oracles: the worst settlement the terms allow must fit a 30M-gas block and a 128 kB transaction
MAX_SERVICES = 32
MAX_ORACLES = 16
MAX_TIERS = 16
MAX_CAP_BPS = 1_000_000  # credits are stored as uint24
AMOUNT_LIMIT = 2**96  # amounts share a slot: fee, and fee + bond, stay below it
MAX_AMOUNT = AMOUNT_LIMIT - 1
MIN_REPORT_DEADLINE = 300  # seconds: oracles have time to report before the fallback opens
MAX_REPORT_DEADLINE = 90 * 86_400  # seconds: every period can be closed within this after it ends
MAX_MAINTENANCE_NOTICE = 365 * 86_400
MAX_MAINTENANCE_ALLOWANCE = 2**32 - 1  # a period's maintenance seconds are recorded in 32 bits
BASIS_PER_SERVICE = 0
BASIS_COMBINED = 1
COMBINE_WORST = 0
COMBINE_WEIGHTED = 1

UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1

# --- addresses and tokens
ZERO_ADDRESS = "0x" + "00" * 20
ETH = ZERO_ADDRESS  # the token address that means "paid in ETH"
ETH_DECIMALS = 18
TEST_USD_DECIMALS = 6
ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")

# --- services
SERVICE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")  # fits bytes32 and names a file
COMBINED_ID = b"combined".ljust(32, b"\0")  # the id of the combined "service" on a combined basis

# --- time: samples and evidence work in integer microseconds
US_PER_SECOND = 1_000_000
HOUR = 3_600
HOUR_US = HOUR * US_PER_SECOND
NO_LATENCY = 0xFFFF_FFFF  # "no latency measured" in a fixed-width record (uint32 µs)
