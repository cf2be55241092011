// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

// Foundry invariant tests of one agreement (issue 11): random sequences of funding, bond, settlement by signed
// reports and by the fallback, withdrawals, termination and close, with the chain's clock moved between them.
// Run by tests/contracts/test_forge_invariants.py (`make test`), compiled by our solc-js adapter. No forge-std:
// the few cheatcodes used are declared here.

import {SlaFactory} from "../../contracts/SlaFactory.sol";
import {SlaAgreement} from "../../contracts/SlaAgreement.sol";
import {ISlaAgreement} from "../../contracts/interfaces/ISlaAgreement.sol";
import {SlaTerms} from "../../contracts/libraries/SlaTerms.sol";
import {TestUSD} from "../../contracts/dev/TestUSD.sol";

interface Vm {
    function warp(uint256 timestamp) external;
    function prank(address sender) external;
    function sign(uint256 key, bytes32 digest) external returns (uint8 v, bytes32 r, bytes32 s);
    function addr(uint256 key) external returns (address);
}

Vm constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

uint256 constant FEE = 1_000e6;
uint256 constant BOND = 700e6;
uint64 constant LENGTH = 1 days;
uint32 constant PERIODS = 6;

/// @dev Every action the parties and strangers can take, bounded to sensible arguments; it records what the
/// invariants need (each period's settlements, what went in and out).
contract Handler {
    SlaAgreement public agreement;
    TestUSD public token;
    bytes public terms;
    address public provider;
    address public customer;
    uint256[3] internal oracleKeys = [uint256(0xA11), 0xA12, 0xA13];
    uint64 public start;

    mapping(uint256 period => uint256) public settledTimes;
    uint256 public paidIn;

    constructor(SlaFactory factory, TestUSD token_) {
        token = token_;
        provider = vm.addr(0xB0B);
        customer = vm.addr(0xC0C);
        start = uint64(block.timestamp + 1 hours);
        SlaTerms.Terms memory t;
        t.provider = provider;
        t.customer = customer;
        t.token = address(token_);
        t.fee = FEE;
        t.bond = BOND;
        t.start = start;
        t.periodLength = LENGTH;
        t.periodCount = PERIODS;
        SlaTerms.Tier[] memory tiers = new SlaTerms.Tier[](2);
        tiers[0] = SlaTerms.Tier(999_000, 1_000);
        tiers[1] = SlaTerms.Tier(900_000, 15_000);
        t.services = new SlaTerms.Service[](1);
        t.services[0] = SlaTerms.Service(bytes32("api"), 999_000, 1, false, tiers);
        t.capBps = 15_000;
        t.oracles = new address[](3);
        for (uint256 i; i < 3; ++i) {
            t.oracles[i] = vm.addr(oracleKeys[i]);
        }
        t.quorum = 2;
        t.minCoverage = 900_000;
        t.reportDeadline = 1 hours;
        t.fallbackFullCredit = true;
        t.maintenanceAllowance = 0;
        t.maintenanceNotice = 1 hours;
        terms = abi.encode(t);
        vm.prank(provider);
        agreement = SlaAgreement(payable(factory.create(terms)));
        token.mint(provider, 100 * BOND);
        token.mint(customer, 100 * FEE * PERIODS);
        vm.prank(provider);
        token.approve(address(agreement), type(uint256).max);
        vm.prank(customer);
        token.approve(address(agreement), type(uint256).max);
    }

    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + seconds_ % (2 * LENGTH));
    }

    function postBond(uint96 amount) external {
        amount = uint96(1 + amount % BOND);
        vm.prank(provider);
        try agreement.postBond(terms, amount) {
            paidIn += amount;
        } catch {}
    }

    function fund(uint32 periods) external {
        periods = 1 + periods % 3;
        uint32 first = _firstFundable();
        vm.prank(customer);
        try agreement.fund(terms, first, periods) {
            paidIn += FEE * periods;
        } catch {}
    }

    function settle(uint256 period, uint32 a, uint32 b) external {
        period %= PERIODS;
        ISlaAgreement.Report[] memory reports = new ISlaAgreement.Report[](2);
        reports[0] = _report(0, period, a % 1_000_001);
        reports[1] = _report(1, period, b % 1_000_001);
        try agreement.settle(terms, period, reports) {
            settledTimes[period] += 1;
        } catch {}
    }

    function settleByFallback(uint256 period) external {
        period %= PERIODS;
        try agreement.settleByFallback(terms, period) {
            settledTimes[period] += 1;
        } catch {}
    }

    function terminate(uint32 keep) external {
        uint32 active = agreement.activePeriods();
        uint64 deadline = uint64(block.timestamp + 1 hours);
        uint32 newActive = active == 0 ? 0 : keep % active;
        bytes32 digest = agreement.terminationDigest(newActive, deadline, agreement.terminationNonce());
        bytes memory providerSig = _sign(0xB0B, digest);
        bytes memory customerSig = _sign(0xC0C, digest);
        try agreement.terminate(terms, newActive, deadline, providerSig, customerSig) {} catch {}
    }

    function close() external {
        try agreement.close(terms) {} catch {}
    }

    function withdraw(bool byProvider) external {
        address who = byProvider ? provider : customer;
        vm.prank(who);
        try agreement.withdraw(terms, who) {} catch {}
    }

    function _firstFundable() internal view returns (uint32) {
        uint256 unstarted = block.timestamp < start ? 0 : (block.timestamp - start) / LENGTH + 1;
        uint256 next = agreement.nextFundable();
        return uint32(unstarted > next ? unstarted : next);
    }

    function _report(uint256 oracle, uint256 period, uint32 value) internal returns (ISlaAgreement.Report memory r) {
        r.values = new uint32[](1);
        r.values[0] = value;
        r.coverage = new uint32[](1);
        r.coverage[0] = 1_000_000;
        r.evidenceRoot = bytes32(uint256(period + 1));
        r.signature = _sign(oracleKeys[oracle], agreement.reportDigest(period, r.values, r.coverage, r.evidenceRoot));
    }

    function _sign(uint256 key, bytes32 digest) internal returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }
}

