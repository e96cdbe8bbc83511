"""SynthCaps captions: Clotho-like sentences naming a scene's salient events.

A caption is a template (chosen by how the salient events relate in time: one event, one
after the other, or one during the other) filled with each event's words plus its count
("twice", "repeatedly") and loudness ("loudly", "in the distance") words, and in some clips
a background suffix naming the loudest bed. Extras, other beds and unnoticed beds are never
named: that gap between captions and tags is deliberate (see ``scenes``).

Templates marked ``heldout`` are used only for clips of the evaluation split, so evaluation
measures generalisation to unseen phrasings rather than memorised ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aacbatch.data.synthcaps.scenes import PlacedEvent, Scene


@dataclass(frozen=True)
class Template:
    id: str
    text: str       # str.format fields: {a} {a_ing} {a_prog} {b} {b_ing} {b_prog}; suffixes: {bg}
    heldout: bool = False


# Main templates by scene relation; each ends with "." (a background suffix goes before it).
FAMILIES: dict[str, tuple[Template, ...]] = {
    "single": (
        Template("single_features", "The recording features {a_ing}."),
        Template("single_recording", "In this recording, {a}."),
        Template("single_heard", "{a_ing} can be heard."),
        Template("single_you_hear", "You can hear {a_ing}."),
        Template("single_sound_of", "There is the sound of {a_ing}."),
        Template("single_audible", "{a_ing} is audible in this clip.", heldout=True),
        Template("single_captures", "This clip captures {a_ing}.", heldout=True),
    ),
    "sequence": (
        Template("seq_then", "{a}, then {b}."),
        Template("seq_followed", "{a}, followed by {b_ing}."),
        Template("seq_before", "{a} before {b}."),
        Template("seq_first", "First {a}, and then {b}."),
        Template("seq_after", "After {a}, {b}."),
        Template("seq_reversed", "{b} after {a}.", heldout=True),
        Template("seq_is_followed", "{a_ing} is followed by {b_ing}.", heldout=True),
        Template("seq_later", "{a_ing} and later {b_ing} can be heard.", heldout=True),
    ),
    "overlap": (  # a = the sustained event, b = the one happening during it
        Template("ovl_while", "{b} while {a_prog}."),
        Template("ovl_as", "{b} as {a}."),
        Template("ovl_while_first", "While {a_prog}, {b}."),
        Template("ovl_meanwhile", "{a}, and meanwhile {b}."),
        Template("ovl_over", "{b} over the sound of {a_ing}.", heldout=True),
        Template("ovl_amid", "Amid the sound of {a_ing}, {b}.", heldout=True),
    ),
}
BACKGROUND: tuple[Template, ...] = (
    Template("bg_with", ", with {bg} in the background"),
    Template("bg_fills", ", and {bg} fills the background"),
    Template("bg_against", " against a background of {bg}", heldout=True),
)
TEMPLATES: tuple[Template, ...] = tuple(t for family in FAMILIES.values() for t in family) + BACKGROUND
HELDOUT_IDS: frozenset[str] = frozenset(t.id for t in TEMPLATES if t.heldout)

HELDOUT_SHARE = 0.5      # evaluation clips: chance that a template slot uses a held-out template
_DETAIL_PROB = 0.85      # chance a caption states a count or loudness that applies
_BED_MENTION_PROB = 0.5  # chance a caption names a bed its clip's annotators noticed
_LOUDNESS = {
    "loud": (("loudly",), ("nearby",)),
    "quiet": (("faintly", "softly", "quietly"), ("in the distance", "far away")),
}
_COUNTS = {2: ("twice", "two times"), 3: ("three times",)}
_MANY = ("repeatedly", "several times", "over and over")


@dataclass(frozen=True)
class Caption:
    text: str
    templates: tuple[str, ...]   # ids of the main template and of the background suffix, if any
    background: str | None       # label of the bed the caption names, if any


def make_captions(scene: Scene, rng: np.random.Generator, n: int, *, evaluation: bool,
                  notice_prob: float) -> list[Caption]:
    """``n`` distinct captions for ``scene``; held-out templates only if ``evaluation``.

    Like annotators, the captions of a clip either notice its loudest bed or not
    (``notice_prob``); if they do, about half of them name it. So beds are often in no
    caption at all, while tags always list them.
    """
    beds = sorted(scene.beds, key=lambda e: -e.gain_db)
    bed = beds[0] if beds and rng.random() < notice_prob else None
    captions: list[Caption] = []
    for _ in range(100 * n):
        caption = _caption(scene, bed, rng, evaluation)
        if all(caption.text != c.text for c in captions):
            captions.append(caption)
            if len(captions) == n:
                return captions
    raise RuntimeError(f"could not phrase {n} distinct captions for a {scene.relation} scene")


def _caption(scene: Scene, bed: PlacedEvent | None, rng: np.random.Generator, evaluation: bool) -> Caption:
    main = _template(rng, FAMILIES[scene.relation], evaluation)
    fields: dict[str, str] = {}
    for key, event in zip("ab", scene.salient):
        fields[key] = _phrase(event, rng, "clause")
        fields[f"{key}_ing"] = _phrase(event, rng, "ing")
        fields[f"{key}_prog"] = _phrase(event, rng, "prog")
    text = main.text.format(**fields)
    if bed is None or rng.random() >= _BED_MENTION_PROB:
        return Caption(_capitalised(text), (main.id,), None)
    suffix = _template(rng, BACKGROUND, evaluation)
    text = text[:-1] + suffix.text.format(bg=_choice(rng, bed.spec.words.nouns)) + "."
    return Caption(_capitalised(text), (main.id, suffix.id), bed.spec.label)


def _capitalised(text: str) -> str:
    return text[0].upper() + text[1:]


def _template(rng: np.random.Generator, family: tuple[Template, ...], evaluation: bool) -> Template:
    heldout = evaluation and rng.random() < HELDOUT_SHARE
    pool = [t for t in family if t.heldout == heldout] or [t for t in family if not t.heldout]
    return pool[int(rng.integers(len(pool)))]


def _phrase(event: PlacedEvent, rng: np.random.Generator, form: str) -> str:
    """"a dog barks loudly twice" (clause), "a dog barking ..." (ing), "a dog is barking ..." (prog)."""
    words = event.spec.words
    verb = _choice(rng, words.verbs if form == "clause" else words.ing)
    adverb, trailer = _loudness(event, rng)
    if "~" not in verb:
        verb += "~"
    verb = verb.replace("~", f" {adverb}" if adverb else "")
    parts = (_choice(rng, words.subjects), "is" if form == "prog" else "", verb, _count(event, rng), trailer)
    return " ".join(p for p in parts if p)


def _loudness(event: PlacedEvent, rng: np.random.Generator) -> tuple[str, str]:
    """(adverb after the verb, phrase at the end); at most one of them is non-empty."""
    if event.level not in _LOUDNESS or rng.random() > _DETAIL_PROB:
        return "", ""
    adverbs, trailers = _LOUDNESS[event.level]
    pick = int(rng.integers(len(adverbs) + len(trailers)))
    return (adverbs[pick], "") if pick < len(adverbs) else ("", trailers[pick - len(adverbs)])


def _count(event: PlacedEvent, rng: np.random.Generator) -> str:
    spec = event.spec
    if not spec.countable or spec.pattern.continuous or rng.random() > _DETAIL_PROB:
        return ""
    if event.count == 1:
        return "once" if rng.random() < 0.3 else ""
    return _choice(rng, _COUNTS.get(event.count, _MANY))


def _choice(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]
