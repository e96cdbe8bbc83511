"""SynthCaps event vocabulary: procedurally synthesised sound events with AudioSet-style labels.

Every event is one row of a parameter table over a single small synthesis space — a tonal
part (partials on a moving fundamental), a filtered-noise part, an envelope, an optional
pulsing amplitude modulation and a repetition pattern. One renderer instead of thirty
functions keeps the events comparable, and it makes the hard cases honest: similar events
(door knock / footsteps / drum, siren / whistling, bird song / chirp / cricket, engine /
helicopter, clapping / applause, beep / smoke detector, stream / water tap) are literally
neighbouring parameter sets that differ only in band, pitch motion or rhythm.

Each event also carries its caption words (subjects, verbs, participles, noun phrases), so
the caption writer never needs an event-specific rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import signal


@dataclass(frozen=True)
class Tone:
    """Additive partials riding on one fundamental that may glide, warble or sweep."""

    f0: tuple[float, float]                    # Hz range, drawn (log-uniformly) once per event
    partials: tuple[float, ...] = (1.0,)       # frequency ratios to f0; non-integer = bell-like
    tilt: float = 1.0                          # partial amplitude ∝ ratio ** -tilt
    contour: tuple[float, ...] = (1.0,)        # f0 multipliers at evenly spaced points of a unit
    jitter: float = 0.0                        # random semitones per contour point (melodies, speech)
    vibrato: tuple[float, float] = (0.0, 0.0)  # (rate Hz, depth semitones); slow and deep = siren
    ring: float = 0.0                          # > 0: modal decay (s) of f0; higher partials die sooner


@dataclass(frozen=True)
class Noise:
    """Band-passed noise, optionally wobbling (wind, babble) or grainy (rain, applause)."""

    band: tuple[float, float]                  # Hz; 0 = no high-pass, >= Nyquist = no low-pass
    level: float = 1.0                         # RMS relative to the tone part
    wobble: tuple[float, float] = (0.0, 0.0)   # (rate Hz, depth) of a random smooth level motion
    grains: tuple[float, float, float] = (0.0, 0.0, 0.0)  # (grains/s, decay s, steady floor)


@dataclass(frozen=True)
class Envelope:
    """Attack, exponential decay toward a sustain level, linear release at the unit's end."""

    attack: float = 0.005
    decay: float = 1.0
    sustain: float = 1.0
    release: float = 0.01


@dataclass(frozen=True)
class Pattern:
    """How one event instance unfolds in time: repeats of a unit, or one sustained sound."""

    unit: tuple[float, float] = (0.2, 0.4)     # s per occurrence (ignored when continuous)
    count: tuple[int, int] = (1, 1)            # occurrences, inclusive range
    period: tuple[float, float] = (0.5, 0.5)   # onset-to-onset s, drawn once per instance
    jitter: float = 0.05                       # relative random variation of each period
    continuous: bool = False                   # lasts as long as the scene gives it


@dataclass(frozen=True)
class Words:
    """Caption vocabulary. ``~`` in a verb marks where an adverb goes (default: the end)."""

    subjects: tuple[str, ...]                  # "a dog"
    verbs: tuple[str, ...]                     # third person present: "barks"
    ing: tuple[str, ...]                       # participles: "barking"
    nouns: tuple[str, ...]                     # stand-alone noun phrases: "a dog barking"


@dataclass(frozen=True)
class EventSpec:
    """One event type: its tag label, caption words and synthesis recipe."""

    label: str
    words: Words
    tone: Tone | None = None
    noise: Noise | None = None
    env: Envelope = Envelope()
    pattern: Pattern = Pattern()
    am: tuple[float, float, float] = (0.0, 0.0, 0.0)  # pulsing: (rate lo Hz, rate hi Hz, depth)
    weight: float = 1.0                        # relative sampling weight (< 0.5 = rare)
    role: str = "foreground"                   # "foreground", "background" or "both"
    countable: bool = True                     # whether "twice"/"three times" make sense

    @property
    def foreground(self) -> bool:
        return self.role in ("foreground", "both")

    @property
    def background(self) -> bool:
        return self.role in ("background", "both")


