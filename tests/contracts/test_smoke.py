"""The happy path on both chains: create, fund, report, settle, and the digest the contract and the client agree on."""

from smartsla.onchain.types import PeriodState


def test_report_digest_matches_contract(world):
    agreement = world.create()
    from eth_account.messages import _hash_eip191_message, encode_typed_data

    message = encode_typed_data(full_message=agreement.report_message(3, [999_500, 12], [950_000, 1_000_000],
                                                                      b"\x01" * 32))
    ours = _hash_eip191_message(message)
    theirs = agreement.fn.reportDigest(3, [999_500, 12], [950_000, 1_000_000], b"\x01" * 32).call()
    assert ours == theirs
    # the coverage is signed: another coverage is another digest
    assert agreement.fn.reportDigest(3, [999_500, 12], [950_000, 999_999], b"\x01" * 32).call() != theirs


def test_terms_encoding_matches_contract(world):
    from tests.helpers.world import make_terms

    terms = make_terms(world)
    assert world.contracts.encode_terms(terms) == world.factory.contract.functions.encodeTerms(terms).call()


def test_settle_pays_both_parties(world):
    agreement = world.create()
    agreement.fund(world.customer, 2)
    fee = agreement.terms.fee
    before_customer = agreement.balance_of(world.customer.address)
    before_provider = agreement.balance_of(world.provider.address)
    world.over(agreement, 0)
    receipt = agreement.settle(world.stranger, 0, world.reports(agreement, 0, [[999_500], [999_000]]))
    record = agreement.period(0)
    # median of two is the lower value for availability: 99.90% -> 10% tier
    assert record.state == PeriodState.SETTLED
    assert record.credit_bps == 1_000
    assert agreement.balance_of(world.customer.address) - before_customer == fee // 10
    assert agreement.balance_of(world.provider.address) - before_provider == fee - fee // 10
    assert agreement.balance() == fee
    assert receipt["gasUsed"] < 150_000


def test_discovery_and_maintenance_read_from_the_chain(world):
    mine = world.create()
    other = world.create(oracles=[world.stranger.address], quorum=1)
    found = {a.address for a in world.factory.agreements_for(world.oracles[0].address)}
    assert mine.address in found and other.address not in found
    assert {a.address for a in world.factory.agreements_for(world.stranger.address)} == {other.address}
    assert mine.roles(world.provider.address) == ["provider"]
    assert mine.roles(world.oracles[1].address) == ["oracle"]
    assert mine.roles(world.stranger.address) == []
    start = mine.period_start(1) + 600
    mine.announce_maintenance(world.provider, start, 1_800)
    assert mine.maintenance_windows() == [(start, start + 1_800)]
