"""The row sketches behind deduplication: exact keys, word 3-shingle hashes, MinHash signatures, LSH bands.

    keys, signatures = sketch_rows(texts)   # one 64-bit key and 126 MinHash values per row
    bands = bands_of(signatures)            # 42 LSH band keys per row

All of it is array passes over code points (see `tunewise.data.dedup` for how the pieces are used and
why these numbers); `normalize`, `shingles` and `jaccard` are the plain-Python definitions the
array code is held to.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Sequence

import numpy as np

NUM_PERM = 128
BANDS = 42
ROWS_PER_BAND = 3
SHINGLE_SIZE = 3
SEED = 42

_WORD = re.compile(r"\w+")


def normalize(text: str) -> str:
    """The text used for exact matching: lower case, runs of whitespace collapsed."""
    return " ".join(text.lower().split())


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


_NON_WORD = re.compile(r"\W")


_WORD_CHAR, _SPACE_CHAR = 1, 2


_char_table: list[np.ndarray] = []


def use_char_classes(table: np.ndarray) -> None:
    """Adopt a table built by `char_classes` in another process of the same Python (the sketching helper)."""
    _char_table[:] = [table]


def char_classes() -> np.ndarray:
    """A table over every code point: _WORD_CHAR for `\\w` characters (as `re` sees them), _SPACE_CHAR for
    whitespace (as `str.split` sees it), else 0. Built once per process (about 0.5 s) so that the bulk
    hashing below agrees with `shingles` and `normalize` character for character."""
    if _char_table:
        return _char_table[0]
    everything = "".join(map(chr, range(0x110000)))
    word = np.frombuffer(_NON_WORD.sub("\0", everything).encode("utf-32-le", "surrogatepass"), dtype=np.uint32) != 0
    classes = word.astype(np.uint8) * np.uint8(_WORD_CHAR)
    # re's \s and str.isspace share CPython's whitespace table; the regex scan is 10x faster than a loop.
    classes[[match.start() for match in re.finditer(r"\s", everything)]] = _SPACE_CHAR
    _char_table[:] = [classes]
    return classes


_POLY = np.uint64(0x100000001B3)  # odd, so invertible modulo 2**64
_POLY_INV = np.uint64(pow(0x100000001B3, -1, 2**64))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: spreads the bits of polynomial hashes before they are combined again."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


_power_tables: list[np.ndarray] = [np.ones(1, dtype=np.uint64), np.ones(1, dtype=np.uint64)]


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """_POLY**k and _POLY_INV**k for k = 0..n, cached and grown on demand (one table serves every block)."""
    if len(_power_tables[0]) <= n:
        size = max(n + 1, 2 * len(_power_tables[0]))
        for i, base in enumerate((_POLY, _POLY_INV)):
            table = np.empty(size, dtype=np.uint64)
            table[0], table[1:] = 1, base
            with np.errstate(over="ignore"):
                np.cumprod(table, out=table)
            _power_tables[i] = table
    return _power_tables[0], _power_tables[1]


def _prefix_sums(values: np.ndarray) -> np.ndarray:
    """Prefix sums of values[k] * _POLY**k (mod 2**64): any run's polynomial hash is then one subtraction."""
    powers, _ = _powers(len(values))
    prefix = np.zeros(len(values) + 1, dtype=np.uint64)
    np.cumsum(values.astype(np.uint64) * powers[: len(values)], out=prefix[1:])
    return prefix


