"""Exact and near duplicates, and train/eval contamination, at a million rows.

The fine-tuning guide's rule is "near-duplicates (>40% overlap) cause overfitting". tunewise reads "overlap" as
the Jaccard similarity of the two rows' sets of word 3-shingles (lower-cased `\\w+` words, three
in a row), and calls two rows near duplicates when that Jaccard is at least 0.4. 3-shingles keep
word order, so two tickets that share the same vocabulary in a different order do not match, while
a ticket with a few words changed does (a 20-word ticket with 3 scattered substitutions keeps
Jaccard ~0.45). Rows shorter than three words use their whole word sequence as one shingle.

How it is found:
1. Hashing (`hash_rows`): rows are hashed a thousand at a time in numpy array passes over their code
   points, not per row in Python: a 64-bit key of the normalised text (lower case, whitespace
   collapsed) and one 64-bit hash per word 3-shingle (polynomial hashes from prefix sums, mixed).
   The character classes come from `re` and `str.isspace` themselves, so the result is the same as
   `normalize` and `shingles` (a property test holds them to it). 4x faster than building the
   shingle strings.
2. Exact duplicates: rows with equal keys. Only the first row of each exact group is sketched.
3. Near duplicates: a 128-permutation MinHash per row (`rensa`, Rust, from the flat shingle hashes),
   LSH with 42 bands of 3 values. That banding finds a pair at Jaccard 0.4 with probability 0.94
   (0.996 at 0.5), more than the 32x4 banding that balances false positives and negatives (0.56 at
   0.4), because candidate pairs are then decided by the MinHash estimate only where it is certain
   (8 standard deviations clear of the threshold) and otherwise by the exact Jaccard of the two
   shingle sets, so false positives cost time, never correctness.
4. Clusters: connected components over exact links and accepted near pairs.

126 MinHash values (4 bytes each) are kept per sketched row, never the shingles, so a million rows
need about 500 MB here. Steps 1 and 3's sketches live in `tunewise.data.minhash`; this module is the
index (`DedupIndex`), the verification and the clusters. `datasketch` is the reference implementation that `bench/audit.py` times
this against.

Example:
    >>> duplicate_clusters(["Reset my password", "reset my  PASSWORD", "Where is my parcel?"])
    [[0, 1]]
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tunewise.data.helper_process import HelperFailed, HelperProcess
from tunewise.data.minhash import (  # also re-exported: the sketches' public names used to live here
    BANDS, HASH_BLOCK, NUM_PERM, ROWS_PER_BAND, SEED, SHINGLE_SIZE, bands_of, char_classes, hash_rows, jaccard, normalize, shingles,
    sketch_rows,
)

DEFAULT_THRESHOLD = 0.4
# Buckets larger than this are linked as a star around their first row instead of all pairs.
_ALL_PAIRS_MAX_BUCKET = 16


@dataclass(frozen=True)
class ContaminationHit:
    """An eval row that (nearly) duplicates a training row: `score` is the exact Jaccard of 3-shingles."""

    train_index: int
    eval_index: int
    score: float
    kind: str  # "exact" | "near"


# A chunk this big is shared, block by block, with a helper process (its start-up, about 0.15 s, overlaps
# our own work on the first blocks).
PARALLEL_FROM_ROWS = 5_000
_SHARED_CHECKS_FROM = 1_000  # candidate pairs to verify: fewer are checked here, sending them would cost more


def _helper_task(task: str, *args):
    """What the helper process of a `DedupIndex` runs: sketch rows, pair up rows of some LSH bands, or verify
    candidate pairs (of the texts it is sent)."""
    if task == "sketch":
        return sketch_rows(*args)
    if task == "pairs":
        return _unique_pairs(_band_pairs(*args))
    if task == "jaccard":
        pairs, texts = args
        return pair_jaccard(pairs, texts, texts)
    raise ValueError(f"unknown task {task!r}")


def _usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# Candidate pairs whose MinHash estimate of Jaccard (126 values) is below this are not verified: at the
# 0.4 threshold that is 3.4 standard deviations below, so a true pair is dropped about 3 times in 10,000,
# while data that shares boilerplate (templates, signatures) yields millions of low-overlap candidates.
ESTIMATE_MARGIN = 0.15
# Candidate pairs whose estimate is at least threshold + this are accepted without the exact check: at the 0.4
# threshold an estimate of 0.75 from a pair of true Jaccard 0.4 is 95 equal values of 126 where 50 are expected,
# 8 standard deviations out (a chance below 10**-15). Most true duplicates are far above the threshold, so
# this skips most of the exact verification.
CERTAIN_MARGIN = 0.35


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
    With `parallel` (the default) and two or more CPUs, chunks of PARALLEL_FROM_ROWS rows or more are
    sketched half here, half in a helper process (`tunewise.data.helper_process`); `report` stops it.
    """

    threshold: float = DEFAULT_THRESHOLD
    # Sketch big chunks in a helper process too (see `helper_process`): about 2x faster on two idle cores.
    # Turn it off where the other cores are already busy (the audit of a big file counts tokens in a process).
    parallel: bool = True
    n_rows: int = 0
    _exact: list[np.ndarray] = field(default_factory=list)
    _first_of_key: dict[int, int] = field(default_factory=dict)
    _rep_rows: list[np.ndarray] = field(default_factory=list)
    _rep_sigs: list[np.ndarray] = field(default_factory=list)
    _exact_links: list[tuple[int, int]] = field(default_factory=list)
    _helper: HelperProcess | None = field(default=None, repr=False)

    def add(self, texts: Sequence[str]) -> None:
        keys, sigs = self._sketch(texts)
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
            self._rep_sigs.append(sigs if len(reps) == len(texts) else sigs[reps])
        self.n_rows += len(texts)

    def close(self) -> None:
        """Stop the helper process, if one was started (`report` and `contamination` do this)."""
        if self._helper is not None:
            self._helper.close()
            self._helper = None

    # -- internals ---------------------------------------------------------------------------------
    def _sketch(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """`sketch_rows(texts)`, with blocks shared between this process and a helper when that pays."""
        if self._helper is None and self.parallel and len(texts) >= PARALLEL_FROM_ROWS and _usable_cpus() > 1:
            try:  # the helper gets our code-point table: building its own would cost it 0.5 s
                self._helper = HelperProcess("tunewise.data.dedup:_helper_task", init="tunewise.data.minhash:use_char_classes",
                                             init_args=(char_classes(),))
            except HelperFailed:
                self.parallel = False
        helper = self._helper
        if helper is None or len(texts) < 2 * HASH_BLOCK:
            return sketch_rows(texts)
        # We take blocks from the front, the helper from the back (it starts up while we work), at most two at a
        # time. A block goes to the helper only while what is left for us takes longer than the helper's queue,
        # so both end together.
        done: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        front, back = 0, len(texts)
        given: deque = deque()  # (first row, end row, future) of the helper's jobs, oldest first
        try:
            while front < back or given:
                while helper.ready and len(given) < 2 and back - front - HASH_BLOCK >= (len(given) + 1) * HASH_BLOCK:
                    given.append((back - HASH_BLOCK, back, helper.submit("sketch", texts[back - HASH_BLOCK : back])))
                    back -= HASH_BLOCK
                if front < back:
                    end = min(back, front + HASH_BLOCK)
                    done[front] = sketch_rows(texts[front:end])
                    front = end
                while given and (front >= back or given[0][2].done()):
                    done[given[0][0]] = given[0][2].result()  # waits only when we have nothing left to do
                    given.popleft()
        except HelperFailed:
            # What the helper had not answered is sketched here: a result never depends on the helper.
            self.close()
            self.parallel = False
            for lo, hi in [(lo, hi) for lo, hi, _ in given] + ([(front, back)] if front < back else []):
                done[lo] = sketch_rows(texts[lo:hi])
        order = sorted(done)
        return (np.concatenate([done[k][0] for k in order]),
                np.concatenate([done[k][1] for k in order]))

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
        helper = self._ready_helper()
        theirs = BANDS // 2 if helper is not None and len(rows) >= PARALLEL_FROM_ROWS else 0  # the helper's bands
        future = helper.submit("pairs", np.ascontiguousarray(bands[:, :theirs]), rows) if theirs else None
        found = _band_pairs(bands[:, theirs:], rows)
        if future is not None:
            try:
                found.append(future.result())
            except HelperFailed:
                found += _band_pairs(bands[:, :theirs], rows)
        return _unique_pairs(found)

    def _ready_helper(self) -> HelperProcess | None:
        return self._helper if self._helper is not None and self._helper.ready else None

    def _verify(self, pairs: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """`pair_jaccard` of candidate pairs of `texts`, the second half in the helper if there is one."""
        helper = self._ready_helper()
        if helper is None or len(pairs) < _SHARED_CHECKS_FROM:
            return pair_jaccard(pairs, texts, texts)
        mine, theirs = pairs[: len(pairs) // 2], pairs[len(pairs) // 2 :]
        involved = np.unique(theirs)  # only these rows travel, renumbered
        future = helper.submit("jaccard", np.searchsorted(involved, theirs), [texts[i] for i in involved.tolist()])
        scores = pair_jaccard(mine, texts, texts)
        try:
            other = future.result()
        except HelperFailed:
            other = pair_jaccard(theirs, texts, texts)
        return np.concatenate([scores, other])

    def estimates(self, pairs: np.ndarray) -> np.ndarray:
        """MinHash estimates of the Jaccard of each candidate pair (the share of 126 equal values)."""
        rows, sigs = self.rep_rows(), self.rep_signatures()
        left, right = np.searchsorted(rows, pairs[:, 0]), np.searchsorted(rows, pairs[:, 1])
        equal = np.zeros(len(pairs), dtype=np.int64)
        for start in range(0, len(pairs), 8_192):  # small blocks: the gathered rows stay in cache (3x faster)
            block = slice(start, start + 8_192)
            equal[block] = np.count_nonzero(sigs[left[block]] == sigs[right[block]], axis=1)
        return equal / sigs.shape[1]

    def report(self, texts: Sequence[str], *, pair_scores: dict | None = None) -> DuplicateReport:
        """Verify candidate pairs against `texts` (the same rows, by index) and build the clusters."""
        try:
            pairs = self.candidate_pairs()
            estimates = self.estimates(pairs)
            # Only the undecided middle is verified exactly: an estimate this far above the threshold cannot come
            # from a pair below it (see CERTAIN_MARGIN), and one far below cannot come from a pair above it.
            certain = estimates >= self.threshold + CERTAIN_MARGIN
            check = ~certain & (estimates >= max(0.0, self.threshold - ESTIMATE_MARGIN))
            scores = np.where(certain, estimates, 0.0)
            scores[check] = self._verify(pairs[check], texts)
        finally:
            self.close()  # nothing more to share: the helper's memory and core go back
        return self._clusters(pairs, scores, pair_scores)

    def _clusters(self, pairs: np.ndarray, scores: np.ndarray, pair_scores: dict | None) -> DuplicateReport:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        edges: list[tuple[int, int]] = list(self._exact_links)
        verified = scores >= self.threshold
        accepted = list(map(tuple, pairs[verified].tolist()))
        edges += accepted
        if pair_scores is not None:  # exact Jaccard, or the MinHash estimate for pairs accepted on it
            pair_scores.update(zip(accepted, scores[verified].tolist()))
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
        self.close()
        hits: dict[tuple[int, int], ContaminationHit] = {}
        train_keys = self.exact_keys()
        members: dict[int, list[int]] = {}
        for first, row in self._exact_links:
            members.setdefault(first, []).append(row)
        eval_keys, eval_sigs = sketch_rows(eval_texts)
        for e, key in enumerate(eval_keys.tolist()):
            first = self._first_of_key.get(key)
            if first is None:
                continue
            for t in (first, *members.get(first, ())):
                hits[(t, e)] = ContaminationHit(t, e, 1.0, "exact")
        if not len(eval_texts) or not self.n_rows:
            return sorted(hits.values(), key=lambda h: (h.eval_index, h.train_index))
        rows, bands = self.rep_rows(), self.rep_bands()
        eval_bands = bands_of(eval_sigs)
        candidates: set[tuple[int, int]] = set()
        for band in range(BANDS):
            order = np.argsort(bands[:, band])
            sorted_keys = bands[order, band]
            lo = np.searchsorted(sorted_keys, eval_bands[:, band], side="left")
            hi = np.searchsorted(sorted_keys, eval_bands[:, band], side="right")
            for e in np.flatnonzero(hi > lo).tolist():
                for pos in range(lo[e], hi[e]):
                    candidates.add((int(rows[order[pos]]), e))
        pairs = np.asarray(sorted(c for c in candidates if c not in hits), dtype=np.int64).reshape(-1, 2)
        for (t, e), score in zip(pairs.tolist(), pair_jaccard(pairs, train_texts, eval_texts).tolist()):
            if score >= self.threshold:
                for row in (t, *members.get(t, ())):
                    hits.setdefault((row, e), ContaminationHit(row, e, round(score, 4), "near"))
        del train_keys
        return sorted(hits.values(), key=lambda h: (h.eval_index, h.train_index))


def _same_key_pairs(keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(k, 2) pairs of `ids` whose `keys` are equal: every pair in buckets of up to _ALL_PAIRS_MAX_BUCKET
    members, and in larger buckets a star around the first member plus a chain (all pairs of a 10,000-row
    boilerplate bucket would be 50 million candidates)."""
    order = np.argsort(keys)  # quicksort: 2x faster than stable here, and bucket order does not matter
    sorted_keys = keys[order]
    same = sorted_keys[1:] == sorted_keys[:-1]
    if not same.any():
        return np.zeros((0, 2), dtype=np.int64)
    bucket = np.zeros(len(keys), dtype=np.int64)
    np.cumsum(~same, out=bucket[1:])
    sizes = np.bincount(bucket)
    small = sizes[bucket] <= _ALL_PAIRS_MAX_BUCKET
    members = ids[order]
    found = []
    # Buckets are contiguous after the sort, so pairs d apart in one bucket are all pairs of that bucket;
    # only positions in multi-member small buckets take part (a few percent of the rows).
    pos = np.flatnonzero(small & (sizes[bucket] > 1))
    for d in range(1, _ALL_PAIRS_MAX_BUCKET):
        pos = pos[pos + d < len(keys)]
        pos = pos[bucket[pos + d] == bucket[pos]]  # a member d ahead implies one d - 1 ahead
        if not len(pos):
            break
        found.append(np.stack([members[pos], members[pos + d]], axis=1))
    large = np.flatnonzero(~small)
    if len(large):
        bucket_start = np.flatnonzero(np.concatenate(([True], ~same)))[bucket[large]]
        not_first = large != bucket_start
        later = large[not_first]
        found.append(np.stack([members[bucket_start[not_first]], members[later]], axis=1))
        found.append(np.stack([members[later - 1], members[later]], axis=1))
    return np.concatenate(found)


def _band_pairs(bands: np.ndarray, rows: np.ndarray) -> list[np.ndarray]:
    """`_same_key_pairs` of each band (column) of `bands`."""
    return [_same_key_pairs(bands[:, band], rows) for band in range(bands.shape[1])]


def _unique_pairs(found: list[np.ndarray]) -> np.ndarray:
    found = [f for f in found if len(f)]
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.sort(np.concatenate(found), axis=1)
    width = np.int64(pairs.max()) + 1  # one int64 key per pair: a 1-D unique is much faster than axis=0
    keys = np.unique(pairs[:, 0] * width + pairs[:, 1])
    return np.stack([keys // width, keys % width], axis=1)


def _shingle_sets(texts: Sequence[str], rows: np.ndarray) -> dict[int, set[int]]:
    _, shingle_hashes, offsets = hash_rows([texts[i] for i in rows.tolist()])
    values, bounds = shingle_hashes.tolist(), offsets.tolist()
    return {row: set(values[bounds[k] : bounds[k + 1]]) for k, row in enumerate(rows.tolist())}


def pair_jaccard(pairs: np.ndarray, left: Sequence[str], right: Sequence[str], *, block: int = 100_000) -> np.ndarray:
    """Jaccard of the 3-shingle sets of left[i] and right[j] for each (i, j) in `pairs`.

    Exact up to 64-bit hash collisions of shingles (about one in 10**17 per pair of distinct shingles): the
    shingle sets are compared as sets of `hash_rows` hashes, which is 4x cheaper than building string sets.
    """
    scores = np.zeros(len(pairs))
    for start in range(0, len(pairs), block):  # blocks bound the memory of the sets at a million rows
        chunk = pairs[start : start + block]
        left_sets = _shingle_sets(left, np.unique(chunk[:, 0]))
        right_sets = left_sets if left is right else {}
        missing = np.unique(chunk[:, 1]) if left is not right else np.setdiff1d(chunk[:, 1], chunk[:, 0])
        right_sets.update(_shingle_sets(right, missing))
        scores[start : start + len(chunk)] = [
            len(a & b) / len(a | b) for a, b in ((left_sets[i], right_sets[j]) for i, j in chunk.tolist())
        ]
    return scores


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


__all__ = [
    "BANDS",
    "NUM_PERM",
    "ROWS_PER_BAND",
    "SEED",
    "SHINGLE_SIZE",
    "ContaminationHit",
    "DedupIndex",
    "DuplicateReport",
    "contamination",
    "duplicate_clusters",
    "find_duplicates",
    "hash_rows",
    "jaccard",
    "normalize",
    "pair_jaccard",
    "shingles",
]
