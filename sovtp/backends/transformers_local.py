"""In-process vision LLMs with transformers: ``AutoModelForImageTextToText`` + ``AutoProcessor``.

The processor's chat template turns the OpenAI-style messages into the model's own format;
images go in as PIL images (decoded once from the query's data URLs).  Placement is accelerate's
``device_map`` (``"auto"`` spreads a large model over the GPUs and CPU); generation is batched
with left padding.
"""

from __future__ import annotations

import base64
import io
import time
from typing import Any

from sovtp.backends.base import BatchedBackend, Capabilities, GenerationConfig
from sovtp.errors import BackendError
from sovtp.records import Query, Response, Usage


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
            from transformers import AutoModelForImageTextToText, AutoProcessor
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
        try:
            self.processor = AutoProcessor.from_pretrained(
                model, trust_remote_code=trust_remote_code
            )
            kwargs = {"dtype": dtype, "trust_remote_code": trust_remote_code, **model_kwargs}
            if device_map is not None:
                kwargs["device_map"] = device_map
            self.hf_model = AutoModelForImageTextToText.from_pretrained(model, **kwargs).eval()
        except OSError as e:
            raise BackendError(f"cannot load {model!r} with transformers: {e}") from e
        tok = getattr(self.processor, "tokenizer", None)
        if tok is not None:
            tok.padding_side = "left"
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
        self.capabilities = Capabilities(
            images_per_prompt=8, video=False, json_schema=False, choice=False
        )

    def _answer_batch(self, queries: list[Query], cfg: GenerationConfig) -> list[Response]:
        import torch

        convs = [to_hf_messages(q.messages) for q in queries]
        t0 = time.perf_counter()
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
            gen["do_sample"] = False
        with torch.inference_mode():
            out = self.hf_model.generate(**inputs, **gen)
        n_in = inputs["input_ids"].shape[1]
        new = out[:, n_in:]
        texts = self.processor.batch_decode(new, skip_special_tokens=True)
        latency = (time.perf_counter() - t0) / len(queries)
        eos = getattr(self.hf_model.generation_config, "eos_token_id", None)
        eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        pad_id = self.processor.tokenizer.pad_token_id
        responses = []
        for i, q in enumerate(queries):
            toks = new[i].tolist()
            n_prompt = int(inputs["attention_mask"][i].sum())
            n_gen = sum(t != pad_id for t in toks)
            finish = "stop" if eos_ids & set(toks) else "length"
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
                )
            )
        return responses
