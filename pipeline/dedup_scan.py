"""One pass over a batch of texts' UTF-8 bytes: cut at ASCII whitespace, hash every token.

The duplicate checks of :mod:`pipeline.dedup` need, for each token of each text, a hash of the
token as written (exact duplicates) and a hash of it lowercased with the punctuation around it
stripped (near duplicates). Cutting ~1.3M tokens a batch with pyarrow (split, then a dictionary
of the distinct tokens) cost more than everything else the checks do; numba compiles this loop
once (cached on disk), and it reads each byte once.

The hashes are those :func:`pipeline.dedup.hash_strings` gives the token's text (FNV-1a over the
bytes, the length in the top byte, MurmurHash3's finaliser), so the checks decide exactly as
when the tokens were hashed one distinct string at a time. What the loop leaves to the caller,
flagged per token: tokens with non-ASCII bytes (Unicode lowercasing and punctuation) and tokens
longer than ``LONG_TOKEN_BYTES`` (hashed with BLAKE2b); both are rare in practice.
"""

from __future__ import annotations

import string

import numba
import numpy as np

NON_ASCII = 1  # the token has a byte >= 0x80: its near-duplicate hash is the caller's
LONG_RAW = 2  # the token is longer than LONG_TOKEN_BYTES: its exact hash is the caller's
LONG_UNIT = 4  # the same for its lowercased, stripped form

PUNCTUATION = np.zeros(256, np.bool_)
PUNCTUATION[[ord(c) for c in string.punctuation]] = True
LOWER = np.arange(256, dtype=np.uint8)
LOWER[ord("A") : ord("Z") + 1] += 32

EMPTY = np.iinfo(np.uint64).max
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@numba.njit(cache=True, nogil=True, inline="always")
def _is_space(c: np.uint8) -> bool:
    return c == 32 or (c >= 9 and c <= 13)


@numba.njit(cache=True, nogil=True, inline="always")
def _fmix(h: np.uint64) -> np.uint64:
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


@numba.njit(cache=True, nogil=True)
def scan(data, offsets, long_bytes, punctuation, lower):  # noqa: ANN001, ANN201 (numba)
    """``(text_offsets, raw, units, odd)``: where each text's tokens start in the token arrays
    (a blank text has one empty token, as pyarrow's split gives it), each token's hash as
    written (uint64) and the low 32 bits of the hash of its normalised form, and, for the rare
    tokens flagged ``NON_ASCII``/``LONG_*`` only, rows of (token, start byte, end byte, flags).
    Nothing is written per token beyond the two hashes: fresh pages cost more than hashing."""
    n_texts = len(offsets) - 1
    # At most one token per two bytes, or one per text; pages never written stay unmapped.
    size = (offsets[n_texts] - offsets[0] + 1) // 2 + n_texts
    text_offsets = np.empty(n_texts + 1, np.int64)
    raw = np.empty(size, np.uint64)
    units = np.empty(size, np.uint32)
    odd = np.empty((size, 4), np.int64)  # token, start, end, flags: only the rare ones written
    n_odd = 0
    k = 0
    for t in range(n_texts):
        text_offsets[t] = k
        i, end = offsets[t], offsets[t + 1]
        while i < end:
            if _is_space(data[i]):
                i += 1
                continue
            s = i
            h = _FNV_OFFSET
            high = np.uint8(0)
            upper = False
            while i < end and not _is_space(data[i]):
                c = data[i]
                high |= c
                upper = upper or (c >= 65 and c <= 90)
                h = (h ^ np.uint64(c)) * _FNV_PRIME
                i += 1
            e = i
            raw[k] = _fmix(h ^ (np.uint64(e - s) << np.uint64(56)))
            flag = NON_ASCII if high >= 128 else 0
            if e - s > long_bytes:
                flag |= LONG_RAW
            if not upper and not punctuation[data[s]] and not punctuation[data[e - 1]]:
                units[k] = np.uint32(raw[k] & np.uint64(0xFFFFFFFF))  # already normal
                if flag:
                    odd[n_odd, 0], odd[n_odd, 1], odd[n_odd, 2] = k, s, e
                    odd[n_odd, 3] = flag | (LONG_UNIT if flag & LONG_RAW else 0)
                    n_odd += 1
                k += 1
                continue
            # Near duplicates ignore case and the punctuation around a word (a token that is
            # all punctuation stays whole).
            a, b = s, e
            while a < b and punctuation[data[a]]:
                a += 1
            if a == b:
                a = s
            else:
                while punctuation[data[b - 1]]:
                    b -= 1
            h = _FNV_OFFSET
            for j in range(a, b):
                h = (h ^ np.uint64(lower[data[j]])) * _FNV_PRIME
            h = _fmix(h ^ (np.uint64(b - a) << np.uint64(56)))
            units[k] = np.uint32(h & np.uint64(0xFFFFFFFF))
            flag |= LONG_UNIT if b - a > long_bytes else 0
            if flag:
                odd[n_odd, 0], odd[n_odd, 1], odd[n_odd, 2], odd[n_odd, 3] = k, s, e, flag
                n_odd += 1
            k += 1
        if k == text_offsets[t]:  # as pyarrow's split: a blank text is one empty token
            raw[k] = _fmix(_FNV_OFFSET)
            units[k] = np.uint32(raw[k] & np.uint64(0xFFFFFFFF))
            k += 1
    text_offsets[n_texts] = k
    return text_offsets, raw[:k], units[:k], odd[:n_odd]