def _harmonics(n: int) -> tuple[float, ...]:
    return tuple(float(k) for k in range(1, n + 1))


_SHORT = Envelope(attack=0.001, decay=0.02, sustain=0.0, release=0.01)
_STEADY = Envelope(attack=0.2, decay=1.0, sustain=1.0, release=0.2)

EVENTS: tuple[EventSpec, ...] = (
    EventSpec(
        "Dog",
        Words(("a dog", "a small dog"), ("barks~", "yaps~"), ("barking~", "yapping~"),
              ("a dog barking", "barking", "dog barks")),
        tone=Tone((380, 520), _harmonics(10), tilt=1.2, contour=(1.15, 1.0, 0.8)),
        noise=Noise((500, 3000), level=0.6),
        env=Envelope(0.005, 0.08, 0.3, 0.03),
        pattern=Pattern((0.12, 0.22), (1, 4), (0.3, 0.5), jitter=0.15),
    ),
    EventSpec(
        "Cat",
        Words(("a cat", "a kitten"), ("meows~", "mews~"), ("meowing~", "mewing~"),
              ("a cat meowing", "meowing")),
        tone=Tone((450, 650), _harmonics(8), tilt=1.5, contour=(0.9, 1.3, 1.0, 0.75), vibrato=(6.0, 0.3)),
        noise=Noise((1000, 4000), level=0.15),
        env=Envelope(0.05, 0.3, 0.7, 0.15),
        pattern=Pattern((0.5, 0.9), (1, 3), (1.0, 1.5)),
        weight=0.5,
    ),
    EventSpec(
        "Bird vocalization",
        Words(("a bird", "a songbird"), ("sings~", "warbles~"), ("singing~", "warbling~"),
              ("birdsong", "a bird singing")),
        tone=Tone((2000, 2800), (1.0, 2.0), tilt=1.5, contour=(1.35, 1.0, 0.85), vibrato=(28.0, 1.5)),
        env=Envelope(0.01, 0.1, 0.6, 0.03),
        pattern=Pattern((0.12, 0.25), (3, 8), (0.25, 0.35), jitter=0.2),
    ),
    EventSpec(  # hard pair with "Bird vocalization": same band, rising pure sweeps, faster
        "Chirp",
        Words(("a small bird", "a sparrow"), ("chirps~", "tweets~"), ("chirping~", "tweeting~"),
              ("chirping", "a bird chirping", "tweeting")),
        tone=Tone((3200, 4200), contour=(0.75, 1.25)),
        env=Envelope(0.003, 0.03, 0.2, 0.01),
        pattern=Pattern((0.04, 0.07), (4, 12), (0.09, 0.16), jitter=0.2),
    ),
    EventSpec(
        "Door knock",
        Words(("someone", "a person", "a visitor"), ("knocks~ on a door", "raps~ on the door"),
              ("knocking~ on a door", "rapping~ on the door"), ("knocking on a door", "a knock at the door")),
        tone=Tone((140, 200), (1.0, 2.3), ring=0.03),
        noise=Noise((250, 900), level=1.2),
        env=_SHORT,
        pattern=Pattern((0.06, 0.09), (2, 4), (0.16, 0.26)),
    ),
    EventSpec(  # hard pair with "Door knock": broader, lower thuds at a slower walking pace
        "Footsteps",
        Words(("someone", "a person", "a man"), ("walks~ by", "walks~ across a hard floor"),
              ("walking~ by", "walking~ across a hard floor"), ("footsteps", "footsteps on a hard floor")),
        tone=Tone((70, 100), ring=0.04),
        noise=Noise((120, 2500), level=1.5),
        env=Envelope(0.002, 0.04, 0.0, 0.02),
        pattern=Pattern((0.09, 0.14), (4, 10), (0.45, 0.6)),
        countable=False,
    ),
    EventSpec(
        "Drum",
        Words(("someone", "a drummer"), ("beats a drum~", "hits a drum~"), ("beating a drum~", "hitting a drum~"),
              ("drumming", "a drum beat")),
        tone=Tone((90, 130), (1.0, 1.5, 2.2), contour=(1.4, 1.0), ring=0.2),
        noise=Noise((100, 2000), level=0.3),
        env=Envelope(0.002, 0.15, 0.0, 0.05),
        pattern=Pattern((0.25, 0.35), (2, 8), (0.35, 0.55), jitter=0.02),
    ),
    EventSpec(
        "Hammer",
        Words(("someone", "a worker"), ("hammers~", "hammers a nail~"), ("hammering~", "hammering a nail~"),
              ("hammering", "a hammer striking metal")),
        tone=Tone((1800, 2600), (1.0, 2.7), ring=0.08),
        noise=Noise((1500, 6000), level=0.8),
        env=Envelope(0.001, 0.05, 0.0, 0.02),
        pattern=Pattern((0.15, 0.25), (2, 6), (0.4, 0.7)),
    ),
    EventSpec(
        "Clapping",
        Words(("someone", "a person"), ("claps~", "claps their hands~"), ("clapping~", "clapping their hands~"),
              ("clapping", "hands clapping")),
        noise=Noise((900, 5000)),
        env=Envelope(0.001, 0.012, 0.0, 0.005),
        pattern=Pattern((0.03, 0.05), (2, 8), (0.25, 0.45)),
    ),
    EventSpec(  # hard pair with "Clapping": the same grains, dense and continuous
        "Applause",
        Words(("an audience", "a crowd"), ("applauds~", "claps~ enthusiastically"),
              ("applauding~", "clapping~ enthusiastically"), ("applause", "an audience applauding")),
        noise=Noise((800, 6000), grains=(60.0, 0.012, 0.05)),
        env=_STEADY,
        pattern=Pattern(continuous=True),
        weight=0.4,
    ),
    EventSpec(
        "Siren",
        Words(("a siren", "an ambulance siren", "a police siren"), ("wails~", "blares~"),
              ("wailing~", "blaring~"), ("a siren", "a wailing siren")),
        tone=Tone((600, 800), _harmonics(6), tilt=1.0, vibrato=(0.35, 7.0)),
        env=Envelope(0.3, 1.0, 1.0, 0.3),
        pattern=Pattern(continuous=True),
    ),
    EventSpec(  # hard pair with "Siren": a pure, breathy, faster sweep with small vibrato
        "Whistling",
        Words(("someone", "a man", "a person"), ("whistles~",), ("whistling~",), ("whistling", "a whistled tune")),
        tone=Tone((1300, 1800), (1.0, 2.0), tilt=3.0, contour=(0.8, 1.35, 1.0), vibrato=(5.5, 0.4)),
        noise=Noise((1000, 4000), level=0.12),
        env=Envelope(0.04, 0.2, 0.8, 0.08),
        pattern=Pattern((0.5, 1.0), (1, 3), (0.8, 1.3)),
    ),
    EventSpec(
        "Singing",
        Words(("a woman", "a man", "someone"), ("sings~", "hums a tune~"), ("singing~", "humming a tune~"),
              ("singing", "a person singing")),
        tone=Tone((180, 300), _harmonics(12), tilt=1.4, contour=(1.0,) * 5, jitter=3.0, vibrato=(5.5, 0.6)),
        env=Envelope(0.06, 0.3, 0.8, 0.15),
        pattern=Pattern((0.8, 1.6), (1, 3), (1.0, 1.8)),
    ),
    EventSpec(
        "Car horn",
        Words(("a car horn", "a horn"), ("honks~", "toots~"), ("honking~", "tooting~"),
              ("a car horn honking", "honking")),
        tone=Tone((380, 460), (1.0, 1.26, 2.0, 2.52, 3.0, 3.78, 4.0, 5.04), tilt=0.8),
        env=Envelope(0.01, 0.1, 0.9, 0.03),
        pattern=Pattern((0.25, 0.8), (1, 3), (0.5, 1.1)),
    ),
    EventSpec(
        "Beep",
        Words(("a device", "a machine"), ("beeps~", "bleeps~"), ("beeping~", "bleeping~"),
              ("beeping", "an electronic beep")),
        tone=Tone((900, 1100)),
        env=Envelope(0.003, 1.0, 1.0, 0.005),
        pattern=Pattern((0.1, 0.2), (2, 5), (0.3, 0.5), jitter=0.0),
    ),
    EventSpec(  # hard pair with "Beep": higher, longer, pulsed
        "Smoke detector",
        Words(("a smoke alarm", "a smoke detector"), ("shrieks~", "goes off~"), ("shrieking~", "going off~"),
              ("a smoke alarm", "an alarm shrieking")),
        tone=Tone((3000, 3400), (1.0, 3.0), tilt=2.0),
        env=Envelope(0.005, 1.0, 1.0, 0.01),
        pattern=Pattern((0.4, 0.5), (2, 4), (0.9, 1.2), jitter=0.0),
        am=(60.0, 70.0, 0.5),
        weight=0.4,
    ),
    EventSpec(
        "Telephone",
        Words(("a phone", "a telephone"), ("rings~",), ("ringing~",), ("a phone ringing", "a ringing telephone")),
        tone=Tone((800, 900), (1.0, 1.09, 2.0, 2.18), tilt=1.0),
        env=Envelope(0.01, 1.0, 1.0, 0.02),
        pattern=Pattern((0.8, 1.2), (1, 3), (1.4, 1.8), jitter=0.0),
        am=(18.0, 22.0, 0.9),
    ),
    EventSpec(
        "Bell",
        Words(("a bell", "a church bell"), ("rings~", "tolls~", "chimes~"), ("ringing~", "tolling~"),
              ("a bell ringing", "the toll of a bell")),
        tone=Tone((400, 700), (0.5, 1.0, 1.19, 1.5, 2.0, 2.5, 2.66, 3.01, 4.1), tilt=0.5, ring=1.2),
        env=Envelope(0.002, 0.8, 0.0, 0.1),
        pattern=Pattern((1.0, 1.8), (1, 4), (0.9, 1.4)),
    ),
    EventSpec(  # hard pair with "Bell": higher, shorter, irregular overlapping strikes
        "Wind chime",
        Words(("a wind chime",), ("tinkles~", "jingles~"), ("tinkling~", "jingling~"),
              ("wind chimes", "a wind chime tinkling")),
        tone=Tone((1500, 2600), (1.0, 2.76, 5.4), tilt=1.0, jitter=4.0, ring=0.4),
        env=Envelope(0.001, 0.5, 0.0, 0.05),
        pattern=Pattern((0.4, 0.7), (5, 12), (0.1, 0.35), jitter=0.6),
        weight=0.4,
        countable=False,
    ),
    EventSpec(
        "Cough",
        Words(("a man", "a person", "someone"), ("coughs~",), ("coughing~",), ("coughing", "a cough")),
        tone=Tone((140, 220), _harmonics(6), tilt=1.0),
        noise=Noise((300, 3500), level=2.0),
        env=Envelope(0.01, 0.12, 0.1, 0.08),
        pattern=Pattern((0.25, 0.4), (1, 3), (0.5, 0.8)),
        weight=0.6,
    ),
    EventSpec(
        "Frog",
        Words(("a frog", "a toad"), ("croaks~",), ("croaking~",), ("croaking", "a frog croaking")),
        tone=Tone((220, 320), _harmonics(8), tilt=1.0),
        env=Envelope(0.01, 0.2, 0.8, 0.05),
        pattern=Pattern((0.2, 0.4), (2, 6), (0.5, 0.9)),
        am=(30.0, 45.0, 0.95),
        weight=0.3,
    ),
    EventSpec(  # hard pair with "Chirp": higher, steady pitch, buzzing pulses
        "Cricket",
        Words(("a cricket", "an insect"), ("chirps~", "trills~"), ("chirping~", "trilling~"),
              ("crickets chirping", "chirping insects")),
        tone=Tone((4200, 4800)),
        env=Envelope(0.005, 1.0, 1.0, 0.01),
        pattern=Pattern((0.15, 0.3), (6, 20), (0.4, 0.6), jitter=0.05),
        am=(25.0, 35.0, 1.0),
        role="both",
        countable=False,
    ),
    EventSpec(
        "Engine",
        Words(("an engine", "a car engine", "a motor"), ("idles~", "rumbles~", "runs~"),
              ("idling~", "rumbling~", "running~"), ("an idling engine", "engine noise", "a motor running")),
        tone=Tone((35, 55), _harmonics(12), tilt=0.7),
        noise=Noise((60, 900), level=0.8, wobble=(3.0, 0.3)),
        env=_STEADY,
        pattern=Pattern(continuous=True),
        am=(12.0, 20.0, 0.3),
        role="both",
    ),
    EventSpec(  # hard pair with "Engine": noisier, strongly chopped by the rotor
        "Helicopter",
        Words(("a helicopter",), ("flies~ overhead", "hovers~ above"), ("flying~ overhead", "hovering~ above"),
              ("a helicopter", "helicopter blades")),
        tone=Tone((60, 90), _harmonics(6), tilt=1.0),
        noise=Noise((80, 1500), level=1.5),
        env=Envelope(0.5, 1.0, 1.0, 0.5),
        pattern=Pattern(continuous=True),
        am=(10.0, 14.0, 0.85),
        weight=0.3,
    ),
    EventSpec(
        "Drill",
        Words(("a power drill", "a drill"), ("whirs~", "whines~"), ("whirring~", "whining~"),
              ("a drill whirring", "drilling")),
        tone=Tone((200, 320), _harmonics(10), tilt=0.6, contour=(0.7, 1.0, 1.0, 1.0)),
        noise=Noise((2000, 8000), level=0.3),
        env=Envelope(0.05, 1.0, 1.0, 0.1),
        pattern=Pattern((0.8, 2.0), (1, 3), (1.5, 2.5)),
        weight=0.6,
    ),
    EventSpec(
        "Thunder",
        Words(("thunder",), ("rumbles~", "rolls~"), ("rumbling~", "rolling~"), ("thunder", "a thunderclap")),
        noise=Noise((0, 400), wobble=(6.0, 1.0), grains=(15.0, 0.05, 0.3)),
        env=Envelope(0.05, 1.2, 0.0, 0.5),
        pattern=Pattern((1.5, 3.0), (1, 2), (2.0, 3.0)),
        weight=0.3,
    ),
    EventSpec(
        "Water tap",
        Words(("a tap", "a faucet"), ("runs~",), ("running~",), ("running water", "water pouring from a tap")),
        noise=Noise((1500, 9000), wobble=(20.0, 0.3), grains=(40.0, 0.01, 0.6)),
        env=_STEADY,
        pattern=Pattern(continuous=True),
        weight=0.6,
    ),
    EventSpec(
        "Rain",
        Words(("rain", "steady rain"), ("falls~", "patters~"), ("falling~", "pattering~"),
              ("rain", "falling rain", "the patter of rain")),
        noise=Noise((300, 12000), grains=(150.0, 0.004, 0.3)),
        env=_STEADY,
        pattern=Pattern(continuous=True),
        role="both",
    ),
    EventSpec(
        "Wind",
        Words(("the wind", "a strong wind"), ("blows~", "howls~"), ("blowing~", "howling~"),
              ("wind", "wind noise", "gusts of wind")),
        noise=Noise((40, 1200), wobble=(0.5, 0.8)),
        env=_STEADY,
        pattern=Pattern(continuous=True),
        role="both",
    ),
    EventSpec(  # hard pair with "Water tap": darker, burbling
        "Stream",
        Words(("a stream", "a brook"), ("flows~", "trickles~", "babbles~"), ("flowing~", "trickling~"),
              ("a flowing stream", "a babbling brook")),
        noise=Noise((400, 5000), wobble=(12.0, 0.7), grains=(25.0, 0.02, 0.5)),
        env=_STEADY,
        pattern=Pattern(continuous=True),
        role="both",
    ),
    EventSpec(
        "Crowd hubbub",
        Words(("a crowd", "a group of people"), ("chatters~", "murmurs~"), ("chattering~", "murmuring~"),
              ("crowd chatter", "people talking", "a murmuring crowd")),
        tone=Tone((110, 220), _harmonics(12), tilt=1.3, contour=(1.0,) * 16, jitter=3.0),
        noise=Noise((250, 3500), level=2.0, wobble=(5.0, 0.9)),
        env=_STEADY,
        pattern=Pattern(continuous=True),
        role="both",
    ),
    EventSpec(
        "Hum",
        Words(("an appliance", "a machine"), ("hums~", "drones~"), ("humming~", "droning~"),
              ("a low hum", "electrical humming", "a droning hum")),
        tone=Tone((49, 61), _harmonics(8), tilt=1.0),
        noise=Noise((0, 300), level=0.2),
        env=_STEADY,
        pattern=Pattern(continuous=True),
        role="background",
    ),
)

