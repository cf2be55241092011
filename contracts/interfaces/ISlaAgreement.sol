// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title One service level agreement, as its parties, oracles and auditors see it.
/// @notice Every call that needs the terms takes them ABI-encoded (`encodedTerms`); the agreement keeps only their
/// keccak256 and refuses any other bytes. Amounts are in the token's base units (ETH when the token is the zero
/// address); measured values are uint32, parts per million for availability and microseconds for objectives where
/// lower is better. Nobody, the factory included, can change the terms or move money other than by these rules.
interface ISlaAgreement {
    /// @notice Where a period stands. A period is settled exactly once.
    enum PeriodState {
        Unfunded, // fee not escrowed before the period began
        Funded,
        Settled, // by a quorum of oracle reports
        SettledByFallback, // no quorum by the deadline
        SettledUnfunded, // a report was recorded; no money moved
        Refunded // cut off by early termination; the fee went back to the customer
    }

    /// @notice One period's record: one storage slot, written when the period is funded and when it settles.
    struct PeriodRecord {
        PeriodState state;
        uint24 creditBps;
        uint32 maintenanceSeconds;
        uint96 compensation;
        uint96 providerPayout;
    }

    /// @notice One oracle's signed report of one period.
    /// @dev `coverage[s]` is the part of service s's eligible slices (those outside maintenance) for which the oracle
    /// holds a sample, in ppm, rounded down: how much of the period the value is measured from. `signature` is over
    /// the EIP-712 `Report(uint256 period,uint32[] values,uint32[] coverage,bytes32 evidenceRoot)`.
    struct Report {
        uint32[] values;
        uint32[] coverage;
        bytes32 evidenceRoot;
        bytes signature;
    }

    /// @notice The customer escrowed fees.
    /// @param customer Who paid.
    /// @param firstPeriod The first period funded.
    /// @param periods How many periods, from `firstPeriod` on.
    /// @param amount The total escrowed.
    event Funded(address indexed customer, uint256 firstPeriod, uint256 periods, uint256 amount);

    /// @notice The provider added to the bond.
    /// @param provider Who paid.
    /// @param amount What was added.
    /// @param bondBalance The bond after it.
    event BondPosted(address indexed provider, uint256 amount, uint256 bondBalance);

    /// @notice A report counted towards a settlement.
    /// @param period The period reported.
    /// @param oracle The signer, a member of the oracle set.
    /// @param values Its values, one per service in the terms' order.
    /// @param coverage How much of each service's eligible slices it measured, in ppm.
    /// @param evidenceRoot The Merkle root of the samples behind the values.
    event ReportAccepted(
        uint256 indexed period, address indexed oracle, uint32[] values, uint32[] coverage, bytes32 evidenceRoot
    );

    /// @notice A period settled, and both parties were paid in the same transaction.
    /// @param period The period.
    /// @param state How it settled (Settled, SettledByFallback or SettledUnfunded).
    /// @param values The per-service medians used (empty for the fallback).
    /// @param creditBps The credit, in basis points of the fee.
    /// @param compensation What the customer received, fee share and bond share together.
    /// @param compensationFromBond The part of `compensation` taken from the bond.
    /// @param providerPayout What the provider received.
    event PeriodSettled(
        uint256 indexed period,
        PeriodState state,
        uint32[] values,
        uint256 creditBps,
        uint256 compensation,
        uint256 compensationFromBond,
        uint256 providerPayout
    );

    /// @notice A transfer was refused or failed; the amount is kept in `owed` for `withdraw`.
    /// @param to The recipient.
    /// @param amount The amount kept.
    event PaymentDeferred(address indexed to, uint256 amount);

    /// @notice Owed money was taken.
    /// @param account Whose it was.
    /// @param to Where it went.
    /// @param amount How much.
    event Withdrawn(address indexed account, address indexed to, uint256 amount);

    /// @notice The provider announced maintenance; oracles and auditors read the exclusions from this event.
    /// @param start The window's start (unix seconds).
    /// @param end The window's end, exclusive.
    event MaintenanceAnnounced(uint64 start, uint64 end);

    /// @notice Both parties ended the agreement early.
    /// @param activePeriods The periods that still run.
    /// @param refundedPeriods Funded periods that had not begun, refunded.
    /// @param refund The amount refunded to the customer.
    event Terminated(uint256 activePeriods, uint256 refundedPeriods, uint256 refund);

    /// @notice A party withdrew every unexecuted termination consent.
    /// @param by The provider or the customer.
    /// @param nonce The nonce a consent must name from now on.
    event TerminationConsentsRevoked(address indexed by, uint256 nonce);

    /// @notice A party agreed to the terms on-chain. Both must before a period is funded or settled.
    /// @param party The provider or the customer.
    event Consented(address indexed party);

