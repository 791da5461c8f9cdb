"""In-process LLMs with transformers: ``AutoModelForImageTextToText`` + ``AutoProcessor`` for
vision LLMs, ``AutoModelForCausalLM`` + ``AutoTokenizer`` for text-only ones.

The processor's chat template turns the OpenAI-style messages into the model's own format;
images go in as PIL images (decoded once from the query's data URLs).  Placement is accelerate's
``device_map`` (``"auto"`` spreads a large model over the GPUs and CPU); generation is batched
with left padding.

A model without a vision tower (its config's type is not an image-text-to-text one, e.g.
SmolLM2) gets the prompt's text — cues, AUs, transcript, stage instructions — and no images: its
capabilities declare ``images_per_prompt=0`` (so a run prepares no images for it and an ablation
marks image-only rungs "not testable"), and each Response records in ``raw`` how many images it
saw (0) and dropped.

The output contract is enforced token by token with xgrammar (:mod:`.constrained`), from the
same JSON schema or choice list a served query sends to vLLM; ``--no-structured`` or ``--output
text`` leaves decoding free.  A name from :data:`sovtp.assets.HF_MODELS` (``smollm2-135m-instruct``)
resolves to its converted folder in the user cache.
"""

from __future__ import annotations

import base64
import io
import json
import time
from typing import Any

from sovtp.backends.base import BatchedBackend, Capabilities, GenerationConfig, query_constraint
from sovtp.errors import BackendError
from sovtp.records import Query, Response, Usage