def _run_hashes(prefix: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """One 64-bit hash per run values[start:end] (a polynomial hash mod 2**64, shifted to start at power 0,
    plus the run length, then mixed), from `_prefix_sums(values)`."""
    _, inverses = _powers(len(prefix))
    return _mix((prefix[ends] - prefix[starts]) * inverses[starts] + (ends - starts).astype(np.uint64))


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    edges = np.diff(mask.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


_EMPTY_SHINGLE = np.uint64(0x2545F4914F6CDD1D)

# Rows are hashed in blocks this size: the arrays stay in cache and are not page-faulted afresh each time
# (about 2x faster than one block of 50,000 rows on this machine).
HASH_BLOCK = 1_000


def _hash_block(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(texts)
    lowered = [t.lower() for t in texts]
    lengths = np.fromiter(map(len, lowered), dtype=np.int64, count=n)
    # "\n" between rows is neither a word character nor part of a whitespace-separated token.
    codes = np.frombuffer("\n".join(lowered).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    row_starts = np.zeros(n, dtype=np.int64)
    np.cumsum(lengths[:-1] + 1, out=row_starts[1:])

    # Exact keys: the sequence of whitespace-separated tokens of the lower-cased text (= `normalize`).
    classes = char_classes()[codes]
    tok_starts, tok_ends = _runs(classes != _SPACE_CHAR)
    prefix = _prefix_sums(codes)
    tokens = _run_hashes(prefix, tok_starts, tok_ends)
    tok_row = np.searchsorted(row_starts, tok_starts, side="right") - 1
    tok_bounds = np.searchsorted(tok_row, np.arange(n + 1))
    exact = _run_hashes(_prefix_sums(tokens), tok_bounds[:-1], tok_bounds[1:]).view(np.int64)

    # Word 3-shingles (= `shingles`): hashes of three consecutive `\w+` words of one row.
    starts, ends = _runs(classes == _WORD_CHAR)
    words = _run_hashes(prefix, starts, ends)
    row = np.searchsorted(row_starts, starts, side="right") - 1
    count = np.bincount(row, minlength=n)
    first = np.zeros(n, dtype=np.int64)
    np.cumsum(count[:-1], out=first[1:])
    per_row = np.maximum(count - 2, 1)  # a row of 0-2 words is one shingle
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(per_row, out=offsets[1:])
    next1 = np.zeros(len(words), dtype=np.uint64)
    next2 = np.zeros(len(words), dtype=np.uint64)
    same1 = row[1:] == row[:-1]
    same2 = row[2:] == row[:-2]
    next1[:-1][same1] = words[1:][same1]
    next2[:-2][same2] = words[2:][same2]
    hashed = _mix(words * np.uint64(0x9E3779B97F4A7C15) + next1 * np.uint64(0xC2B2AE3D27D4EB4F) + next2)
    rank = np.arange(len(words)) - first[row]
    take = np.zeros(len(words), dtype=bool)
    take[:-2] = same2
    take |= (rank == 0) & (count[row] < 3)
    flat = np.full(int(offsets[-1]), _EMPTY_SHINGLE, dtype=np.uint64)
    flat[(offsets[:-1][row] + rank)[take]] = hashed[take]
    return exact, flat, offsets


def hash_rows(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact keys and shingle hashes of many rows at once, in array passes instead of per-row Python.

    Returns `(exact, shingle_hashes, offsets)`: `exact[i]` is a signed 64-bit key of `normalize(texts[i])`;
    `shingle_hashes[offsets[i]:offsets[i + 1]]` are uint64 hashes of the shingles of `texts[i]` (the same
    set as `shingles(texts[i])`, one hash per occurrence; a row without words has one fixed hash, as its
    shingle set is `{""}` for the sketch). Hashes are deterministic across processes.
    """
    exact, flats, offsets = [], [], [np.zeros(1, dtype=np.int64)]
    with np.errstate(over="ignore"):  # uint64 wrap-around is the point of these hashes
        for start in range(0, len(texts), HASH_BLOCK):
            e, f, o = _hash_block(texts[start : start + HASH_BLOCK])
            exact.append(e)
            flats.append(f)
            offsets.append(o[1:] + offsets[-1][-1])
    if not exact:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64), np.zeros(1, dtype=np.int64)
    return np.concatenate(exact), np.concatenate(flats), np.concatenate(offsets)


def signatures_of(shingle_hashes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(rows, 126) uint32 MinHash values (128 permutations, the first 126 kept: 42 bands of 3) of rows given
    as flat shingle hashes and offsets (`hash_rows`)."""
    import rensa

    n = len(offsets) - 1
    out = np.empty((n, BANDS * ROWS_PER_BAND), dtype=np.uint32)
    # rensa sketches 2M shingles in under 0.1 s; reading its digests back (Python ints) is the slow part, and is
    # about 1.5x faster in blocks that stay in cache.
    for start in range(0, n, HASH_BLOCK):
        end = min(n, start + HASH_BLOCK)
        lo, hi = int(offsets[start]), int(offsets[end])
        matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(
            shingle_hashes[lo:hi], (offsets[start : end + 1] - lo).astype(np.uint64), NUM_PERM, SEED)
        values = array("I")  # array.extend takes Python ints 1.3x faster than np.fromiter does
        for row in matrix.to_rows():
            values.extend(row)
        out[start:end] = np.frombuffer(values, dtype=np.uint32).reshape(end - start, NUM_PERM)[:, : out.shape[1]]
    return out


def sketch_rows(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Exact keys and MinHash values (126 of 128) of rows: `hash_rows` once, then `signatures_of`."""
    keys, shingle_hashes, offsets = hash_rows(texts)
    return keys, signatures_of(shingle_hashes, offsets)


def bands_of(sig: np.ndarray) -> np.ndarray:
    """(n, BANDS) uint64 LSH band keys of MinHash signatures from `signatures_of`: the first two values of a
    band packed exactly, the third mixed in by an odd multiplier (a collision is a 2**-64 event)."""
    keys = np.empty((len(sig), BANDS), dtype=np.uint64)
    for start in range(0, len(sig), 20_000):  # in blocks: the uint64 temporaries stay in cache
        block = sig[start : start + 20_000]
        packed = (block[:, 0::ROWS_PER_BAND].astype(np.uint64) << np.uint64(32)) | block[:, 1::ROWS_PER_BAND]
        with np.errstate(over="ignore"):
            packed ^= block[:, 2::ROWS_PER_BAND].astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        keys[start : start + len(block)] = packed
    return keys


__all__ = ["BANDS", "NUM_PERM", "ROWS_PER_BAND", "SEED", "SHINGLE_SIZE", "bands_of", "char_classes", "hash_rows", "jaccard", "normalize", "shingles", "signatures_of", "sketch_rows", "use_char_classes"]