    /// @notice The agreement closed and the bond went back to the provider.
    /// @param bondReturned The bond returned.
    event Closed(uint256 bondReturned);

    /// @notice `initialize` was called by someone other than the factory.
    error NotFactory();
    /// @notice `initialize` was called a second time.
    error AlreadyInitialized();
    /// @notice The encoded terms passed are not the ones the agreement was created with.
    error TermsMismatch();
    /// @notice Only the customer may do this.
    /// @param caller Who tried.
    error NotCustomer(address caller);
    /// @notice Only the provider may do this.
    /// @param caller Who tried.
    error NotProvider(address caller);
    /// @notice An ETH payment did not carry the amount due.
    /// @param expected The amount due.
    /// @param received `msg.value`.
    error WrongPaymentAmount(uint256 expected, uint256 received);
    /// @notice ETH sent to a token agreement, or to the agreement directly.
    error UnexpectedEther();
    /// @notice The periods asked for go beyond the agreement's active periods.
    /// @param firstPeriod The first period the deposit would fund.
    /// @param periods How many were asked for.
    /// @param activePeriods The periods that run.
    error FundingBeyondTerm(uint256 firstPeriod, uint256 periods, uint256 activePeriods);
    /// @notice Zero periods to fund, or a zero bond.
    error NothingToFund();
    /// @notice The agreement is closed.
    error AgreementClosed();
    /// @notice The period is beyond the active periods.
    /// @param period The period asked for.
    /// @param activePeriods The periods that run.
    error PeriodNotActive(uint256 period, uint256 activePeriods);
    /// @notice The period has not ended yet.
    /// @param period The period.
    /// @param endsAt Its end (unix seconds).
    error PeriodNotOver(uint256 period, uint256 endsAt);
    /// @notice The period is settled already.
    /// @param period The period.
    error PeriodAlreadySettled(uint256 period);
    /// @notice Fewer reports than the quorum.
    /// @param signatures The reports given.
    /// @param quorum The reports needed.
    error QuorumNotReached(uint256 signatures, uint256 quorum);
    /// @notice A report has a value count other than the number of services.
    /// @param expected The number of services.
    /// @param received The values in the report.
    error WrongValueCount(uint256 expected, uint256 received);
    /// @notice A report is signed by an account outside the oracle set.
    /// @param signer The recovered signer.
    error NotAnOracle(address signer);
    /// @notice Two reports have the same signer.
    /// @param signer The signer.
    error DuplicateSigner(address signer);
    /// @notice An availability value above 100%.
    /// @param service The service's index in the terms.
    /// @param value The value.
    error ValueOutOfRange(uint256 service, uint256 value);
    /// @notice A report measured less of a service's period than the terms' `minCoverage`: it does not count, and a
    /// submitter leaves it out (an honest oracle never signs one).
    /// @param oracle The report's signer.
    /// @param service The service's index in the terms.
    /// @param coverage The report's coverage of it, in ppm.
    /// @param minCoverage The least the terms accept, in ppm.
    error CoverageTooLow(address oracle, uint256 service, uint256 coverage, uint256 minCoverage);
    /// @notice A coverage above 100%.
    /// @param service The service's index in the terms.
    /// @param coverage The value.
    error CoverageOutOfRange(uint256 service, uint256 coverage);
    /// @notice A token transfer into the agreement delivered another amount than was sent (a fee-on-transfer
    /// token, say): such a token cannot be held exactly, so the deposit is refused.
    /// @param token The token.
    /// @param expected What was sent.
    /// @param received What arrived.
    error TokenNotExact(address token, uint256 expected, uint256 received);
    /// @notice The fallback may settle this period only after its report deadline.
    /// @param period The period.
    /// @param fallbackFrom When the fallback opens (unix seconds).
    error DeadlineNotReached(uint256 period, uint256 fallbackFrom);
    /// @notice Nothing is owed to this account.
    /// @param account The caller.
    error NothingToWithdraw(address account);
    /// @notice The ETH transfer of a withdrawal failed.
    /// @param to The recipient.
    /// @param amount The amount.
    error TransferFailed(address to, uint256 amount);
    /// @notice A maintenance window announced with less notice than the terms require.
    /// @param start The window's start.
    /// @param earliestStart The earliest start the notice allows.
    error InsufficientNotice(uint256 start, uint256 earliestStart);
    /// @notice A maintenance window of zero length.
    error EmptyWindow();
    /// @notice A maintenance window outside the agreement's active term.
    /// @param start The window's start.
    /// @param end The window's end.
    error WindowOutsideTerm(uint256 start, uint256 end);
    /// @notice The window would take a period's maintenance beyond the allowance.
    /// @param period The period.
    /// @param used Its maintenance seconds with the window.
    /// @param allowance The terms' allowance per period.
    error AllowanceExceeded(uint256 period, uint256 used, uint256 allowance);
    /// @notice The termination consent expired.
    /// @param deadline Its deadline.
    error TerminationExpired(uint256 deadline);
    /// @notice A termination may only cut periods that have not begun.
    /// @param requested The active periods asked for.
    /// @param earliest The fewest allowed: every period that has begun.
    /// @param activePeriods The periods that run now.
    error InvalidTermination(uint256 requested, uint256 earliest, uint256 activePeriods);
    /// @notice A termination consent is not signed by the party it stands for.
    /// @param expected The party.
    /// @param signer The recovered signer.
    error BadConsent(address expected, address signer);
    /// @notice The agreement may close only after its last active period and with every funded period settled.
    /// @param endsAt The end of the last active period.
    /// @param openFundedPeriods Funded periods not yet settled.
    error NotYetClosable(uint256 endsAt, uint256 openFundedPeriods);
    /// @notice A withdrawal to the zero address.
    error ZeroRecipient();
    /// @notice The deposit would fund other periods than the caller named: a period began, or another deposit
    /// landed, while the transaction waited.
    /// @param requested The first period the caller named.
    /// @param fundable The first period a deposit funds now.
    error FundingMoved(uint256 requested, uint256 fundable);
    /// @notice Only the provider or the customer may do this.
    /// @param caller The sender.
    error NotAParty(address caller);
    /// @notice A withdrawal to the agreement itself, which would strand the money in it.
    error RecipientIsAgreement();
    /// @notice Not both parties have agreed to the terms on-chain yet (`accept`), so nothing is funded or settled.
    /// @param providerConsented Whether the provider has.
    /// @param customerConsented Whether the customer has.
    error NotYetBinding(bool providerConsented, bool customerConsented);
    /// @notice The party has consented already.
    /// @param party The sender.
    error AlreadyConsented(address party);
    /// @notice No period can be funded before the provider's bond reaches the terms' bond.
    /// @param required The terms' bond.
    /// @param posted The bond posted so far.
    error BondNotPosted(uint256 required, uint256 posted);
    /// @notice The bond with one fee would not fit the period record's uint96.
    /// @param bondBalance The bond it would become.
    /// @param limit The largest bond allowed.
    error BondTooLarge(uint256 bondBalance, uint256 limit);

