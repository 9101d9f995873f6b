"""The sticky split: each user always gets the same variant, shares hold, and a growing candidate keeps its users."""

from __future__ import annotations

import random

import pytest

from tunewise.deploy.split import Split, bucket

USERS = [f"user-{i}" for i in range(10_000)]


def _shares(split, users):
    picks = [split.pick(u).variant for u in users]
    return {name: 100 * picks.count(name) / len(users) for name in set(picks)}, picks


def test_each_user_keeps_a_variant_and_the_shares_are_within_a_point_of_the_target():
    split = Split("baseline", [("candidate", 10)], salt="tickets-1")
    shares, picks = _shares(split, USERS)
    assert abs(shares["candidate"] - 10) <= 1 and abs(shares["baseline"] - 90) <= 1
    again = Split("baseline", [("candidate", 10)], salt="tickets-1")  # another process, after a restart
    assert [again.pick(u).variant for u in USERS] == picks
    assert all(split.pick(u).sticky for u in USERS[:10])
    other_salt = [Split("baseline", [("candidate", 10)], salt="tickets-2").pick(u).variant for u in USERS]
    assert other_salt != picks  # a new deployment draws its own users


def test_growing_the_share_keeps_every_user_already_in_the_candidate():
    previous = None
    for share in (5, 10, 25, 50, 100):
        split = Split("baseline", [("candidate", share)], salt="s")
        shares, picks = _shares(split, USERS)
        assert abs(shares.get("candidate", 0) - share) <= 1
        chosen = {u for u, v in zip(USERS, picks) if v == "candidate"}
        if previous is not None:
            assert previous <= chosen
        previous = chosen


def test_requests_without_a_user_are_split_per_request_and_marked():
    split = Split("baseline", [("a", 20), ("b", 30)], salt="s")
    rng = random.Random(0)
    picks = [split.pick(None, rng=rng) for _ in range(10_000)]
    assert not any(p.sticky for p in picks)
    for name, share in (("a", 20), ("b", 30), ("baseline", 50)):
        assert abs(100 * sum(p.variant == name for p in picks) / len(picks) - share) <= 1.5
    assert 0 <= bucket("s", "x") < 10_000


def test_impossible_splits_are_refused():
    with pytest.raises(ValueError, match="add up to at most 100%"):
        Split("baseline", [("a", 60), ("b", 50)], salt="s")
    with pytest.raises(ValueError, match="named twice"):
        Split("a", [("a", 10)], salt="s")