contract AgreementInvariants {
    Handler internal handler;

    function setUp() public {
        SlaFactory factory = new SlaFactory();
        TestUSD token = new TestUSD();
        handler = new Handler(factory, token);
    }

    /// @dev Read by forge: the only contract whose functions the fuzzer calls.
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// The agreement holds exactly the fees of its open funded periods, the bond and what it owes: no more (nothing
    /// stranded), no less (every promise can be paid).
    function invariant_conservation_of_funds() public view {
        SlaAgreement a = handler.agreement();
        uint256 held = handler.token().balanceOf(address(a));
        uint256 owes = a.owed(handler.provider()) + a.owed(handler.customer());
        require(held == uint256(a.openFundedPeriods()) * FEE + a.bondBalance() + owes, "books do not balance");
    }

    /// Each period settles at most once, by either route.
    function invariant_each_period_settled_at_most_once() public view {
        for (uint256 p; p < PERIODS; ++p) {
            require(handler.settledTimes(p) <= 1, "a period settled twice");
        }
    }

    /// A closed agreement holds nothing but what it owes to a recipient that refused a push.
    function invariant_no_money_in_a_closed_agreement() public view {
        SlaAgreement a = handler.agreement();
        if (!a.closed()) return;
        uint256 owes = a.owed(handler.provider()) + a.owed(handler.customer());
        require(handler.token().balanceOf(address(a)) == owes, "money left in a closed agreement");
        require(a.bondBalance() == 0 && a.openFundedPeriods() == 0, "a closed agreement keeps accounts");
    }

    /// Nothing is funded before the terms' bond has been posted.
    function invariant_no_funding_before_the_bond() public view {
        SlaAgreement a = handler.agreement();
        if (!a.bondPosted()) require(a.nextFundable() == 0 && a.openFundedPeriods() == 0, "funded before the bond");
    }
}
