"""What a benchmark run is: the resolved configuration written to ``config.yaml``.

A *system* is a backend + model (+ endpoints); a *variant* is a prompt spec.  The config holds
no secret: API keys come from the environment when a backend is built.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from sovtp.deid.policy import DEFAULT_MODE
from sovtp.errors import SovtpError
from sovtp.prepare import PrepareSettings
from sovtp.systems import system_name


class SystemSpec(BaseModel):
    name: str
    backend: str
    options: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SystemSpec:
        """``facs`` | ``openai[:MODEL]@URL[,URL...]`` | ``transformers:PATH`` | ``vllm:MODEL`` |
        ``cnn:CHECKPOINT``; several URLs after ``@`` are endpoints of one system,
        load-balanced.  A ``cnn`` system is a trained predictor: it answers once per sample,
        not once per prompt variant."""
        head, _, urls = text.partition("@")
        backend, _, model = head.partition(":")
        opts: dict[str, Any] = {}
        if backend == "openai":
            if not urls:
                raise SovtpError(
                    f"system {text!r}: openai needs @URL (e.g. openai@http://h:8000/v1)"
                )
            opts["base_url"] = [u for u in urls.split(",") if u]
            if model:
                opts["model"] = model
        elif backend in ("transformers", "vllm"):
            if not model:
                raise SovtpError(f"system {text!r}: {backend} needs :MODEL (hub ID or folder)")
            opts["model"] = model
        elif backend == "cnn":  # a trained baseline: cnn:CKPT (sovtp train's folder)
            if not model:
                raise SovtpError(f"system {text!r}: cnn needs :CHECKPOINT (a sovtp train folder)")
            opts["ckpt"] = model
        elif backend != "facs":
            raise SovtpError(f"unknown backend in system {text!r}")
        return cls.of(backend, opts)

    @classmethod
    def of(cls, backend: str, options: dict[str, Any]) -> SystemSpec:
        """A system named as tables show it, as ``sovtp query`` names it
        (:func:`sovtp.systems.system_name`): the backend, and the model's last path part."""
        name = system_name(backend, options.get("model") or options.get("ckpt"))
        return cls(name=name, backend=backend, options=options)


class BenchConfig(PrepareSettings):
    """A run: the prepare knobs (:class:`~sovtp.prepare.PrepareSettings`, embedded: each is
    declared there once, with its default, and kept flat in ``config.yaml``), and the run's own
    settings — data, prompts, systems, generation, engine, report."""

    data: str
    root: str | None = None
    # a manifest may name media outside its root only when the user says so (recorded here)
    allow_outside_root: bool = False
    split: str | None = None
    fold: int | None = None
    evaluator: str | None = None
    labels: str | None = None
    variants: list[str] = Field(default_factory=lambda: ["sovtp/full"])
    base_variant: str | None = None
    systems: list[SystemSpec] = Field(
        default_factory=lambda: [SystemSpec(name="facs", backend="facs")]
    )
    subject: str = "largest"
    limit: int | None = Field(None, ge=1)  # 0 would read as 'no limit': refused
    shuffle: bool = False
    chunk: int = Field(16, ge=1)  # the Ray engine's batch size (the local engine streams)
    workers: int | None = Field(
        None, ge=0
    )  # annotation processes (None: one per core; 0: in-process)
    concurrency: int | None = Field(
        None, ge=1
    )  # requests on the wire per endpoint (None: the system's own)
    timeout_s: float | None = Field(
        None, gt=0, allow_inf_nan=False
    )  # deadline on each whole request (None: the backend's own)
    max_retries: int | None = Field(
        None, ge=0
    )  # per request, for transient failures (None: the backend's)
    retry_errors: str = "transient"  # --resume asks again: transient error rows, or "all"
    structured: bool = True  # send the contract's constraint (False: words only)
    # test-time adaptation of the cnn:CKPT systems on the test stream, in sample order:
    # none | bn | tent | fisher:K (sovtp.baselines.tta); the run also writes tta.json
    tta: str = "none"
    max_tokens: int = Field(1024, ge=1)
    temperature: float = Field(0.0, ge=0, le=5, allow_inf_nan=False)
    gen_seed: int | None = 0
    engine: str = "local"
    response_cache: bool = True
    gallery: int = Field(12, ge=0)
    tier_by: str | None = None  # difficulty tiers: n_faces (default) or a manifest column
    n_boot: int = Field(1000, ge=10)  # bootstrap resamples (tests use few; reports 1000)
    out: str = "runs/bench"
    adapter_options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _user_errors(cls, data: Any, handler: Any) -> Any:
        """A setting refused by its own check (an unknown mode, no α) is the user's error
        (exit 2, one line naming it), as the CLI reports it."""
        try:
            return handler(data)
        except ValidationError as e:
            refused = [x for x in e.errors() if x["type"] == "value_error"]
            if refused and len(refused) == len(e.errors()):
                raise SovtpError("; ".join(str(x["ctx"]["error"]) for x in refused)) from None
            raise

    @field_validator("subject")
    @classmethod
    def _subject(cls, v: str) -> str:
        """largest | center | all | a face ID, refused when built (not at every sample)."""
        from sovtp.prompting.build import check_subject

        return check_subject(v)

    @field_validator("tta")
    @classmethod
    def _tta(cls, v: str) -> str:
        """One spelling per method (``BN`` → ``bn``), refused early when unknown."""
        from sovtp.baselines.tta import parse_method

        try:
            return str(parse_method(v))
        except ValueError as e:
            raise SovtpError(str(e)) from e


