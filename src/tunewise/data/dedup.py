"""Exact and near duplicates, and train/eval contamination, at a million rows.

The seed's rule is "near-duplicates (>40% overlap) cause overfitting". tunewise reads "overlap" as
the Jaccard similarity of the two rows' sets of word 3-shingles (lower-cased `\\w+` words, three
in a row), and calls two rows near duplicates when that Jaccard is at least 0.4. 3-shingles keep
word order, so two tickets that share the same vocabulary in a different order do not match, while
a ticket with a few words changed does (a 20-word ticket with 3 scattered substitutions keeps
Jaccard ~0.45). Rows shorter than three words use their whole word sequence as one shingle.

How it is found:
1. Exact duplicates: rows equal after lower-casing and collapsing whitespace (an 8-byte blake2b
   hash of the normalised text). Only the first row of each exact group is sketched.
2. Near duplicates: a 128-permutation MinHash per row (`rensa`, Rust, bulk digest matrices), LSH
   with 42 bands of 3 rows. That banding finds a pair at Jaccard 0.4 with probability 0.94 (0.996
   at 0.5), more than the 32x4 banding that balances false positives and negatives (0.56 at 0.4),
   because every candidate pair is then verified with the *exact* Jaccard of its shingle sets, so
   false positives cost time, never correctness.
3. Clusters: connected components (union-find) over exact links and verified near pairs.

Only 42 band hashes (8 bytes each) are kept per row, never the signatures or the shingles, so a
million rows need about 340 MB here. `datasketch` is the reference implementation that
`bench/audit.py` times this against.

Example:
    >>> duplicate_clusters(["Reset my password", "reset my  PASSWORD", "Where is my parcel?"])
    [[0, 1]]
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

NUM_PERM = 128
BANDS = 42
ROWS_PER_BAND = 3
SHINGLE_SIZE = 3
DEFAULT_THRESHOLD = 0.4
SEED = 42
# Buckets larger than this are linked as a star around their first row instead of all pairs.
_ALL_PAIRS_MAX_BUCKET = 16

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class ContaminationHit:
    """An eval row that (nearly) duplicates a training row: `score` is the exact Jaccard of 3-shingles."""

    train_index: int
    eval_index: int
    score: float
    kind: str  # "exact" | "near"


def normalize(text: str) -> str:
    """The text used for exact matching: lower case, runs of whitespace collapsed."""
    return " ".join(text.lower().split())


def exact_key(text: str) -> int:
    """A signed 64-bit hash of the normalised text (blake2b; stable across processes)."""
    digest = hashlib.blake2b(normalize(text).encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def shingles(text: str, size: int = SHINGLE_SIZE) -> set[str]:
    """The set of word `size`-shingles of a text (the whole word sequence when it is shorter)."""
    words = _WORD.findall(text.lower())
    if len(words) < size:
        return {" ".join(words)} if words else set()
    if size == SHINGLE_SIZE:  # zip of shifted lists: about 2x faster than slicing (same shingles)
        return set(map(" ".join, zip(words, words[1:], words[2:])))
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def jaccard(a: str | set[str], b: str | set[str]) -> float:
    """Exact Jaccard similarity of two texts' (or two shingle sets') word 3-shingles."""
    sa = shingles(a) if isinstance(a, str) else a
    sb = shingles(b) if isinstance(b, str) else b
    if not sa and not sb:
        return 1.0
    union = len(sa | sb)
    return len(sa & sb) / union if union else 0.0


_BAND_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9], dtype=np.uint64)


def signatures(texts: Sequence[str]) -> np.ndarray:
    """(len(texts), BANDS * ROWS_PER_BAND) uint32 MinHash values (128 permutations, the first 126 kept)."""
    import rensa

    if not texts:
        return np.zeros((0, BANDS * ROWS_PER_BAND), dtype=np.uint32)
    token_sets = [list(s) if s else [""] for s in map(shingles, texts)]  # MinHash is order-free: no sort
    matrix = rensa.RMinHash.digest_matrix_from_token_sets(token_sets, NUM_PERM, SEED)
    return np.asarray(matrix.to_rows(), dtype=np.uint32)[:, : BANDS * ROWS_PER_BAND]


def bands_of(sig: np.ndarray) -> np.ndarray:
    """(n, BANDS) uint64 LSH band keys of MinHash signatures from `signatures`."""
    keys = np.empty((len(sig), BANDS), dtype=np.uint64)
    for start in range(0, len(sig), 100_000):  # in blocks: the uint64 temporaries stay small
        block = sig[start : start + 100_000].astype(np.uint64).reshape(-1, BANDS, ROWS_PER_BAND)
        with np.errstate(over="ignore"):
            mixed = block * _BAND_MIX  # uint64 wrap-around is the point
            out = mixed[:, :, 0] ^ (mixed[:, :, 1] >> np.uint64(1)) ^ (mixed[:, :, 2] << np.uint64(1))
            out ^= np.arange(BANDS, dtype=np.uint64) * np.uint64(0xD6E8FEB86659FD93)
        keys[start : start + len(block)] = out
    return keys


def band_hashes(texts: Sequence[str]) -> np.ndarray:
    """(len(texts), BANDS) uint64 LSH band keys of the rows' 128-permutation MinHash signatures."""
    return bands_of(signatures(texts))


