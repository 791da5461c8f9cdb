"""Options shared by the commands: one declaration (type, flag, help) per option, one meaning.

Every command module imports its options from here, so ``--seed`` or ``--max-faces`` cannot mean
one thing in ``query`` and another in ``bench``.  Nothing heavy is imported.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from copy import copy
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from sovtp.baselines.train import TrainConfig
from sovtp.contracts import OUTPUTS
from sovtp.deid.policy import DEFAULT_MODE, check_mode
from sovtp.errors import SovtpError

DEFAULT_MAX_FACES = 6
EXIT_CODES_HELP = (
    "Exit codes: 0 every row a valid answer; 3 some rows are errors or invalid answers (counts "
    "printed); 4 no valid answer (with the likely cause); 2 usage or input error; 130 "
    "interrupted (resume with --resume)."
)

# -- the samples ----------------------------------------------------------------------------------
Evaluator = Annotated[
    str | None, typer.Option("--evaluator", help="Evaluator spec (dfew, mafw, ... or a YAML).")
]
Split = Annotated[
    str | None,
    typer.Option("--split", help="Split (test, validation, ...; default: the evaluator's)."),
]
Fold = Annotated[
    int | None, typer.Option("--fold", help="Fold (DFEW/MAFW 1-5; default: the evaluator's).")
]
Root = Annotated[
    Path | None,
    typer.Option(
        "--root", help="Root the manifest's relative paths resolve under (default: its folder)."
    ),
]
GoldLabels = Annotated[
    str | None, typer.Option("--labels", help="Label set (default: the gold vocabulary).")
]

# -- prompting ------------------------------------------------------------------------------------
PromptId = Annotated[
    str, typer.Option("--prompt", "-p", help="Prompt spec ID (see `sovtp prompts list`).")
]
Labels = Annotated[
    str | None, typer.Option("--labels", help="Label set name (basic7, mafw11) or 'a,b,c'.")
]
Subject = Annotated[
    str,
    typer.Option(
        "--subject",
        help="Whose emotion: largest (default: the largest face on average) | center | "
        "a face ID | all (one answer per face).",
    ),
]
Transcript = Annotated[
    str | None, typer.Option("--transcript", help="What is said in the clip (quoted verbatim).")
]
NoStructured = Annotated[
    bool,
    typer.Option(
        "--no-structured",
        help="Describe the answer format in words only; send no schema/choice constraint "
        "(servers without structured outputs; see `sovtp doctor`).",
    ),
]
Seed = Annotated[
    int,
    typer.Option(
        "--seed",
        help="The one seed of a run: generation seed, sample shuffling, label shuffling.",
    ),
]


def deid_mode_option(value: str) -> str:
    """Typer callback of ``--deid-mode``: a mode :func:`sovtp.deid.faces.obscure` does not know
    is a usage error (exit 2), naming the choices, before any media is read."""
    if value is None:  # not given: the run config's (or the default) holds
        return value
    try:
        return check_mode(value, "--deid-mode")
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


DEID_MODE = DEFAULT_MODE


def check_deid_mode(deid: bool, deid_mode: str) -> None:
    """A mode other than the default without de-identification is refused (exit 2): without
    --deid nothing is obscured, and a researcher who asked for ``fill`` must not believe the
    faces that left were filled."""
    if deid_mode != DEID_MODE and not deid:
        raise SovtpError(
            f"--deid-mode {deid_mode} obscures nothing without --deid (faces would be sent as "
            "they are): add --deid"
        )


def alpha_option(value: str) -> str:
    """Typer callback of ``--alpha`` / ``--voice-alpha``: a bad value is a usage error (exit 2)
    before any media is read; a good one comes back in its one spelling (``0.75``, ``0.5-0.9``)."""
    if value is None:  # not given: the run config's (or the default) holds
        return value
    from sovtp.deid.voice import alpha_warning, format_alpha, parse_alpha

    try:
        alpha = parse_alpha(value)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    warning = alpha_warning(alpha)
    if warning:
        typer.echo(f"warning: {warning}", err=True)
    return format_alpha(alpha)


VOICE_ALPHA = "0.75"  # sovtp.deid.voice.DEFAULT_ALPHA, spelt as the option takes it

# -- backends ----------------------------------------------------------------------------------
Model = Annotated[
    str | None,
    typer.Option("--model", help="Model name on the server (default: its first /v1/models entry)."),
]
Hf = Annotated[
    str | None,
    typer.Option("--hf", help="Run a transformers model in-process (hub ID or folder)."),
]
BackendName = Annotated[
    str | None,
    typer.Option("--backend", help="facs (offline, default) | openai | transformers | vllm."),
]
Server = Annotated[
    str,
    typer.Option(
        "--server", help="openai | vllm (vllm: structured_outputs, the field vLLM reads)."
    ),
]
MaxTokens = Annotated[
    int, typer.Option("--max-tokens", help="Most tokens the model may answer with.")
]
Temperature = Annotated[float, typer.Option("--temperature", help="Sampling temperature.")]
Timeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        help="Seconds one request may take in all (connect, send, the whole answer).",
    ),
]
MaxRetries = Annotated[
    int,
    typer.Option(
        "--max-retries", help="Retries of a transient failure (5xx, 429, timeout, malformed)."
    ),
]


def backend_options(
    backend: str | None,
    base_url: str | list[str] | None,
    model: str | None,
    hf: str | None,
    **server_options,
) -> tuple[str, dict]:
    """Backend name and constructor options from --backend/--base-url/--model/--hf (shared by
    query, bench and ablate): a URL means openai, --hf means transformers, nothing means the
    offline FACS reasoner.  ``server_options`` (server, timeout_s, ...) go to openai.

    ``--model`` alone is refused: it names a model but not where it runs, and silently
    answering with the offline reasoner instead would be a lie."""
    if model and not (base_url or hf or backend):
        raise SovtpError(
            f"--model {model} needs a place to run it: --base-url URL (an OpenAI-compatible or "
            "vLLM server), --backend transformers (in-process) or --backend vllm (offline, GPU)"
        )
    name = backend or ("openai" if base_url else "transformers" if hf else "facs")
    if name == "openai":
        if not base_url:
            raise SovtpError("--backend openai needs --base-url")
        opts = {"base_url": base_url, **server_options}
        return name, opts | ({"model": model} if model else {})
    if name in ("transformers", "vllm"):
        if not (hf or model):
            raise SovtpError(f"--backend {name} needs --hf MODEL (or --model)")
        return name, {"model": hf or model}
    if name != "facs":
        raise SovtpError(f"unknown backend {name!r}: facs | openai | transformers | vllm")
    return name, {}


def out_folder(path: Path) -> Path:
    """An output folder the user named: refused cleanly when it is an existing file."""
    if path.exists() and not path.is_dir():
        raise SovtpError(f"--out {path} is a file; give a folder")
    return path


BaseUrl = Annotated[
    list[str] | None,
    typer.Option(
        "--base-url",
        help="OpenAI-compatible endpoint (vllm serve); repeat for several, load-balanced.",
    ),
]

# the options of a command that asks one model about media of its own (query, spot), with their
# defaults; bench and ablate take them too, with a run config's defaults (cli.bench.RUN_OPTIONS)
ASK_OPTIONS: dict[str, tuple[Any, Any]] = {
    "model": (Model, None),
    "hf": (Hf, None),
    "backend": (BackendName, None),
    "server": (Server, "openai"),
    "no_structured": (NoStructured, False),
    "temperature": (Temperature, 0.0),
    "timeout": (Timeout, 120.0),
    "max_retries": (MaxRetries, 2),
}


def ask_backend(ask: dict[str, Any], base_url: str | list[str] | None) -> tuple[str, dict]:
    """Backend name and constructor options from the :data:`ASK_OPTIONS` values and --base-url
    (see :func:`backend_options`)."""
    return backend_options(
        ask["backend"],
        base_url,
        ask["model"],
        ask["hf"],
        server=ask["server"],
        timeout_s=ask["timeout"],
        max_retries=ask["max_retries"],
    )


# -- the prepare knobs ---------------------------------------------------------------------------
# One option per sovtp.prepare.PrepareSettings field: its flag and help here, its type and default
# there (the field's); every command that prepares queries (prompt, query, bench, ablate) takes
# them all through @prepare_knobs.  A new prepare knob: a field there, an entry here.
PREPARE_KNOBS: dict[str, Any] = {
    "sampling": typer.Option(
        "--sampling",
        "-s",
        help="uniform:N | fps:F | indices:I,J,... | apex:N (strongest expression) | all",
    ),
    "max_faces": typer.Option(
        "--max-faces", help="Most faces to look for in a frame (whole frame)."
    ),
    "pose": typer.Option("--pose/--no-pose", help="Detect body pose (--no-pose: faster)."),
    "annotation_cache": typer.Option(
        "--cache/--no-cache", help="Reuse the annotation cache (--no-cache: detect again)."
    ),
    "au_source": typer.Option(
        "--au-source",
        help="mediapipe (blendshapes + landmark geometry) | pyfeat (calibrated; weights on disk).",
    ),
    "output": typer.Option(
        "--output",
        help=f"Answer contract ({' | '.join(OUTPUTS)}); default: the prompt spec's. staged: "
        "the five stages, then label (reason before answering); text: reasoning ending in "
        "'Final answer: <label>'; json: label first; label: one word.",
    ),
    "label_order": typer.Option(
        "--label-order",
        help="Order of the labels in the prompt: fixed | shuffled (seeded per sample) | reversed.",
    ),
    "image_size": typer.Option("--image-size", help="Longest side of each image sent, px."),
    "jpeg_quality": typer.Option("--jpeg-quality", help="JPEG quality of the images sent."),
    "deid": typer.Option(
        "--deid",
        help="De-identify before anything reaches a model: AUs and cues are measured on the raw "
        "media, then faces are blurred (and checked: a request whose image still shows a face "
        "is not sent), the transcript scrubbed, any audio sent only McAdams-anonymised.",
    ),
    "blur": typer.Option(
        "--blur",
        help="Under --deid, whose faces: all (default) | others (bystanders only; the "
        "subject's face kept, for studies that allow it).",
    ),
    "deid_mode": typer.Option(
        "--deid-mode",
        callback=deid_mode_option,
        help="Under --deid, how faces are obscured: blur (default) | pixelate | fill (each face "
        "box one flat grey: nothing of the face is left, nor of its expression). Every mode is "
        "checked before a request leaves.",
    ),
    "asr": typer.Option(
        "--asr",
        help="Transcribe the audio (faster-whisper, on this machine) where no transcript is "
        "given; the words enter the prompt as a variable (scrubbed under --deid).",
    ),
    "hands": typer.Option(
        "--hands/--no-hands",
        help="Track hands (MediaPipe HandLandmarker) for body-language cues: self-touch of face, "
        "neck or hair, fidgeting, with times. Costs about as much again as the face pass.",
    ),
    "voice_alpha": typer.Option(
        "--voice-alpha",
        callback=alpha_option,
        help="McAdams coefficient of the voice sent to an omni model: 0.75 (default), or a range "
        "LO-HI such as 0.5-0.9 for a random α per utterance, seeded by --seed. Matters only "
        "with a prompt that sends audio (audio is always sent anonymised, --deid or not); "
        "lower hides the voice more and costs more words.",
    ),
    "max_side": typer.Option(
        "--max-side",
        help="Cap the long side of every image sent to the model, px (default: no cap beyond "
        "--image-size); the marks are drawn for the size sent.",
    ),
}
# the knobs `sovtp annotate` (and spot) take as plain options, with their own defaults
Sampling = Annotated[str, PREPARE_KNOBS["sampling"]]
MaxFaces = Annotated[int, PREPARE_KNOBS["max_faces"]]
Cache = Annotated[bool, PREPARE_KNOBS["annotation_cache"]]
AuSource = Annotated[str, PREPARE_KNOBS["au_source"]]
Hands = Annotated[bool, PREPARE_KNOBS["hands"]]


def typed(ctx: typer.Context, name: str) -> bool:
    """Whether the user gave option ``name`` (on the command line or through the environment),
    as opposed to click filling in its default — a value typed equal to the default counts.
    (By the source's name: typer vendors its own copy of click's ``ParameterSource``.)"""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT", "PROMPT")


def given_options(ctx: typer.Context, params: dict[str, Any]) -> dict[str, Any]:
    """The options of ``params`` the user typed (see :func:`typed`), by parameter name."""
    return {k: v for k, v in params.items() if typed(ctx, k)}


def prepare_knobs(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command every prepare knob as an option (:data:`PREPARE_KNOBS`), each "not given"
    unless typed; the command receives the typed ones as ``knobs`` (field → value), to lay over
    a run config or the defaults (:class:`~sovtp.prepare.PrepareSettings`, shown in --help)."""
    from sovtp.prepare import PrepareSettings

    sig = inspect.signature(func, eval_str=True)
    params = [p for p in sig.parameters.values() if p.name != "knobs"]
    own_ctx = "ctx" in sig.parameters  # else a context is asked for, and not passed on
    if not own_ctx:
        params.append(
            inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
        )
    for name, info in PREPARE_KNOBS.items():
        field = PrepareSettings.model_fields[name]  # a knob is a field: its type and default
        info = copy(info)
        if field.default is not None and not isinstance(field.default, bool):
            info.show_default = str(field.default)
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[field.annotation | None, info],
            )
        )

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        values = {k: kwargs.pop(k, None) for k in PREPARE_KNOBS}
        ctx = kwargs["ctx"] if own_ctx else kwargs.pop("ctx")
        return func(*args, knobs=given_options(ctx, values), **kwargs)

    command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


