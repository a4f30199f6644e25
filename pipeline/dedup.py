"""Duplicates and benchmark contamination across many long texts, fast enough for 800k rows.

Three checks, each fed one batch of texts at a time (a pyarrow string array) and remembering
what it saw, so a whole dataset streams through in bounded memory:

- :class:`ExactDuplicates`: the same text up to whitespace (the same tokens in the same order).
- :class:`NearDuplicates`: MinHash LSH over shingles of ``ngram`` normalised tokens. One hash
  per shingle (one-permutation MinHash, Li, Owen & Zhang 2012, with empty bins filled by
  rotation, Shrivastava & Li 2014) instead of one per shingle *and* permutation as datasketch's
  ``MinHash.update`` does: the same collision probability (the Jaccard similarity) for about a
  hundredth of the work. The LSH bands and rows for a threshold are datasketch's
  (``MinHashLSH(threshold, num_perm).b/.r``). A row that shares a band with an earlier row is a
  near duplicate; like text-dedup, candidates are not re-verified.
- :class:`BenchmarkIndex`: n-gram decontamination. A text is contaminated when it shares a word
  n-gram with a benchmark problem (or, shorter than n words, equals one); words are lowercase
  runs of letters, digits and ``_``, as the ``generate`` stage always counted them.

Where the speed comes from: one compiled pass over a batch's UTF-8 bytes (numba,
:mod:`pipeline.dedup_scan`) cuts the texts at whitespace and hashes every token twice (as
written, and normalised), and a second builds the MinHash of each text from the normalised
hashes; what follows (band keys, lookups) is numpy over arrays of texts, in chunks of rows small
enough for numpy to reuse its memory. What is remembered is a sorted array of 64-bit keys with
the row that first had each (:class:`_KeyStore`): 16 bytes a key, one key a text for exact
duplicates and one per LSH band for near ones. Decontamination splits its (short) texts with
pyarrow and hashes the distinct tokens' words with numpy (FNV-1a, one array step per byte
position).

>>> near = NearDuplicates(threshold=0.8)
>>> near.check(["the cat sat on the mat today", "The cat sat on the mat today!", "a dog"]).tolist()
[-1, 0, -1]
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

U64 = np.uint64
_EMPTY = np.iinfo(np.uint64).max
_SHIFT32 = U64(32)
_FNV_OFFSET = U64(0xCBF29CE484222325)
_FNV_PRIME = U64(0x100000001B3)
# Odd multipliers that combine a run of token hashes into one; fixed, so hashes are the same in
# every process and run (a curation repeated gives the same version).
_MULT = np.random.default_rng(0x5EED).integers(1, 2**62, 1024, dtype=np.uint64) * U64(2) + U64(1)
_MULT32 = _MULT.astype(np.uint32)  # still odd
_NON_WORD = r"[^\p{L}\p{N}_]+"
_EDGE_PUNCTUATION = string.punctuation + "“”‘’«»…"
# Tokens longer than this are hashed one by one (BLAKE2b), not byte position by position.
LONG_TOKEN_BYTES = 64
# Texts hashed at a time: keeps numpy's temporaries small enough to be reused rather than
# mapped afresh (page faults cost more than the hashing on large batches).
CHUNK_ROWS = 1024


def stable_hash(data: bytes) -> int:
    """A 64-bit hash that is the same in every process (unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def _fmix(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser, in place: every input bit reaches every output bit."""
    h ^= h >> U64(33)
    h *= U64(0xFF51AFD7ED558CCD)
    h ^= h >> U64(33)
    h *= U64(0xC4CEB9FE1A85EC53)
    h ^= h >> U64(33)
    return h


def _strings(texts: Any) -> pa.Array:
    """A string array without nulls from an Arrow array, chunked array or list of str."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks else pa.array([], pa.string())
    elif not isinstance(texts, pa.Array):
        texts = pa.array(list(texts), pa.string())
    if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
        texts = pc.cast(texts, pa.string())
    return pc.fill_null(texts, "") if texts.null_count else texts


def _buffers(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets into data, data bytes) of a string array, honouring its slice offset."""
    _, offsets, data = strings.buffers()[:3]
    kind = np.int64 if pa.types.is_large_string(strings.type) else np.int32
    start = strings.offset
    offs = np.frombuffer(offsets, kind)[start : start + len(strings) + 1].astype(np.int64)
    raw = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    return offs, raw


def hash_strings(strings: Any) -> np.ndarray:
    """A stable 64-bit hash of each string, vectorised (FNV-1a over the bytes, then mixed).

    >>> h = hash_strings(["ab", "ba", "ab", ""])
    >>> bool(h[0] == h[2]) and len(set(h.tolist())) == 3
    True
    """
    offsets, data = _buffers(_strings(strings))
    starts, lengths = offsets[:-1], np.diff(offsets)
    out = np.empty(len(lengths), U64)
    long = np.flatnonzero(lengths > LONG_TOKEN_BYTES)
    for i in long.tolist():
        out[i] = stable_hash(data[offsets[i] : offsets[i + 1]].tobytes())
    order = np.flatnonzero(lengths <= LONG_TOKEN_BYTES)
    # Longest first; a stable sort of bytes is a radix sort in numpy.
    order = order[np.argsort((LONG_TOKEN_BYTES - lengths[order]).astype(np.uint8), kind="stable")]
    sorted_lengths, sorted_starts = lengths[order], starts[order]
    h = np.full(len(order), _FNV_OFFSET, U64)
    descending = -sorted_lengths
    for p in range(int(sorted_lengths[0]) if len(order) else 0):
        k = int(np.searchsorted(descending, -p, side="left"))  # strings longer than p
        head = h[:k]
        head ^= data[sorted_starts[:k] + p]
        head *= _FNV_PRIME
    h ^= sorted_lengths.astype(U64) << U64(56)
    out[order] = _fmix(h)
    return out


class Tokens:
    """A batch of texts cut at (ASCII) whitespace: two hashes per token, flat, in order (as
    written, uint64, for exact duplicates; lowercased with the punctuation around it stripped,
    uint32, for near ones), and where each text's tokens start and end in them. Both duplicate
    checks take one, so exact and near dedup of the same texts cut them once."""

    def __init__(self, raw: np.ndarray, units: np.ndarray, starts: Any, ends: Any) -> None:
        self.raw, self.units = raw, units
        self.starts, self.ends = np.asarray(starts, np.int64), np.asarray(ends, np.int64)

    @classmethod
    def of(cls, texts: Any) -> Tokens:
        if isinstance(texts, Tokens):
            return texts
        # Imported here, not at the top: numba takes about a second to import, which only the
        # processes that cut texts should pay (not every web process importing the curation).
        from pipeline import dedup_scan as scan

        offsets, data = _buffers(_strings(texts))
        text_offsets, raw, units, odd = scan.scan(
            data, offsets, LONG_TOKEN_BYTES, scan.PUNCTUATION, scan.LOWER
        )
        # What the compiled loop leaves to us: long and non-ASCII tokens.
        for k, a, b in odd[(odd[:, 3] & scan.LONG_RAW) != 0, :3].tolist():
            raw[k] = stable_hash(data[a:b].tobytes())
        redo = odd[(odd[:, 3] & (scan.NON_ASCII | scan.LONG_UNIT)) != 0]
        if len(redo):
            words = pa.array([data[a:b].tobytes() for _, a, b, _ in redo.tolist()], pa.binary())
            units[redo[:, 0]] = _unit_hashes(words.cast(pa.string())).astype(np.uint32)
        return cls(raw, units, text_offsets[:-1], text_offsets[1:])

    def __len__(self) -> int:
        return len(self.starts)

    def select(self, texts: np.ndarray) -> Tokens:
        """The tokens of the texts at positions ``texts``, without cutting them again."""
        return Tokens(self.raw, self.units, self.starts[texts], self.ends[texts])

    def chunks(self, rows: int = CHUNK_ROWS) -> Any:
        """``(first text, token positions, token offsets from 0)`` for every ``rows`` texts;
        the positions are a slice (a view of the token arrays) where the texts are adjacent."""
        for i in range(0, len(self), rows):
            starts, ends = self.starts[i : i + rows], self.ends[i : i + rows]
            lengths = ends - starts
            offsets = np.concatenate([[0], np.cumsum(lengths)])
            if np.array_equal(starts[1:], ends[:-1]):  # no text left out in between
                yield i, slice(int(starts[0]), int(ends[-1])), offsets
            else:
                yield i, np.arange(offsets[-1]) + np.repeat(starts - offsets[:-1], lengths), offsets


class _Split:
    """Texts cut at ASCII whitespace by pyarrow, as their distinct tokens and each token's
    index into them: decontamination splits each distinct token further into words."""

    def __init__(self, distinct: pa.Array, index: np.ndarray, offsets: np.ndarray) -> None:
        self.distinct, self.index, self.offsets = distinct, index, offsets

    @classmethod
    def of(cls, texts: Any) -> _Split:
        # Trimmed first: the split gives an empty token for whitespace at either end.
        lists = pc.ascii_split_whitespace(pc.ascii_trim_whitespace(_strings(texts)))
        offsets = lists.offsets.to_numpy().astype(np.int64)
        offsets -= offsets[0]
        encoded = pc.dictionary_encode(lists.flatten())
        return cls(encoded.dictionary, encoded.indices.to_numpy(zero_copy_only=False), offsets)

    def chunks(self, rows: int = CHUNK_ROWS) -> Any:
        """``(first text, token indices, token offsets from 0)`` for every ``rows`` texts."""
        for i in range(0, len(self.offsets) - 1, rows):
            offsets = self.offsets[i : i + rows + 1]
            yield i, self.index[offsets[0] : offsets[-1]], offsets - offsets[0]


def _unit_hashes(distinct: pa.Array) -> np.ndarray:
    # Near duplicates ignore case and the punctuation around a word.
    lower = pc.utf8_lower(distinct)
    trimmed = pc.utf8_trim(lower, characters=_EDGE_PUNCTUATION)
    return hash_strings(pc.if_else(pc.greater(pc.binary_length(trimmed), 0), trimmed, lower))


def _word_hashes(distinct: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The hashes of the words in each distinct token, flat, and how many each token has."""
    pieces = pc.split_pattern_regex(pc.utf8_lower(distinct), _NON_WORD)
    flat, parents = pieces.flatten(), pc.list_parent_indices(pieces)
    words = pc.greater(pc.binary_length(flat), 0)
    parents = parents.filter(words).to_numpy()
    counts = np.bincount(parents, minlength=len(distinct)).astype(np.int64)
    return hash_strings(flat.filter(words)), counts


def _expand(per_token: tuple[np.ndarray, np.ndarray], index: np.ndarray, offsets: np.ndarray):
    """Each token's words in order (``per_token`` as ``_word_hashes`` gives them), and each
    text's word offsets."""
    flat, counts = per_token
    first = np.cumsum(counts) - counts  # where each distinct token's words start in `flat`
    each = counts[index]
    ends = np.cumsum(each)
    total = int(ends[-1]) if len(ends) else 0
    at = np.arange(total) + np.repeat(first[index] - (ends - each), each)
    return flat[at], np.concatenate([[0], ends])[offsets]


def _runs(
    items: np.ndarray, offsets: np.ndarray, n: int, *, short: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every ``n`` consecutive items inside each text, and the text of each; of the
    items' width (32 or 64 bits).

    ``short``: a text with fewer than ``n`` items (but some) gives one hash of all of them.
    """
    mult = _MULT32 if items.dtype == np.uint32 else _MULT
    lengths = np.diff(offsets)
    m = len(items) - n + 1
    hashes, texts = [np.zeros(0, items.dtype)], [np.zeros(0, np.int32)]
    if m > 0:
        g = items[:m] * mult[0]
        scratch = np.empty_like(g)
        for j in range(1, n):
            g += np.multiply(items[j : j + m], mult[j], out=scratch)
        # A run that starts in the last n - 1 items of a text crosses into the next one.
        inside = np.ones(m, bool)
        if n > 1:
            crossing = (offsets[1:][:, None] - np.arange(1, n)).ravel()
            crossing = crossing[crossing >= np.repeat(offsets[:-1], n - 1)]
            inside[crossing[crossing < m]] = False
        hashes.append(g[inside])
        texts.append(
            np.repeat(np.arange(len(lengths), dtype=np.int32), np.maximum(lengths - n + 1, 0))
        )
    if short:
        for t in np.flatnonzero((lengths > 0) & (lengths < n)).tolist():
            part = items[offsets[t] : offsets[t + 1]]
            hashes.append(np.array([(part * mult[: len(part)]).sum(dtype=items.dtype)]))
            texts.append(np.array([t], np.int32))
    out = hashes[1] if len(hashes) == 2 else np.concatenate(hashes)  # a copy spared
    # The items are already mixed hashes, so their sum is uniform; fold the high bits down.
    out ^= out >> out.dtype.type(out.dtype.itemsize * 4)
    return out, texts[1] if len(texts) == 2 else np.concatenate(texts)


class _KeyStore:
    """64-bit key -> the row that first had it; sorted runs merged like a log-structured tree,
    so memory is the keys themselves (16 bytes each with their row) and lookups stay
    ``O(log n)`` per key in numpy."""

    def __init__(self) -> None:
        self.runs: list[tuple[np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return sum(len(keys) for keys, _ in self.runs)

    def first_seen(self, keys: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """For each key, the row that had it before (earlier in this call or in an earlier
        one), else -1; remembers the new keys. ``rows`` must increase along ``keys``."""
        order = np.argsort(keys, kind="stable")
        sorted_keys, sorted_rows = keys[order], rows[order]
        first = np.ones(len(keys), bool)
        first[1:] = sorted_keys[1:] != sorted_keys[:-1]
        group = np.cumsum(first) - 1
        unique_keys, unique_rows = sorted_keys[first], sorted_rows[first]
        stored = np.full(len(unique_keys), -1, np.int64)
        for run_keys, run_rows in self.runs:
            at = np.minimum(np.searchsorted(run_keys, unique_keys), len(run_keys) - 1)
            hit = run_keys[at] == unique_keys
            stored[hit] = run_rows[at[hit]]
        earlier = np.where(first, -1, unique_rows[group])
        found = stored[group]
        out = np.empty(len(keys), np.int64)
        out[order] = np.where(found >= 0, found, earlier)
        new = stored < 0
        if new.any():
            self._add(unique_keys[new], unique_rows[new].astype(np.int64))
        return out

    def _add(self, keys: np.ndarray, rows: np.ndarray) -> None:
        self.runs.append((keys, rows))
        while len(self.runs) > 1 and len(self.runs[-2][0]) <= 2 * len(self.runs[-1][0]):
            (k2, r2), (k1, r1) = self.runs.pop(), self.runs.pop()
            keys = np.concatenate([k1, k2])
            order = np.argsort(keys, kind="stable")
            self.runs.append((keys[order], np.concatenate([r1, r2])[order]))


def group_hashes(groups: Sequence[Any]) -> np.ndarray:
    """One 64-bit hash per group label (rows are only compared within their group)."""
    return hash_strings([str(g) for g in groups])


class _Checker:
    """What the duplicate checks share: numbering the rows and keeping groups apart."""

    def __init__(self) -> None:
        self.seen = _KeyStore()
        self.count = 0

    def _prepare(self, texts: Any, rows: Any, groups: Any) -> tuple[Tokens, np.ndarray, Any]:
        tokens = Tokens.of(texts)
        if rows is None:
            rows = np.arange(self.count, self.count + len(tokens), dtype=np.int64)
        self.count += len(tokens)
        if groups is not None and not isinstance(groups, np.ndarray):
            groups = group_hashes(groups)
        return tokens, np.asarray(rows, dtype=np.int64), groups

    @staticmethod
    def _grouped(keys: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
        if groups is None:
            return keys
        salt = _fmix(groups.astype(U64))
        return _fmix(keys ^ (salt if keys.ndim == 1 else salt[:, None]))


class ExactDuplicates(_Checker):
    """Texts equal up to whitespace (the same tokens in the same order, case kept).

    >>> ExactDuplicates().check(["a  b\\n c", "a b c", "a b C"]).tolist()
    [-1, 0, -1]
    """

    def check(self, texts: Any, rows: Any = None, groups: Any = None) -> np.ndarray:
        """For each text (or :class:`Tokens`), the earlier row it repeats, or -1. ``rows``
        number the texts (default: counting on from the last call) and must increase;
        ``groups`` limit the comparisons to texts with the same label (e.g. the prompt a
        completion answers)."""
        from pipeline import dedup_scan as scan  # numba: see Tokens.of

        tokens, rows, groups = self._prepare(texts, rows, groups)
        keys = scan.exact_keys(tokens.raw, tokens.starts, tokens.ends, _MULT[2])
        return self.seen.first_seen(self._grouped(keys, groups), rows)


class NearDuplicates(_Checker):
    """Texts whose shingle sets have a Jaccard similarity of about ``threshold`` or more.

    ``num_perm`` is the MinHash length (bins), ``ngram`` the shingle size in tokens. A token is
    a whitespace-separated piece, lowercased, with the punctuation around it stripped. A text
    is reported with the earliest row it shares an LSH band with.
    """

    def __init__(self, threshold: float = 0.8, num_perm: int = 128, ngram: int = 5) -> None:
        from datasketch import MinHashLSH

        super().__init__()
        if not 0 < threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        if not 2 <= num_perm <= len(_MULT) or not 1 <= ngram <= len(_MULT):
            raise ValueError(f"num_perm must be 2..{len(_MULT)}, ngram 1..{len(_MULT)}")
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self.bands, self.band_rows = lsh.b, lsh.r
        self.num_perm, self.ngram = num_perm, ngram
        self._band_salt = _fmix(np.arange(1, self.bands + 1, dtype=U64) * _MULT[-1])

    def check(self, texts: Any, rows: Any = None, groups: Any = None) -> np.ndarray:
        """For each text (or :class:`Tokens`), the earliest row it shares an LSH band with, or
        -1 (``rows`` and ``groups`` as for :meth:`ExactDuplicates.check`)."""
        tokens, rows, groups = self._prepare(texts, rows, groups)
        out = [np.zeros(0, np.int64)]
        for first, sig in self._signatures(tokens):
            end = first + len(sig)
            keys = self._grouped(self.band_keys(sig), None if groups is None else groups[first:end])
            out.append(self._earlier(keys, rows[first:end]))
        return np.concatenate(out)

    def signatures(self, texts: Any) -> np.ndarray:
        """The MinHash of each text, shape ``(len(texts), num_perm)``: 32-bit minima in uint64;
        an empty bin takes the next filled bin's value plus its distance times 2**32."""
        parts = [sig for _, sig in self._signatures(Tokens.of(texts))]
        return np.concatenate(parts) if parts else np.zeros((0, self.num_perm), U64)

    def _signatures(self, tokens: Tokens) -> Any:
        # 32-bit shingle hashes: MinHash compares minima within a bin, where a chance
        # collision of two of a text's ~1,000 shingles (about 2**-22) changes nothing.
        from pipeline.dedup_scan import minhash  # see Tokens.of

        for first, index, offsets in tokens.chunks():
            units = tokens.units[index]
            sig = minhash(units, offsets, self.ngram, self.num_perm, _MULT32)
            yield first, self._densify(sig)

    @staticmethod
    def _densify(sig: np.ndarray) -> np.ndarray:
        todo = np.flatnonzero((sig == _EMPTY).any(axis=1))
        if not len(todo):
            return sig
        k = sig.shape[1]
        twice = np.concatenate([sig[todo], sig[todo]], axis=1)
        column = np.where(twice != _EMPTY, np.arange(2 * k), 2 * k)
        donor = np.minimum.accumulate(column[:, ::-1], axis=1)[:, ::-1][:, :k]
        distance = (donor - np.arange(k)).astype(U64)
        filled = np.take_along_axis(twice, np.minimum(donor, 2 * k - 1), axis=1)
        filled += distance << _SHIFT32
        filled[donor >= 2 * k] = _EMPTY  # no shingle at all: empty texts match each other
        sig[todo] = filled
        return sig

    def band_keys(self, sig: np.ndarray) -> np.ndarray:
        """One 64-bit key per LSH band, shape ``(texts, bands)``."""
        b, r = self.bands, self.band_rows
        parts = sig[:, : b * r].reshape(len(sig), b, r) * _MULT[:r]
        return _fmix(parts.sum(axis=2, dtype=U64) + self._band_salt)

    def _earlier(self, keys: np.ndarray, rows: np.ndarray) -> np.ndarray:
        earlier = self.seen.first_seen(keys.ravel(), np.repeat(rows, self.bands))
        earlier = earlier.reshape(len(rows), self.bands)
        none = np.iinfo(np.int64).max
        earliest = np.where(earlier >= 0, earlier, none).min(axis=1)
        return np.where(earliest == none, -1, earliest)


def find_duplicates(
    texts: Any,
    *,
    mode: str = "exact",
    groups: Sequence[Any] | None = None,
    threshold: float = 0.9,
    ngram: int = 3,
) -> list[int]:
    """For each text, the index of an earlier text it duplicates (``mode`` exact or near), or
    -1; only texts of the same group are compared when ``groups`` are given.

    >>> find_duplicates(["x = 1", "x  = 1", "x = 1", "x = 2"], groups=[0, 0, 1, 0])
    [-1, 0, -1, -1]
    """
    checker = ExactDuplicates() if mode == "exact" else NearDuplicates(threshold, ngram=ngram)
    return checker.check(texts, groups=groups).tolist()


def _words(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The hashes of every word of every text, flat, and each text's word offsets."""
    split = _Split.of(texts)
    return _expand(_word_hashes(split.distinct), split.index, split.offsets)


class BenchmarkIndex:
    """The word n-grams of benchmark problems, to find texts that overlap them.

    ``benchmarks`` are presets or files as ``pipeline.data.load_benchmark`` reads them.
    """

    def __init__(self, benchmarks: Sequence[str], n: int = 8) -> None:
        from pipeline.data import load_benchmark

        if not 1 <= n <= len(_MULT):
            raise ValueError(f"n must be 1..{len(_MULT)}")
        self.n = n
        self.problems: list[tuple[str, int, str]] = []
        for bench in benchmarks:
            for i, problem in enumerate(load_benchmark(bench)["problem"]):
                self.problems.append((bench, i, str(problem)))
        words, offsets = _words(pa.array([p for _, _, p in self.problems], pa.string()))
        grams, owner = _runs(words, offsets, n, short=False)
        self.grams, first = np.unique(grams, return_index=True)
        self.owner = owner[first]
        # A problem shorter than n words has no n-gram: it can only be matched whole.
        self.whole: dict[tuple, int] = {}
        for i in np.flatnonzero(np.diff(offsets) < n).tolist():
            self.whole.setdefault(tuple(words[offsets[i] : offsets[i + 1]].tolist()), i)

    def __len__(self) -> int:
        return len(self.grams)

    def check(self, texts: Any) -> list[int | None]:
        """For each text, the index (into ``problems``) of a benchmark problem it overlaps."""
        texts = _strings(texts)
        split = _Split.of(texts)
        per_token = _word_hashes(split.distinct)
        hits: list[int | None] = [None] * len(texts)
        for first, index, token_offsets in split.chunks():
            words, offsets = _expand(per_token, index, token_offsets)
            grams, text_of = _runs(words, offsets, self.n, short=False)
            if len(self.grams) and len(grams):
                order = np.argsort(grams)  # sorted needles: searchsorted walks memory in order
                grams, text_of = grams[order], text_of[order]
                at = np.minimum(np.searchsorted(self.grams, grams), len(self.grams) - 1)
                hit = self.grams[at] == grams
                hit_texts, where = np.unique(text_of[hit], return_index=True)
                owners = self.owner[at[hit]][where].tolist()
                for t, owner in zip(hit_texts.tolist(), owners, strict=True):
                    hits[first + t] = owner
            if self.whole:  # only a text shorter than n words can equal a short problem
                for t in np.flatnonzero(np.diff(offsets) < self.n).tolist():
                    found = tuple(words[offsets[t] : offsets[t + 1]].tolist())
                    hits[first + t] = self.whole.get(found) if found else None
        return hits

    def describe(self, index: int) -> str:
        """``math500 problem 17 ("Convert the point…")``."""
        bench, i, problem = self.problems[index]
        short = " ".join(problem.split())
        short = short if len(short) <= 60 else short[:59] + "…"
        return f'{bench} problem {i} ("{short}")'