LABELS: tuple[str, ...] = tuple(e.label for e in EVENTS)
BY_LABEL: dict[str, EventSpec] = {e.label: e for e in EVENTS}


@dataclass(frozen=True)
class Rendered:
    audio: np.ndarray   # float32, unit RMS per occurrence
    count: int          # occurrences actually rendered (1 for a sustained sound)


@dataclass(frozen=True)
class _Instance:
    """Parameters drawn once per event instance so that its repeats sound like one source."""

    f0: float
    band: tuple[float, float]
    am_rate: float


def render_event(spec: EventSpec, rng: np.random.Generator, sample_rate: int, max_len: int,
                 fill: bool = False) -> Rendered:
    """Render one instance of ``spec`` in at most ``max_len`` samples.

    Continuous events, and any event with ``fill`` (a background bed), last exactly
    ``max_len`` samples. Repeated events draw a count and drop repeats that do not fit,
    so the returned count is what a caption may truthfully say.
    """
    if max_len < 1:
        raise ValueError("max_len must be at least one sample")
    inst = _draw_instance(spec, rng)
    pat = spec.pattern
    if pat.continuous:
        return Rendered(_unit(spec, inst, max_len, sample_rate, rng), 1)
    period = rng.uniform(*pat.period) * sample_rate
    if fill:
        count = int(max_len / (period * (1 - pat.jitter))) + 2
        start = int(rng.uniform(0, min(period, max_len / 2)))
    else:
        count = int(rng.integers(pat.count[0], pat.count[1] + 1))
        start = 0
    unit = rng.uniform(*pat.unit) * sample_rate
    lengths = np.maximum(1, np.round(unit * rng.uniform(0.9, 1.1, count))).astype(int)
    steps = period * (1 + pat.jitter * rng.uniform(-1, 1, count - 1))
    onsets = start + np.round(np.concatenate(([0.0], np.cumsum(steps)))).astype(int)
    fits = onsets < max_len if fill else onsets + lengths <= max_len
    count = count if fits.all() else max(1, int(np.argmin(fits)))
    out = np.zeros(max_len if fill else min(max_len, int(onsets[count - 1] + lengths[count - 1])), dtype=np.float32)
    for onset, length in zip(onsets[:count], lengths[:count]):
        n = min(int(length), len(out) - int(onset))
        out[onset:onset + n] += _unit(spec, inst, n, sample_rate, rng)
    return Rendered(out, count)