# Candidate pairs whose MinHash estimate of Jaccard (126 values) is below this are not verified: at the
# 0.4 threshold that is 3.4 standard deviations below, so a true pair is dropped about 3 times in 10,000,
# while data that shares boilerplate (templates, signatures) yields millions of low-overlap candidates.
ESTIMATE_MARGIN = 0.15


@dataclass
class DuplicateReport:
    """Clusters of row indices (each sorted, first row first) and what kind each is."""

    clusters: list[list[int]]
    kinds: list[str]  # "exact" when every member has the same normalised text, else "near"
    n_rows: int

    @property
    def exact_clusters(self) -> int:
        return sum(kind == "exact" for kind in self.kinds)

    @property
    def near_clusters(self) -> int:
        return sum(kind == "near" for kind in self.kinds)

    @property
    def rows_in_clusters(self) -> int:
        return sum(len(c) for c in self.clusters)

    @property
    def removable(self) -> int:
        """Rows that `clean --dedup` drops: all but the first of each cluster."""
        return self.rows_in_clusters - len(self.clusters)

    def keep_mask(self) -> np.ndarray:
        """True for the rows to keep (the first row of each cluster and every unclustered row)."""
        mask = np.ones(self.n_rows, dtype=bool)
        for cluster in self.clusters:
            mask[cluster[1:]] = False
        return mask