@numba.njit(cache=True, nogil=True)
def exact_keys(raw, starts, ends, length_mult):  # noqa: ANN001, ANN201 (numba)
    """One 64-bit key per text (tokens ``raw[starts[t]:ends[t]]``) that changes with any token
    or its place: from the sum of its token hashes and their sum weighted by place (0, 1, ...),
    and its length times ``length_mult``, mixed (wrapping uint64 arithmetic throughout). The
    hashes are random 64-bit values, so different texts agree only by chance (2**-64)."""
    n_texts = len(starts)
    keys = np.empty(n_texts, np.uint64)
    for t in range(n_texts):
        plain = np.uint64(0)
        placed = np.uint64(0)
        place = np.uint64(0)
        for k in range(starts[t], ends[t]):
            h = raw[k]
            plain += h
            placed += h * place
            place += np.uint64(1)
        keys[t] = _fmix(_fmix(plain) ^ placed ^ (place * length_mult))
    return keys


@numba.njit(cache=True, nogil=True)
def minhash(units, offsets, ngram, num_perm, mult):  # noqa: ANN001, ANN201 (numba)
    """One-permutation MinHash of each text (``offsets`` into ``units``), shape
    ``(texts, num_perm)``, empty bins ``EMPTY``: the shingle of ``ngram`` consecutive units is
    ``sum(unit * mult[j])`` (uint32, a text shorter than ``ngram`` but not empty gives one of
    all its units), its high half folded onto its low; its top bits pick the bin."""
    n_texts = len(offsets) - 1
    sig = np.full((n_texts, num_perm), EMPTY, np.uint64)
    power_of_two = num_perm & (num_perm - 1) == 0
    shift = np.uint64(33 - _bit_length(num_perm))
    low = np.uint64(0xFFFFFFFF)
    for t in range(n_texts):
        a, b = offsets[t], offsets[t + 1]
        n = b - a
        if n == 0:
            continue
        width = ngram if n >= ngram else n
        for i in range(a, b - width + 1):
            g = np.uint64(0)  # uint32 arithmetic, kept in 64 bits and cut back
            for j in range(width):
                g = (g + np.uint64(units[i + j]) * np.uint64(mult[j])) & low
            g ^= g >> np.uint64(16)
            col = g >> shift if power_of_two else (g * np.uint64(num_perm)) >> np.uint64(32)
            if g < sig[t, col]:
                sig[t, col] = g
    return sig


@numba.njit(cache=True, nogil=True, inline="always")
def _bit_length(x: int) -> int:
    n = 0
    while x:
        x >>= 1
        n += 1
    return n