def _draw_instance(spec: EventSpec, rng: np.random.Generator) -> _Instance:
    f0 = float(np.exp(rng.uniform(*np.log(spec.tone.f0)))) if spec.tone else 0.0
    scale = 2.0 ** rng.uniform(-0.15, 0.15)
    band = (spec.noise.band[0] * scale, spec.noise.band[1] * scale) if spec.noise else (0.0, 0.0)
    return _Instance(f0, band, float(rng.uniform(spec.am[0], spec.am[1])))


def _unit(spec: EventSpec, inst: _Instance, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One occurrence: tone and noise parts at their relative levels, enveloped, unit RMS."""
    x = np.zeros(n, dtype=np.float32)
    if spec.tone:
        x += _normalised(_tone(spec.tone, inst.f0 * 2.0 ** rng.normal(0, 0.02), n, sr, rng))
    if spec.noise:
        x += np.float32(spec.noise.level) * _normalised(_noise(spec.noise, inst.band, n, sr, rng))
    x *= _envelope(spec.env, n, sr)
    if spec.am[2] > 0:
        angle = np.float32(2 * np.pi * inst.am_rate / sr) * np.arange(n, dtype=np.float32)
        pulse = np.square(0.5 + 0.5 * np.sin(angle + np.float32(rng.uniform(0, 2 * np.pi))))
        x *= np.float32(1.0 - spec.am[2]) + np.float32(spec.am[2]) * pulse
    return _normalised(x)


def _tone(tone: Tone, f0: float, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Sum of partials, one at a time into a reused buffer (float32: numpy's float32 sin and
    exp are several times faster than float64; the phase error is far below audibility)."""
    t = np.arange(n, dtype=np.float32) / np.float32(sr)
    points = np.log2(tone.contour) + rng.normal(0, tone.jitter / 12, len(tone.contour))
    if len(points) == 1:
        octaves = np.full(n, points[0], dtype=np.float32)
    else:
        octaves = np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(points)), points).astype(np.float32)
    rate, depth = tone.vibrato
    if depth > 0:
        vib = np.sin(np.float32(2 * np.pi * rate) * t + np.float32(rng.uniform(0, 2 * np.pi)))
        octaves += np.float32(depth / 12) * vib
    freq = np.float32(f0) * np.exp2(octaves)
    # Phase is accumulated in float64 (a float32 running sum would drift), then wrapped.
    phase = np.mod(np.cumsum(freq * np.float32(2 * np.pi / sr), dtype=np.float64), 2 * np.pi).astype(np.float32)
    ratios = [r for r in tone.partials if r * freq.max() < 0.45 * sr]
    offsets = rng.uniform(0, 2 * np.pi, len(ratios))
    out = np.zeros(n, dtype=np.float32)
    wave = np.empty(n, dtype=np.float32)
    for ratio, offset in zip(ratios, offsets):
        np.multiply(phase, np.float32(ratio), out=wave)
        wave += np.float32(offset)
        np.sin(wave, out=wave)
        wave *= np.float32(ratio ** -tone.tilt)
        if tone.ring > 0:
            wave *= np.exp(t * np.float32(-np.sqrt(ratio) / tone.ring))
        out += wave
    return out


