"""SynthCaps: the built-in, offline, procedurally generated stand-in for Clotho and WavCaps.

See ``generate.generate``; ``events``, ``scenes`` and ``captions`` hold the vocabulary, the
scene sampler and the caption writer.
"""

from aacbatch.data.synthcaps.generate import ClipRecord, SynthSummary, generate

__all__ = ["ClipRecord", "SynthSummary", "generate"]