# -- what a run's answers depend on ------------------------------------------------------------
# System options that change how a request travels, never what comes back: a resume may change
# them freely (a server moved to another port, a longer timeout, more workers).
COSMETIC_OPTIONS = frozenset(
    {
        "base_url",
        "api_key",
        "concurrency",
        "adaptive",
        "max_concurrency",
        "max_retries",
        "timeout_s",
        "deadline_s",
        "backoff_s",
        "max_backoff_s",
        "batch_size",
        "device_map",
    }
)


def data_identity(cfg: BenchConfig) -> dict[str, Any]:
    """The data a run reads: where, which part, and — for a manifest file — its content hash
    (another manifest under the same name is another run)."""
    from pathlib import Path

    d: dict[str, Any] = {k: getattr(cfg, k) for k in DATA_FIELDS}
    p = Path(cfg.data)
    if p.is_file():
        from sovtp.annotate.cache import file_sha256

        d["sha256"] = file_sha256(p)
    return d


# Run settings that change how a run goes or how it is reported, never an answer.  Every other
# field is part of a run's identity — a field added later counts until it is listed here.
COSMETIC_FIELDS = frozenset(
    {
        "out",
        "workers",
        "concurrency",
        "timeout_s",
        "max_retries",
        "retry_errors",
        "chunk",
        "engine",
        "response_cache",
        "annotation_cache",
        "gallery",
        "tier_by",
        "n_boot",
        "base_variant",
    }
)
DATA_FIELDS = ("data", "root", "split", "fold", "limit", "shuffle", "seed", "adapter_options")
# fields added after runs were made: at their default they are left out of the identity, so an
# older run folder (whose identity never had them) still resumes
# (voice_alpha: runs made before the option anonymised at α 0.8, the default then; a run at
# today's 0.75 carries the field, so resuming an older run at 0.75 is refused, not mixed — and
# it is part of the identity only of runs whose prompts send audio; deid_mode: runs before it
# blurred, and it is part of the identity only of de-identified runs)
LATER_FIELDS: dict[str, Any] = {
    "allow_outside_root": False,
    "tta": "none",
    "hands": False,
    "voice_alpha": "0.8",
    "deid_mode": DEFAULT_MODE,
} | {  # and every prepare knob declared later (sovtp.prepare.later), at its default
    k: f.default
    for k, f in PrepareSettings.model_fields.items()
    if (f.json_schema_extra or {}).get("later")
}


def run_identity(
    cfg: BenchConfig, labels: Any, models: dict[str, str] | None = None
) -> dict[str, Any]:
    """Everything that changes a run's answers: the data (a manifest by its content hash),
    sampling, detectors, prompts by their hashes (output contract included), systems with their
    models, generation settings, labels — every config field not in ``COSMETIC_FIELDS`` — and
    nothing that only changes how fast answers come (concurrency, workers, timeouts, retries).
    ``models``: a system's resolved model where its config names none (a server's
    ``/v1/models``)."""
    from sovtp.annotate.mediapipe import DetectorConfig
    from sovtp.prompting.spec import load_spec

    models = models or {}
    systems = {}
    for s in cfg.systems:
        opts = {k: v for k, v in s.options.items() if k not in COSMETIC_OPTIONS}
        if models.get(s.name):
            opts["model"] = models[s.name]
        systems[s.name] = {"backend": s.backend, **opts}
    specs = [load_spec(v) for v in cfg.variants]
    sends_audio = any(sp.audio for sp in specs)
    rest = {
        k: v
        for k, v in cfg.model_dump().items()
        if k not in COSMETIC_FIELDS
        and k not in DATA_FIELDS
        and k not in ("variants", "systems")
        and not (k in LATER_FIELDS and v == LATER_FIELDS[k])
        and not (k == "voice_alpha" and not sends_audio)  # no audio leaves: α changes nothing
        and not (k == "deid_mode" and not cfg.deid)  # nothing is obscured: the mode changes nothing
    }
    return {
        "data": data_identity(cfg),
        "labels": {"name": labels.name, "labels": list(labels.labels)},
        "detector": DetectorConfig(max_faces=cfg.max_faces, pose=cfg.pose, hands=cfg.hands).key(),
        "prompts": {sp.id: sp.hash for sp in specs},
        "systems": systems,
        "settings": rest,
    }
