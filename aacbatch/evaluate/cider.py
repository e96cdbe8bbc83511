"""CIDEr-D, vectorised, equal to pycocoevalcap's ``Cider`` (which is CIDEr-D) to floating-point noise.

pycocoevalcap walks Python dicts of n-gram tuples for every (candidate, reference) pair, which
takes about half a second for a Clotho evaluation split. Here every sentence becomes a row of
one sparse n-gram count matrix and the whole metric is a handful of sparse/dense array
operations. Definitions, including pycocoevalcap's quirks, which published numbers depend on:

* sentences are split on whitespace (``str.split``), n-grams for n = 1..4;
* document frequency ``df(g)`` = number of *items* whose references contain ``g``, counted
  over the evaluated set only; weight ``w(g) = log(N_items) - log(max(1, df(g)))``;
* per order n, the clipped cosine ``sum_g min(c_g, r_g) r_g w_g^2 / (|c|_n |r|_n)``, left at 0
  when either norm is 0;
* Gaussian length penalty ``exp(-(l_c - l_r)^2 / (2 sigma^2))`` where a sentence's "length" is
  its number of *bigrams* (``max(words - 1, 0)``): pycocoevalcap counts lengths at n-gram index
  1, i.e. bigrams. Differences of lengths agree with word counts except when a side is empty;
* item score = 10 x mean over orders of the per-reference sum / number of references; corpus
  score = mean over items.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import numpy as np
import scipy.sparse as sp


class CiderD:
    """CIDEr-D with pycocoevalcap's defaults (n = 4, sigma = 6)."""

    def __init__(self, n: int = 4, sigma: float = 6.0) -> None:
        self.n = n
        self.sigma = sigma

    def compute(self, candidates: Sequence[str], references: Sequence[Sequence[str]]) -> tuple[float, np.ndarray]:
        """(corpus score, per-item scores) for tokenised candidates and their tokenised references."""
        n_items = len(candidates)
        n_refs = np.array([len(refs) for refs in references], dtype=np.int64)
        owner = np.repeat(np.arange(n_items), n_refs)  # item of each reference
        sentences = [*candidates, *(ref for refs in references for ref in refs)]
        counts, order, n_words = self._ngram_counts(sentences)
        cand, ref = counts[:n_items], counts[n_items:]

        weight2 = self._weights(ref, owner, n_items) ** 2
        cand_norm = np.sqrt(self._sum_by_order(cand, cand.data ** 2 * weight2[cand.indices], order))
        ref_norm = np.sqrt(self._sum_by_order(ref, ref.data ** 2 * weight2[ref.indices], order))
        clipped = cand[owner].minimum(ref).multiply(ref).tocsr()
        overlap = self._sum_by_order(clipped, clipped.data * weight2[clipped.indices], order)
        norms = cand_norm[owner] * ref_norm
        cosine = np.divide(overlap, norms, out=overlap.copy(), where=norms != 0)

        length = np.maximum(n_words - 1, 0) if self.n >= 2 else np.zeros_like(n_words)
        delta = (length[:n_items][owner] - length[n_items:]).astype(np.float64)
        cosine *= np.exp(-(delta ** 2) / (2 * self.sigma ** 2))[:, None]

        per_item = np.add.reduceat(cosine, np.cumsum(n_refs) - n_refs, axis=0).mean(axis=1) / n_refs * 10.0
        return float(per_item.mean()), per_item

    def _ngram_counts(self, sentences: list[str]) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
        """Sentence x n-gram count matrix, the order (0-based) of each n-gram column, and word counts.

        Words get integer ids; an n-gram's id is the dense rank of ``(id of its (n-1)-gram prefix,
        id of its last word)``, so all orders are built with a few ``np.unique`` calls.
        """
        words = [sentence.split() for sentence in sentences]
        n_words = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        tokens = list(chain.from_iterable(words))
        vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
        flat = np.fromiter(map(vocab.__getitem__, tokens), dtype=np.int64, count=len(tokens))
        sentence_of = np.repeat(np.arange(len(sentences)), n_words)
        room = np.repeat(np.cumsum(n_words), n_words) - np.arange(flat.size)  # words from here to sentence end

        rows, cols, orders = [], [], []
        prefix, n_grams = flat, 0
        for k in range(self.n):
            starts = np.flatnonzero(room > k)
            codes = prefix[starts] * max(len(vocab), 1) + flat[starts + k] if k else flat[starts]
            unique, ids = np.unique(codes, return_inverse=True)
            rows.append(sentence_of[starts])
            cols.append(ids + n_grams)
            orders.append(np.full(unique.size, k))
            prefix = np.zeros_like(flat)
            prefix[starts] = ids
            n_grams += unique.size
        counts = sp.csr_matrix((np.ones(sum(r.size for r in rows)), (np.concatenate(rows), np.concatenate(cols))),
                               shape=(len(sentences), n_grams))  # duplicate (row, col) pairs add up
        return counts, np.concatenate(orders), n_words

    @staticmethod
    def _weights(ref: sp.csr_matrix, owner: np.ndarray, n_items: int) -> np.ndarray:
        """Per n-gram ``log(N_items) - log(max(1, df))``, df counted over items' reference sets."""
        ref_rows = np.repeat(np.arange(ref.shape[0]), np.diff(ref.indptr))
        present = sp.csr_matrix((np.ones(ref.nnz), (owner[ref_rows], ref.indices)), shape=(n_items, ref.shape[1]))
        df = np.bincount(present.indices, minlength=ref.shape[1])
        return np.log(float(n_items)) - np.log(np.maximum(df, 1.0))

    def _sum_by_order(self, matrix: sp.csr_matrix, values: np.ndarray, order: np.ndarray) -> np.ndarray:
        """(rows, n) sums of ``values`` (one per stored entry of ``matrix``) grouped by n-gram order."""
        rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
        sums = np.bincount(rows * self.n + order[matrix.indices], weights=values, minlength=matrix.shape[0] * self.n)
        return sums.reshape(matrix.shape[0], self.n)