    /// @notice Binds a fresh clone to its terms; the factory calls it once, in the creating transaction.
    /// @param termsHash_ keccak256 of the ABI-encoded terms.
    /// @param periodCount The terms' period count.
    /// @param providerCreated The creator is the provider: creating is its consent.
    /// @param customerCreated The creator is the customer: creating is its consent.
    /// @param noBondDue The terms ask for no bond.
    function initialize(
        bytes32 termsHash_,
        uint32 periodCount,
        bool providerCreated,
        bool customerCreated,
        bool noBondDue
    ) external;

    /// @notice A party agrees to the terms on-chain (creating the agreement, posting bond and funding count too).
    /// @param encodedTerms The agreement's terms, ABI-encoded.
    function accept(bytes calldata encodedTerms) external;

    /// @notice Anyone submits a party's signed consent to the terms: EIP-712 `Consent(bytes32 termsHash)` in this
    /// agreement's domain (`consentDigest`), by the party's key or accepted by its ERC-1271 wallet.
    /// @param encodedTerms The agreement's terms, ABI-encoded.
    /// @param party The provider or the customer.
    /// @param signature Its signature.
    function acceptFor(bytes calldata encodedTerms, address party, bytes calldata signature) external;

    /// @notice The customer escrows `periods` fees. They fund the next periods that have not begun; a period
    /// that began unfunded stays unfunded.
    /// @param encodedTerms The agreement's terms, ABI-encoded.
    /// @param firstPeriod The first period the caller means to fund: the deposit is refused (FundingMoved) if a
    /// period began, or another deposit landed, while the transaction waited, instead of funding later periods.
    /// @param periods How many periods to fund.
    function fund(bytes calldata encodedTerms, uint32 firstPeriod, uint32 periods) external payable;

    /// @notice The provider's collateral, paid out only for credits above 100% of a fee.
    /// @param encodedTerms The agreement's terms, ABI-encoded.
    /// @param amount What to add to the bond.
    function postBond(bytes calldata encodedTerms, uint96 amount) external payable;

    /// @notice Settles a period from a quorum of signed oracle reports and pays both parties at once. Anyone may
    /// submit. Each service's value is the median of the submitted values.
    /// @param encodedTerms The agreement's terms, ABI-encoded.
    /// @param index The period.
    /// @param reports At least a quorum of reports, each from a distinct member of the oracle set.
    function settle(bytes calldata encodedTerms, uint256 index, Report[] calldata reports) external;