def _noise(noise: Noise, band: tuple[float, float], n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    x = signal.sosfilt(_bandpass(round(band[0]), round(band[1]), sr), rng.standard_normal(n, dtype=np.float32))
    rate, depth = noise.wobble
    if depth > 0:
        knots = rng.standard_normal(int(n / sr * rate) + 2)
        x *= np.exp(depth * np.interp(np.linspace(0, len(knots) - 1, n, dtype=np.float32),
                                      np.arange(len(knots)), knots)).astype(np.float32)
    per_second, decay, floor = noise.grains
    if per_second > 0:
        where = rng.integers(0, n, rng.poisson(per_second * n / sr))
        hits = np.bincount(where, weights=rng.lognormal(0, 0.5, where.size), minlength=n)
        x *= (floor + signal.lfilter([1.0], [1.0, -np.exp(-1.0 / (decay * sr))], hits)).astype(np.float32)
    return x


@lru_cache(maxsize=256)
def _bandpass(lo: float, hi: float, sr: int) -> np.ndarray:
    nyquist = sr / 2
    hi = min(hi, 0.95 * nyquist)
    if lo <= 0:
        sos = signal.butter(2, hi, "lowpass", fs=sr, output="sos")
    else:
        sos = signal.butter(2, (lo, hi), "bandpass", fs=sr, output="sos")
    return sos.astype(np.float32)  # float32 coefficients keep sosfilt in float32


def _envelope(env: Envelope, n: int, sr: int) -> np.ndarray:
    t = np.arange(n, dtype=np.float32) / np.float32(sr)
    shape = np.minimum(t / np.float32(max(env.attack, 1 / sr)), 1.0)
    if env.sustain < 1:
        shape *= env.sustain + (1 - env.sustain) * np.exp(-np.maximum(t - env.attack, 0) / np.float32(env.decay))
    return shape * np.clip((n / sr - t) / np.float32(max(env.release, 1 / sr)), 0.0, 1.0)


def _normalised(x: np.ndarray) -> np.ndarray:
    rms = np.sqrt(np.mean(x ** 2)) if x.size else 0.0
    return x / rms if rms > 0 else x
