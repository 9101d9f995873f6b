"""The sticky traffic split of a deployment: which variant answers a request.

A user id is hashed with the deployment's salt into one of 10,000 buckets (BLAKE2b, so the same user lands
in the same bucket in every process and after every restart, unlike Python's `hash`). Candidates own
consecutive bucket ranges from 0 up, in the order they were added; the baseline owns the rest. Growing a
candidate's share only extends its range, so every user it had stays with it (a user in the candidate
at 10% is still there at 25%); a candidate listed after a growing one shifts up, so grow the last one
added, or give each experiment its own deployment. A request without a user id is split per request
with the same shares, and says so (`sticky=False`) so that reports count it apart.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

BUCKETS = 10_000


def bucket(salt: str, user: str) -> int:
    """The user's bucket in 0..BUCKETS-1 for this salt."""
    digest = hashlib.blake2b(f"{salt}\x00{user}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


@dataclass(frozen=True)
class Pick:
    variant: str
    bucket: int
    sticky: bool  # False: the request had no user id and was split on its own


class Split:
    """`Split("baseline", [("candidate", 10.0)], salt="d-3f2a")`: shares in percent, at most 100 in all."""

    def __init__(self, baseline: str, candidates: list[tuple[str, float]], *, salt: str):
        total = sum(share for _, share in candidates)
        if any(share < 0 for _, share in candidates) or total > 100 + 1e-9:
            raise ValueError(f"candidate shares must be 0-100% and add up to at most 100% (they add up to {total:g}%)")
        names = [baseline, *(name for name, _ in candidates)]
        if len(set(names)) != len(names):
            raise ValueError("a variant is named twice in the split")
        self.baseline, self.salt = baseline, salt
        self.ranges: list[tuple[str, int]] = []  # (variant, first bucket after its range)
        end = 0
        for name, share in candidates:
            end += round(share * BUCKETS / 100)
            self.ranges.append((name, min(end, BUCKETS)))

    def variant_of(self, position: int) -> str:
        for name, end in self.ranges:
            if position < end:
                return name
        return self.baseline

    def pick(self, user: str | None, *, rng: random.Random | None = None) -> Pick:
        if user:
            position = bucket(self.salt, user)
            return Pick(self.variant_of(position), position, True)
        position = (rng or random).randrange(BUCKETS)
        return Pick(self.variant_of(position), position, False)


__all__ = ["BUCKETS", "Pick", "Split", "bucket"]