    /// @notice With no quorum by `reportDeadline` after a period's end, anyone settles it by the agreed
    /// fallback, so no period can stay open for ever.
    /// @param encodedTerms The agreement's terms, ABI-encoded.
    /// @param index The period.
    function settleByFallback(bytes calldata encodedTerms, uint256 index) external;

    /// @notice Takes what a failed transfer left owed to the caller, optionally to another address.
    /// @param encodedTerms The agreement's terms, ABI-encoded.
    /// @param to The recipient (for a caller that cannot receive the token itself).
    function withdraw(bytes calldata encodedTerms, address to) external;

    /// @notice Pays `account` what a failed transfer left owed to it, to `account` itself. Anyone may call it, so a
    /// contract party that cannot call the agreement (a simple treasury) still gets its money; only the owner can
    /// send it elsewhere (`withdraw`).
    /// @param encodedTerms The agreement's terms, ABI-encoded.
    /// @param account Whose money.
    function payOwed(bytes calldata encodedTerms, address account) external;

    /// @notice Both parties end the agreement early: periods that have begun run to their end and settle as
    /// usual; funded periods that have not begun are refunded to the customer. Either party may send it.
    /// @param encodedTerms The agreement's terms, ABI-encoded.
    /// @param newActivePeriods The periods that keep running.
    /// @param deadline The consent's expiry (unix seconds).
    /// @param providerSignature The provider's EIP-712 `Termination(uint32 activePeriods,uint64 deadline)`.
    /// @param customerSignature The customer's signature of the same.
    function terminate(
        bytes calldata encodedTerms,
        uint32 newActivePeriods,
        uint64 deadline,
        bytes calldata providerSignature,
        bytes calldata customerSignature
    ) external;

    /// @notice After the last active period has ended and every funded period is settled, returns the bond to
    /// the provider. Anyone may call it.
    /// @param encodedTerms The agreement's terms, ABI-encoded.
    function close(bytes calldata encodedTerms) external;

    /// @notice The provider announces a maintenance window; the contract enforces the notice and the
    /// per-period allowance.
    /// @param encodedTerms The agreement's terms, ABI-encoded.
    /// @param start The window's start (unix seconds).
    /// @param duration Its length in seconds.
    function announceMaintenance(bytes calldata encodedTerms, uint64 start, uint64 duration) external;

    /// @notice A period's record.
    /// @param index The period.
    /// @return The record (all zero for a period never funded nor settled).
    function period(uint256 index) external view returns (PeriodRecord memory);

    /// @notice The digest an oracle signs for a report (EIP-712, bound to this agreement and chain).
    /// @param periodIndex The period.
    /// @param values The values, one per service.
    /// @param coverage The coverage of each service, in ppm.
    /// @param evidenceRoot The evidence's Merkle root.
    /// @return The EIP-712 digest.
    function reportDigest(
        uint256 periodIndex,
        uint32[] calldata values,
        uint32[] calldata coverage,
        bytes32 evidenceRoot
    )
        external
        view
        returns (bytes32);

    /// @notice The digest each party signs to consent to a termination.
    /// @param newActivePeriods The periods that keep running.
    /// @param deadline The consent's expiry.
    /// @param nonce The agreement's terminationNonce the consent is for.
    /// @return The EIP-712 digest.
    function terminationDigest(uint32 newActivePeriods, uint64 deadline, uint32 nonce) external view returns (bytes32);

    /// @notice The provider or the customer withdraws every termination consent not yet executed.
    /// @param encodedTerms The agreement's terms, ABI-encoded.
    function revokeTerminationConsents(bytes calldata encodedTerms) external;

    /// @notice The nonce every termination consent must name now.
    /// @return The nonce.
    function terminationNonce() external view returns (uint32);

    /// @notice keccak256 of the ABI-encoded terms.
    /// @return The hash every call's `encodedTerms` must match.
    function termsHash() external view returns (bytes32);

    /// @notice Periods that run; lowered by an agreed early termination.
    /// @return The count.
    function activePeriods() external view returns (uint32);

    /// @notice The first period the next deposit may fund.
    /// @return The period index.
    function nextFundable() external view returns (uint32);

    /// @notice Funded periods not yet settled or refunded; the bond is released only when this is 0.
    /// @return The count.
    function openFundedPeriods() external view returns (uint32);

    /// @notice Whether the agreement is closed.
    /// @return True after `close`.
    function closed() external view returns (bool);

    /// @notice The provider's bond still held.
    /// @return The amount.
    function bondBalance() external view returns (uint96);

    /// @notice Money kept for a recipient whose transfer failed during settlement or refund.
    /// @param account The recipient.
    /// @return The amount `withdraw` pays out.
    function owed(address account) external view returns (uint256);

    /// @notice The factory that created the implementation; the only caller of `initialize`.
    /// @return Its address.
    function factory() external view returns (address);
}