def text_messages(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """OpenAI-style messages → plain-string messages for a text-only chat template, and how
    many images were left out (text parts are joined in order, one per line)."""
    out, dropped = [], 0
    for m in messages:
        content = m["content"]
        if isinstance(content, str):
            out.append({"role": m["role"], "content": content})
            continue
        texts = [p["text"] for p in content if p["type"] == "text"]
        dropped += sum(p["type"] == "image_url" for p in content)
        out.append({"role": m["role"], "content": "\n".join(texts)})
    return out, dropped


def has_vision(config: Any) -> bool:
    """Whether a model config is an image-text-to-text one (a vision tower to feed)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    return config.model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES


def local_model(model: str) -> str:
    """A model folder or hub ID as given, or the converted folder of a named asset."""
    from pathlib import Path

    from sovtp.assets import HF_MODELS, hf_model
    from sovtp.errors import ModelAssetError

    if model in HF_MODELS and not Path(model).exists():
        try:
            return str(hf_model(model))
        except ModelAssetError as e:
            raise BackendError(str(e)) from e
    return model


def to_hf_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI-style parts → transformers chat parts ({"type": "image", "image": PIL.Image})."""
    from PIL import Image

    out = []
    for m in messages:
        content = m["content"]
        if isinstance(content, str):
            out.append({"role": m["role"], "content": [{"type": "text", "text": content}]})
            continue
        parts = []
        for p in content:
            if p["type"] == "text":
                parts.append({"type": "text", "text": p["text"]})
            elif p["type"] == "image_url":
                url = p["image_url"]["url"]
                if not url.startswith("data:"):
                    raise BackendError("the transformers backend takes images as data URLs only")
                img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")
                parts.append({"type": "image", "image": img})
        out.append({"role": m["role"], "content": parts})
    return out


class TransformersBackend(BatchedBackend):
    """``trust_remote_code`` stays off unless asked for by that name (a run config's system
    options: ``trust_remote_code: true``): without it a model folder's or hub repo's own Python
    is refused by transformers, never run.  Weights load as safetensors, or weights-only."""

    name = "transformers"

    def __init__(
        self,
        model: str,
        device_map: str | dict | None = "auto",
        dtype: str = "auto",
        batch_size: int = 4,
        trust_remote_code: bool = False,
        **model_kwargs: Any,
    ):
        try:
            import torch  # noqa: F401
            from transformers import (
                AutoConfig,
                AutoModelForCausalLM,
                AutoModelForImageTextToText,
                AutoProcessor,
                AutoTokenizer,
            )
        except ImportError as e:
            raise BackendError(
                f"the transformers backend needs torch + transformers: pip install 'sovtp[hf]' ({e})"
            ) from e
        self.model = model
        self.batch_size = max(1, batch_size)
        if not isinstance(trust_remote_code, bool):  # a string such as "no" would read as yes
            raise BackendError(
                f"trust_remote_code must be true or false, not {trust_remote_code!r}"
            )
        if trust_remote_code:
            import logging

            logging.getLogger(__name__).warning(
                "%s: trust_remote_code is on: the model's own Python code will run", model
            )
        path = local_model(model)
        try:
            config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
            self.vision = has_vision(config)
            loader = AutoProcessor if self.vision else AutoTokenizer
            self.processor = loader.from_pretrained(path, trust_remote_code=trust_remote_code)
            kwargs = {"dtype": dtype, "trust_remote_code": trust_remote_code, **model_kwargs}
            if device_map is not None:
                kwargs["device_map"] = device_map
            auto = AutoModelForImageTextToText if self.vision else AutoModelForCausalLM
            self.hf_model = auto.from_pretrained(path, **kwargs).eval()
        except (OSError, ValueError) as e:
            raise BackendError(f"cannot load {model!r} with transformers: {e}") from e
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        eos = getattr(self.hf_model.generation_config, "eos_token_id", None)
        self.eos_ids = sorted(set(eos if isinstance(eos, list) else [eos]) - {None})
        self._grammars: Any = None
        self.constraint_seconds = 0.0  # time spent in the grammar mask (benchmarks read it)
        self.capabilities = Capabilities(
            images_per_prompt=8 if self.vision else 0,
            video=False,
            json_schema=True,
            choice=True,
        )

    def grammars(self) -> Any:
        """The xgrammar compiler for this model's tokenizer, made on first use."""
        if self._grammars is None:
            from sovtp.backends.constrained import Grammars

            vocab = int(self.hf_model.config.get_text_config().vocab_size)
            self._grammars = Grammars(self.tokenizer, max(vocab, len(self.tokenizer)), self.eos_ids)
        return self._grammars

    def _answer_batch(self, queries: list[Query], cfg: GenerationConfig) -> list[Response]:
        # one generate call per distinct constraint: a grammar is compiled once and shared
        groups: dict[str, list[int]] = {}
        keyed = []
        for i, q in enumerate(queries):
            c = query_constraint(q, cfg)
            key = json.dumps(c, sort_keys=True)
            groups.setdefault(key, []).append(i)
            keyed.append(c)
        out: list[Response | None] = [None] * len(queries)
        for idx in groups.values():
            for i, r in zip(
                idx, self._generate([queries[i] for i in idx], keyed[idx[0]], cfg), strict=True
            ):
                out[i] = r
        return out  # type: ignore[return-value]

    def _generate(
        self, queries: list[Query], constraint: tuple[str, Any] | None, cfg: GenerationConfig
    ) -> list[Response]:
        import torch

        t0 = time.perf_counter()
        if self.vision:
            convs, dropped = [to_hf_messages(q.messages) for q in queries], [0] * len(queries)
        else:
            pairs = [text_messages(q.messages) for q in queries]
            convs, dropped = [c for c, _ in pairs], [d for _, d in pairs]
        inputs = self.processor.apply_chat_template(
            convs,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            padding=True,
        )
        inputs = inputs.to(self.hf_model.device)
        gen: dict[str, Any] = {"max_new_tokens": cfg.max_tokens}
        if cfg.temperature > 0:
            gen.update(do_sample=True, temperature=cfg.temperature)
            if cfg.seed is not None:
                torch.manual_seed(cfg.seed)
        else:
            gen.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if cfg.stop:
            gen.update(stop_strings=cfg.stop, tokenizer=self.tokenizer)
        proc = None
        if constraint is not None:
            from sovtp.backends.constrained import within_budget

            g = self.grammars()
            kind, value = constraint
            if kind == "json":  # free strings share the token budget (see .constrained)
                value = within_budget(value, cfg.max_tokens)
            proc = g.processor(g.compile(kind, value))
            gen["logits_processor"] = [proc]
        with torch.inference_mode():
            out = self.hf_model.generate(**inputs, **gen)
        if proc is not None:
            self.constraint_seconds += proc.seconds
        n_in = inputs["input_ids"].shape[1]
        new = out[:, n_in:]
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        latency = (time.perf_counter() - t0) / len(queries)
        eos_ids = set(self.eos_ids)
        pad_id = self.tokenizer.pad_token_id
        responses = []
        for i, q in enumerate(queries):
            toks = new[i].tolist()
            n_prompt = int(inputs["attention_mask"][i].sum())
            # generated tokens: up to and including the first end-of-sequence token
            ends = [k for k, t in enumerate(toks) if t in eos_ids]
            n_gen = ends[0] + 1 if ends else sum(t != pad_id for t in toks)
            finish = "stop" if ends else "length"
            responses.append(
                Response(
                    query_id=q.id,
                    backend=self.name,
                    model=self.model,
                    text=texts[i].strip(),
                    latency_s=latency,
                    finish_reason=finish,
                    usage=Usage(
                        prompt_tokens=n_prompt,
                        completion_tokens=n_gen,
                        total_tokens=n_prompt + n_gen,
                    ),
                    raw={
                        "images_seen": 0 if not self.vision else _count_images(q),
                        "images_dropped": dropped[i],
                        "constraint": constraint[0] if constraint else None,
                    },
                )
            )
        return responses


def _count_images(q: Query) -> int:
    return sum(
        p.get("type") == "image_url"
        for m in q.messages
        if not isinstance(m["content"], str)
        for p in m["content"]
    )
