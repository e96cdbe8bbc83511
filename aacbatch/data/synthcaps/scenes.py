"""SynthCaps scenes: which events a clip holds, where they sit in time and how loud they are.

A scene has one or two *salient* events (the ones captions name, with their order, counts and
loudness), zero or more quiet *extra* foreground events and zero or more continuous
background *beds*. Extras and beds are in the clip's tags but never in its captions; since
the same event types are salient in other clips, an encoder trained only on captions is
free to ignore exactly the information a tagging teacher keeps (the CLAP-TAG argument).

Timing is built so that the caption words stay true: in a "sequence" the first event ends
before the second starts; in an "overlap" the shorter event happens inside the span of a
sustained one ("while", "as").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from aacbatch.data.synthcaps.events import EVENTS, EventSpec, render_event


@dataclass(frozen=True)
class SceneProfile:
    """Scene statistics; the pretraining profile is busier, noisier and less level-stable."""

    salient: tuple[float, float]               # P(one salient event), P(two)
    extras: tuple[float, ...]                  # P(0), P(1), ... unmentioned foreground events
    beds: tuple[float, ...]                    # P(0), P(1), ... background beds
    levels: tuple[float, float, float]         # P(loud), P(normal), P(quiet) of a salient event
    extra_db: tuple[float, float]              # extras, relative to the quietest salient event
    bed_db: tuple[float, float]                # beds, relative to the quietest salient event
    jitter_db: float                           # extra random gain on every event
    peak: tuple[float, float]                  # final peak level range


TARGET = SceneProfile(salient=(0.45, 0.55), extras=(0.55, 0.35, 0.10), beds=(0.25, 0.75),
                      levels=(0.2, 0.6, 0.2), extra_db=(-18.0, -10.0), bed_db=(-22.0, -12.0),
                      jitter_db=1.0, peak=(0.6, 0.95))
PRETRAIN = SceneProfile(salient=(0.35, 0.65), extras=(0.3, 0.4, 0.3), beds=(0.05, 0.65, 0.3),
                        levels=(0.25, 0.45, 0.3), extra_db=(-14.0, -4.0), bed_db=(-18.0, -6.0),
                        jitter_db=3.0, peak=(0.3, 0.95))

LEVEL_DB = {"loud": 6.0, "normal": 0.0, "quiet": -9.0}
_DISTANCE_LOWPASS_HZ = 2500.0  # a "quiet" salient event is also dulled, i.e. distant


@dataclass(frozen=True)
class PlacedEvent:
    spec: EventSpec
    role: str              # "salient", "extra" or "background"
    onset: int             # samples
    audio: np.ndarray
    gain_db: float
    level: str             # "loud", "normal" or "quiet" (extras and beds: "quiet")
    count: int

    @property
    def end(self) -> int:
        return self.onset + len(self.audio)


@dataclass(frozen=True)
class Scene:
    n_samples: int
    sample_rate: int
    events: tuple[PlacedEvent, ...]  # salient ones first, in caption order
    relation: str          # "single", "sequence" or "overlap"
    peak: float

    @property
    def salient(self) -> tuple[PlacedEvent, ...]:
        """Salient events in caption order: by onset, or the sustained one first on overlap."""
        return tuple(e for e in self.events if e.role == "salient")

    @property
    def beds(self) -> tuple[PlacedEvent, ...]:
        return tuple(e for e in self.events if e.role == "background")

    @property
    def labels(self) -> frozenset[str]:
        return frozenset(e.spec.label for e in self.events)

    def mix(self) -> np.ndarray:
        """Sum every event at its gain and normalise the peak to ``self.peak`` (float32)."""
        out = np.zeros(self.n_samples)
        for e in self.events:
            out[e.onset:e.end] += 10.0 ** (e.gain_db / 20) * e.audio
        top = np.abs(out).max()
        return (out * (self.peak / top) if top > 0 else out).astype(np.float32)


def sample_scene(rng: np.random.Generator, n_samples: int, sample_rate: int, profile: SceneProfile) -> Scene:
    """Draw a scene of ``n_samples``; every random choice comes from ``rng``."""
    n_salient = 1 + int(rng.choice(2, p=profile.salient))
    n_extra = int(rng.choice(len(profile.extras), p=profile.extras))
    chosen = _pick(rng, [e for e in EVENTS if e.foreground], n_salient + n_extra, exclude=())
    salient_specs, extra_specs = chosen[:n_salient], chosen[n_salient:]
    bed_specs = _pick(rng, [e for e in EVENTS if e.background], int(rng.choice(len(profile.beds), p=profile.beds)),
                      exclude=chosen)

    levels = [str(rng.choice(list(LEVEL_DB), p=profile.levels)) for _ in salient_specs]
    if len(salient_specs) == 1:
        relation = "single"
    elif any(s.pattern.continuous for s in salient_specs):
        relation = "overlap"
    else:
        relation = "sequence"
    placed = _place_salient(rng, salient_specs, levels, relation, n_samples, sample_rate, profile)
    floor = min(e.gain_db for e in placed)
    for spec in extra_specs:
        length = _sustain_length(rng, spec, n_samples, (0.3, 0.8))
        r = render_event(spec, rng, sample_rate, length)
        placed.append(PlacedEvent(spec, "extra", _onset(rng, 0, n_samples, len(r.audio)), r.audio,
                                  floor + rng.uniform(*profile.extra_db) + _jitter(rng, profile), "quiet", r.count))
    for spec in bed_specs:
        r = render_event(spec, rng, sample_rate, n_samples, fill=True)
        placed.append(PlacedEvent(spec, "background", 0, r.audio,
                                  floor + rng.uniform(*profile.bed_db) + _jitter(rng, profile), "quiet", r.count))
    return Scene(n_samples, sample_rate, tuple(placed), relation, float(rng.uniform(*profile.peak)))


def _place_salient(rng: np.random.Generator, specs: list[EventSpec], levels: list[str], relation: str,
                   n: int, sr: int, profile: SceneProfile) -> list[PlacedEvent]:
    """Place salient events in caption order, in slots that make the relation true.

    sequence: disjoint, the first ending before the second starts; overlap: the sustained
    event first, the other inside its span.
    """
    order = list(range(len(specs)))
    if relation == "overlap":
        order.sort(key=lambda i: not specs[i].pattern.continuous)
    cut = int(n * rng.uniform(0.35, 0.65))
    placed: list[PlacedEvent] = []
    for k, i in enumerate(order):
        spec = specs[i]
        if relation == "single":
            lo, hi = 0, n
        elif relation == "sequence":
            lo, hi = (0, cut) if k == 0 else (cut, n)
        else:
            lo, hi = (0, n) if k == 0 else (placed[0].onset, placed[0].end)
        length = _sustain_length(rng, spec, hi - lo, (0.6, 1.0))
        r = render_event(spec, rng, sr, length)
        audio = r.audio
        if levels[i] == "quiet":
            audio = signal.sosfilt(signal.butter(2, _DISTANCE_LOWPASS_HZ, fs=sr, output="sos"), audio)
        placed.append(PlacedEvent(spec, "salient", _onset(rng, lo, hi, len(audio)), audio,
                                  LEVEL_DB[levels[i]] + _jitter(rng, profile), levels[i], r.count))
    return placed


def _sustain_length(rng: np.random.Generator, spec: EventSpec, room: int, fraction: tuple[float, float]) -> int:
    """Room a repeated event may use, or the drawn length of a sustained one."""
    return max(1, int(room * rng.uniform(*fraction))) if spec.pattern.continuous else room


def _onset(rng: np.random.Generator, lo: int, hi: int, length: int) -> int:
    return lo + int(rng.integers(0, max(hi - lo - length, 0) + 1))


def _jitter(rng: np.random.Generator, profile: SceneProfile) -> float:
    return float(rng.uniform(-profile.jitter_db, profile.jitter_db))


def _pick(rng: np.random.Generator, pool: list[EventSpec], k: int, exclude) -> list[EventSpec]:
    """``k`` distinct events, weighted by rarity, none of ``exclude``."""
    pool = [e for e in pool if e not in exclude]
    if k == 0:
        return []
    weights = np.array([e.weight for e in pool])
    idx = rng.choice(len(pool), size=min(k, len(pool)), replace=False, p=weights / weights.sum())
    return [pool[i] for i in idx]