@dataclass
class DedupIndex:
    """Streaming duplicate finder: feed texts in chunks with `add`, then ask for `report()`.

    Keeps one exact key per row and band keys for the first row of each exact group; the texts
    themselves are only needed again, by index, to verify candidate pairs (`texts` argument).
    """

    threshold: float = DEFAULT_THRESHOLD
    n_rows: int = 0
    _exact: list[np.ndarray] = field(default_factory=list)
    _first_of_key: dict[int, int] = field(default_factory=dict)
    _rep_rows: list[np.ndarray] = field(default_factory=list)
    _rep_sigs: list[np.ndarray] = field(default_factory=list)
    _exact_links: list[tuple[int, int]] = field(default_factory=list)

    def add(self, texts: Sequence[str]) -> None:
        keys = np.fromiter((exact_key(t) for t in texts), dtype=np.int64, count=len(texts))
        reps: list[int] = []
        for offset, key in enumerate(keys.tolist()):
            row = self.n_rows + offset
            first = self._first_of_key.setdefault(key, row)
            if first == row:
                reps.append(offset)
            else:
                self._exact_links.append((first, row))
        self._exact.append(keys)
        if reps:
            self._rep_rows.append(np.asarray(reps, dtype=np.int64) + self.n_rows)
            self._rep_sigs.append(signatures([texts[i] for i in reps]))
        self.n_rows += len(texts)

    # -- internals ---------------------------------------------------------------------------------
    def exact_keys(self) -> np.ndarray:
        return np.concatenate(self._exact) if self._exact else np.zeros(0, dtype=np.int64)

    def rep_rows(self) -> np.ndarray:
        return np.concatenate(self._rep_rows) if self._rep_rows else np.zeros(0, dtype=np.int64)

    def rep_bands(self) -> np.ndarray:
        return bands_of(self.rep_signatures())

    def rep_signatures(self) -> np.ndarray:
        if len(self._rep_sigs) > 1:  # concatenate once, keep one array
            self._rep_sigs = [np.concatenate(self._rep_sigs)]
        return self._rep_sigs[0] if self._rep_sigs else np.zeros((0, BANDS * ROWS_PER_BAND), dtype=np.uint32)

    def candidate_pairs(self) -> np.ndarray:
        """(k, 2) unique row pairs (i < j) of representatives that share at least one LSH band."""
        rows, bands = self.rep_rows(), self.rep_bands()
        found = []
        for band in range(bands.shape[1]):
            order = np.argsort(bands[:, band], kind="stable")
            sorted_keys = bands[order, band]
            same = sorted_keys[1:] == sorted_keys[:-1]
            if not same.any():
                continue
            # Runs of equal keys: start positions and lengths.
            boundaries = np.flatnonzero(np.diff(np.concatenate(([0], same.astype(np.int8), [0]))))
            starts, ends = boundaries[::2], boundaries[1::2] + 1
            sizes = ends - starts
            pairs_of_two = starts[sizes == 2]  # the common case, done without a Python loop
            if len(pairs_of_two):
                found.append(np.stack([rows[order[pairs_of_two]], rows[order[pairs_of_two + 1]]], axis=1))
            for start, end in zip(starts[sizes > 2].tolist(), ends[sizes > 2].tolist()):
                members = rows[order[start:end]]
                if end - start <= _ALL_PAIRS_MAX_BUCKET:
                    i, j = np.triu_indices(end - start, k=1)
                    found.append(np.stack([members[i], members[j]], axis=1))
                else:
                    found.append(np.stack([np.full(end - start - 1, members[0]), members[1:]], axis=1))
                    found.append(np.stack([members[:-1], members[1:]], axis=1))
        if not found:
            return np.zeros((0, 2), dtype=np.int64)
        pairs = np.sort(np.concatenate(found), axis=1)
        return np.unique(pairs, axis=0)

    def plausible(self, pairs: np.ndarray) -> np.ndarray:
        """The candidate pairs whose MinHash estimate of Jaccard is at least threshold - ESTIMATE_MARGIN."""
        if not len(pairs):
            return pairs
        rows, sigs = self.rep_rows(), self.rep_signatures()
        floor = max(0.0, self.threshold - ESTIMATE_MARGIN)
        keep = np.zeros(len(pairs), dtype=bool)
        for start in range(0, len(pairs), 200_000):
            block = pairs[start : start + 200_000]
            same = sigs[np.searchsorted(rows, block[:, 0])] == sigs[np.searchsorted(rows, block[:, 1])]
            keep[start : start + len(block)] = same.mean(axis=1) >= floor
        return pairs[keep]

    def report(self, texts: Sequence[str], *, pair_scores: dict | None = None) -> DuplicateReport:
        """Verify candidate pairs against `texts` (the same rows, by index) and build the clusters."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        edges: list[tuple[int, int]] = list(self._exact_links)
        cache: dict[int, set[str]] = {}

        def sh(i: int) -> set[str]:
            got = cache.get(i)
            if got is None:
                got = cache[i] = shingles(texts[i])
                if len(cache) > 50_000:  # a shingle set is about 5 KB: the cache stays under 300 MB
                    cache.clear()
            return got

        for i, j in self.plausible(self.candidate_pairs()).tolist():
            score = jaccard(sh(i), sh(j))
            if score >= self.threshold:
                edges.append((i, j))
                if pair_scores is not None:
                    pair_scores[(i, j)] = score
        n = self.n_rows
        if not edges or n == 0:
            return DuplicateReport([], [], n)
        e = np.asarray(edges, dtype=np.int64)
        graph = coo_matrix((np.ones(len(e), dtype=np.int8), (e[:, 0], e[:, 1])), shape=(n, n))
        _, labels = connected_components(graph, directed=False)
        involved = np.unique(e)
        groups: dict[int, list[int]] = {}
        for row in involved.tolist():
            groups.setdefault(int(labels[row]), []).append(row)
        keys = self.exact_keys()
        clusters = sorted((sorted(m) for m in groups.values() if len(m) > 1), key=lambda c: c[0])
        kinds = ["exact" if len(set(keys[c].tolist())) == 1 else "near" for c in clusters]
        return DuplicateReport(clusters, kinds, n)

    def contamination(self, train_texts: Sequence[str], eval_texts: Sequence[str]) -> list[ContaminationHit]:
        """Eval rows that exactly or nearly duplicate an indexed training row."""
        hits: dict[tuple[int, int], ContaminationHit] = {}
        train_keys = self.exact_keys()
        members: dict[int, list[int]] = {}
        for first, row in self._exact_links:
            members.setdefault(first, []).append(row)
        eval_keys = np.fromiter((exact_key(t) for t in eval_texts), dtype=np.int64, count=len(eval_texts))
        for e, key in enumerate(eval_keys.tolist()):
            first = self._first_of_key.get(key)
            if first is None:
                continue
            for t in (first, *members.get(first, ())):
                hits[(t, e)] = ContaminationHit(t, e, 1.0, "exact")
        if not len(eval_texts) or not self.n_rows:
            return sorted(hits.values(), key=lambda h: (h.eval_index, h.train_index))
        rows, bands = self.rep_rows(), self.rep_bands()
        eval_bands = band_hashes(list(eval_texts))
        candidates: set[tuple[int, int]] = set()
        for band in range(BANDS):
            order = np.argsort(bands[:, band], kind="stable")
            sorted_keys = bands[order, band]
            lo = np.searchsorted(sorted_keys, eval_bands[:, band], side="left")
            hi = np.searchsorted(sorted_keys, eval_bands[:, band], side="right")
            for e in np.flatnonzero(hi > lo).tolist():
                for pos in range(lo[e], hi[e]):
                    candidates.add((int(rows[order[pos]]), e))
        eval_sh: dict[int, set[str]] = {}
        for t, e in sorted(candidates):
            if (t, e) in hits:
                continue
            if e not in eval_sh:
                eval_sh[e] = shingles(eval_texts[e])
            score = jaccard(shingles(train_texts[t]), eval_sh[e])
            if score >= self.threshold:
                for row in (t, *members.get(t, ())):
                    hits.setdefault((row, e), ContaminationHit(row, e, round(score, 4), "near"))
        del train_keys
        return sorted(hits.values(), key=lambda h: (h.eval_index, h.train_index))


def find_duplicates(texts: Sequence[str], threshold: float = DEFAULT_THRESHOLD, *, chunk_size: int = 20_000) -> DuplicateReport:
    """Exact and near-duplicate clusters of `texts`, with their kinds.

    Example: `find_duplicates(texts).removable` is how many rows `clean --dedup` would drop.
    """
    index = DedupIndex(threshold=threshold)
    for start in range(0, len(texts), chunk_size):
        index.add(texts[start : start + chunk_size])
    return index.report(texts)


def duplicate_clusters(texts: Sequence[str], threshold: float = DEFAULT_THRESHOLD) -> list[list[int]]:
    """Clusters (lists of row indices, first row first) of exact and near duplicates (Jaccard >= threshold).

    Example: `duplicate_clusters(["a b c d", "A  b c d", "x y z"])` returns `[[0, 1]]`.
    """
    return find_duplicates(texts, threshold).clusters


def contamination(
    train_texts: Sequence[str], eval_texts: Sequence[str], threshold: float = DEFAULT_THRESHOLD
) -> list[ContaminationHit]:
    """Every (train row, eval row) pair that is an exact or near duplicate, with its exact Jaccard score.

    Example: `contamination(train, eval)[0]` is `ContaminationHit(train_index=12, eval_index=3, score=0.71, kind='near')`.
    """
    index = DedupIndex(threshold=threshold)
    for start in range(0, len(train_texts), 20_000):
        index.add(train_texts[start : start + 20_000])
    return index.contamination(train_texts, eval_texts)


def iter_chunks(items: Iterable, size: int):
    """Yield lists of at most `size` items (helper for streaming callers)."""
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


__all__ = [
    "ContaminationHit",
    "DedupIndex",
    "DuplicateReport",
    "contamination",
    "duplicate_clusters",
    "find_duplicates",
    "jaccard",
    "normalize",
    "shingles",
]