def option(kind: Any, default: Any, *flags: str, **settings: Any) -> tuple[Any, Any]:
    """An entry of a :func:`shared_options` table declared in place: the option's type, its flags
    and settings (``typer.Option``'s: help, ...), and its default."""
    return Annotated[kind, typer.Option(*flags, **settings)], default


def shared_options(options: dict[str, tuple[Any, Any]], into: str) -> Callable[..., Any]:
    """Give a command the options several commands share, declared once: ``options`` maps a
    parameter name to its ``(Annotated type, default)``; they stand where the parameter ``into``
    stands (in ``--help`` too).  The command receives their values (typed or default) as that one
    dict — ``given_options`` still tells typed from default, since click records each
    parameter's source on the context."""

    def deco(func: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(func, eval_str=True)
        own = list(sig.parameters.values())
        at = [p.name for p in own].index(into)
        added = [
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotated
            )
            for name, (annotated, default) in options.items()
        ]
        after = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own[at + 1 :]]
        params = own[:at] + added + after

        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:
            values = {k: kwargs.pop(k) for k in options if k in kwargs}
            return func(*args, **{into: values}, **kwargs)

        command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return deco


# the knobs of CNN training that train and pad share: TrainConfig's names, and its defaults
_TRAIN = {f.name: f.default for f in fields(TrainConfig)}
TRAIN_OPTIONS: dict[str, tuple[Any, Any]] = {
    "epochs": option(
        int, _TRAIN["epochs"], help="Epochs: passes over the training crops (pad: per fold)."
    ),
    "batch_size": option(int, _TRAIN["batch_size"], help="Crops per step."),
    "lr": option(float, _TRAIN["lr"], help="AdamW learning rate (cosine decay)."),
    "size": option(int, _TRAIN["size"], help="Crop side in pixels."),
    "sampling": option(
        str,
        _TRAIN["sampling"],
        "--sampling",
        "-s",
        help="Frames per clip (as in bench; pad: --crops face).",
    ),
    "weights": option(
        str | None,
        _TRAIN["weights"],
        help="'imagenet' (MobileNetV2: pinned torchvision file), a state-dict path, "
        "or none: from scratch.",
    ),
    "seed": option(int, _TRAIN["seed"], help="Seed of every random draw."),
    "device": option(
        str | None, _TRAIN["device"], help="cpu, cuda, cuda:1 ... (default: cuda when present)."
    ),
    "freq": option(
        bool,
        _TRAIN["freq"],
        "--freq",
        help="Stack the crop's FFT high-pass with RGB as a 4th channel (liveness).",
    ),
}
