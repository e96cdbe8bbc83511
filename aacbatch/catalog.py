"""The catalog: every training task and feature kind aacbatch knows, with its facts, once.

Everything that depends on *which* tasks or kinds exist reads this module instead of naming
them: the CLI's choices, the training runner, ``featurize encoded``, captioning, systems,
search, the demo, and — through the ``tasks`` table that ``db upgrade`` fills from
:data:`TASKS` — the SQL views (a run's family, whether it has a tag loss, its selection
metric). Adding a retrieval variant is one :class:`TaskInfo` entry here plus its loss code
(see ``docs/architecture.md``).

This module sits at the bottom of the import order (beside :mod:`aacbatch.errors`): the
implementation of a task or kind is named as ``"module:attribute"`` and imported only when
it is used, so reading the catalog (``aacbatch --help``, registry commands) costs nothing.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from aacbatch.errors import InputError

FAMILIES = ("retrieval", "caption", "tagger", "baseline")
OUTPUTS = ("retrieval", "caption", "tagging")  # what a task's scores and predictions are
RETRIEVAL_LOSSES = ("tag", "image")  # extra terms a retrieval variant may add to InfoNCE


def _resolve(target: str):
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class TaskInfo:
    """One training task.

    ``family`` groups tasks for reports and systems (``retrieval``, ``caption``, ``tagger``,
    ``baseline``); ``output`` says what its scores mean (a bag-of-words baseline is scored and
    ensembled like a retrieval model). ``init_from`` lists the families whose runs it may start
    from (``--init-from``); ``encoder`` marks runs whose best checkpoint holds a CNN14 that
    ``featurize encoded`` can freeze; ``teacher`` marks runs that may be CLAP-TAG's teacher
    (``tags``) or a retrieval model's initial audio encoder (``audio_init``); ``ensemble``
    marks runs that may be members of a system of kind ``output``; ``closed_form`` tasks are
    fitted in one pass instead of by the epoch loop. ``losses`` are the retrieval terms added
    to InfoNCE (``tag``: regression on cached teacher scores, ``image``: image→text InfoNCE).
    ``mixtures`` tasks train on several datasets at once (``--dataset a,b`` or a mixture).
    """

    name: str
    family: str
    output: str
    implementation: str  # "module:Class" of the train.task.Task subclass
    select_metric: str  # higher is better; picks the best checkpoint and the system members
    summary: str
    init_from: tuple[str, ...] = ()
    encoder: bool = False
    teacher: bool = False
    ddp: bool = False
    ensemble: bool = False
    closed_form: bool = False
    losses: tuple[str, ...] = ()
    mixtures: bool = False

    def __post_init__(self):
        if self.family not in FAMILIES or self.output not in OUTPUTS:
            raise ValueError(f"task {self.name}: family {self.family!r} / output {self.output!r} unknown")
        if not set(self.losses) <= set(RETRIEVAL_LOSSES):
            raise ValueError(f"task {self.name}: unknown losses {self.losses}")

    @property
    def uses_tags(self) -> bool:
        return "tag" in self.losses

    @property
    def uses_images(self) -> bool:
        return "image" in self.losses

    def task_class(self) -> type:
        return _resolve(self.implementation)


def _retrieval(name: str, losses: tuple[str, ...], summary: str) -> TaskInfo:
    return TaskInfo(name, "retrieval", "retrieval", "aacbatch.train.retrieval:RetrievalTask", "t2a/mAP@10", summary,
                    init_from=("retrieval",), encoder=True, ddp=True, ensemble=True, losses=losses, mixtures=True)


TASKS: dict[str, TaskInfo] = {t.name: t for t in (
    TaskInfo("tagger", "tagger", "tagging", "aacbatch.train.tagger:TaggerTask", "mAP",
             "a CNN14 tagger on the dataset's tags (the teacher and initial audio encoder)",
             init_from=("tagger",), encoder=True, teacher=True, ddp=True),
    TaskInfo("bow", "baseline", "retrieval", "aacbatch.train.bow:BowTask", "t2a/mAP@10",
             "the bag-of-words retrieval baseline", ensemble=True, closed_form=True),
    _retrieval("clap", (), "CLAP: audio-text InfoNCE"),
    _retrieval("clap_tag", ("tag",), "CLAP-TAG: + regression on the teacher's tag scores"),
    _retrieval("claip", ("image",), "CLAIP: + image→text InfoNCE on Stable-Diffusion images"),
    _retrieval("claip_tag", ("tag", "image"), "CLAIP-TAG: both extra terms"),
    TaskInfo("caption", "caption", "caption", "aacbatch.train.caption:CaptionTask", "cider_d",
             "a captioner on the frames of a frozen encoder (an encoded set)", init_from=("caption",), ensemble=True,
             ddp=True, mixtures=True),
    TaskInfo("frequent_caption", "baseline", "caption", "aacbatch.train.frequent_caption:FrequentCaptionTask",
             "cider_d", "the most-frequent-caption baseline", closed_form=True),
)}


def task(name: str) -> TaskInfo:
    """The catalog entry of ``name``; a one-line error naming the known tasks otherwise."""
    if name not in TASKS:
        raise InputError(f"unknown task {name!r}: choose one of {', '.join(TASKS)}")
    return TASKS[name]


def tasks_where(**facts) -> tuple[str, ...]:
    """Names of the tasks whose fields equal ``facts``, e.g. ``tasks_where(family="retrieval")``."""
    return tuple(name for name, info in TASKS.items() if all(getattr(info, k) == v for k, v in facts.items()))


def init_parents(name: str) -> tuple[str, ...]:
    """The tasks a ``name`` run may start from with ``--init-from``."""
    return tuple(t for f in task(name).init_from for t in tasks_where(family=f))


@dataclass(frozen=True)
class FeatureKindInfo:
    """One feature kind: what it computes, over which items, and the parameters that name a run."""

    name: str
    implementation: str  # "module:Class" of the featurize.kinds.FeatureKind subclass
    item: str  # "clip" or "caption"
    summary: str
    run_params: tuple[tuple[str, str], ...] = ()  # (parameter, catalog field the run's task must have)

    def kind_class(self) -> type:
        return _resolve(self.implementation)


FEATURE_KINDS: dict[str, FeatureKindInfo] = {k.name: k for k in (
    FeatureKindInfo("mel", "aacbatch.featurize.mel:MelKind", "clip", "CNN14 log-mels (ragged float16)"),
    FeatureKindInfo("tags", "aacbatch.featurize.tags:TagsKind", "clip", "a frozen teacher's tag scores",
                    run_params=(("teacher", "teacher"),)),
    FeatureKindInfo("tokens", "aacbatch.featurize.tokens:TokensKind", "caption", "text-encoder token ids"),
    FeatureKindInfo("text_emb", "aacbatch.featurize.text_emb:TextEmbKind", "caption",
                    "CLS embeddings of a locked text encoder"),
    FeatureKindInfo("images", "aacbatch.featurize.images:ImagesKind", "caption",
                    "CLIP embeddings of Stable-Diffusion images of each caption"),
    FeatureKindInfo("encoded", "aacbatch.featurize.encoded:EncodedKind", "clip",
                    "frames of a frozen retrieval/tagger encoder (captioner input)", run_params=(("run", "encoder"),)),
)}


def feature_kind(name: object, source: str = "spec") -> FeatureKindInfo:
    if name not in FEATURE_KINDS:
        raise InputError(f"{source}: unknown feature kind {name!r} (known: {', '.join(FEATURE_KINDS)})")
    return FEATURE_KINDS[name]


# Corpus layouts `aacbatch ingest` reads (parsers in aacbatch.data.ingest).
INGEST_FORMATS = ("clotho", "audiocaps", "macs", "wavcaps", "folder", "esc50", "urbansound8k")
DEMO_SCALES = ("tiny", "small", "gpu")  # `aacbatch demo --scale` (recipes in aacbatch.demo.SCALES)
DEVICE_SPEC = r"auto|cpu|cuda(:\d+)?"  # `--device` values (aacbatch.device resolves them)
