"""Offline batched inference with vLLM (``LLM.chat``), GPU only; extra ``vllm`` (own environment).

Structured output uses ``StructuredOutputsParams`` (``choice`` for label-only prompts, ``json``
schema otherwise) — the vLLM ≥ 0.12 API.  vllm is imported only when this backend is chosen.
"""

from __future__ import annotations

import time
from typing import Any

from sovtp.backends.base import BatchedBackend, Capabilities, GenerationConfig, query_constraint
from sovtp.errors import BackendError
from sovtp.records import Query, Response, Usage


class VLLMOfflineBackend(BatchedBackend):
    name = "vllm"

    def __init__(self, model: str, max_images: int = 8, **llm_kwargs: Any):
        try:
            from vllm import LLM
        except ImportError as e:
            raise BackendError(
                "the vllm backend needs vLLM (GPU only, its own environment): pip install 'sovtp[vllm]'"
            ) from e
        self.model = model
        self.capabilities = Capabilities(
            images_per_prompt=max_images, video=True, json_schema=True, choice=True
        )
        self.llm = LLM(model=model, limit_mm_per_prompt={"image": max_images}, **llm_kwargs)

    def sampling_params(self, q: Query, cfg: GenerationConfig):
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        c = query_constraint(q, cfg)
        structured = None if c is None else StructuredOutputsParams(**{c[0]: c[1]})
        return SamplingParams(
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
            seed=cfg.seed,
            stop=cfg.stop,
            structured_outputs=structured,
        )

    def _answer_batch(self, queries: list[Query], cfg: GenerationConfig) -> list[Response]:
        t0 = time.perf_counter()
        outs = self.llm.chat(
            [q.messages for q in queries],
            [self.sampling_params(q, cfg) for q in queries],
            use_tqdm=False,
        )
        per = (time.perf_counter() - t0) / max(len(queries), 1)
        rs = []
        for q, o in zip(queries, outs, strict=True):
            c = o.outputs[0]
            n_p = len(o.prompt_token_ids or [])
            n_c = len(c.token_ids)
            rs.append(
                Response(
                    query_id=q.id,
                    backend=self.name,
                    model=self.model,
                    text=c.text,
                    latency_s=per,
                    finish_reason=c.finish_reason,
                    usage=Usage(prompt_tokens=n_p, completion_tokens=n_c, total_tokens=n_p + n_c),
                )
            )
        return rs
