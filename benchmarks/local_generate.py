"""In-process generation: sovtp's transformers backend against a bare ``model.generate``, and
what the xgrammar constraint costs per token; plus the parse rates of each output contract with
and without the constraint on the shipped sample clip.

Model: SmolLM2-135M-Instruct (``smollm2-135m-instruct``, resolved and converted once by
sovtp.assets).  Both paths get the same prompt tokens and the same greedy settings, timed
alternately in one process (so machine load hits both alike); the ratio is tokens/s of sovtp
over tokens/s of the bare call (target >= 0.9).

    .venv/bin/python benchmarks/local_generate.py [--tokens 64] [--repeats 3] [--threads 1]
    .venv/bin/python benchmarks/local_generate.py --parse-rates [--max-tokens 160]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODEL = "smollm2-135m-instruct"


def _query(output: str = "staged"):
    """The sovtp/full prompt for the shipped sample clip (annotated with MediaPipe), text only."""
    from sovtp.media.sample import make_sample
    from sovtp.prepare import prepare
    from sovtp.prompting.spec import load_spec

    clip = make_sample(Path(tempfile.mkdtemp()) / "sample")
    q, _, _, _ = prepare(clip, load_spec("sovtp/full"), max_images=0)
    return q.model_copy(update={"output": output})


def speed(be, q, tokens: int, repeats: int) -> None:
    import torch

    from sovtp.backends import GenerationConfig
    from sovtp.backends.transformers_local import text_messages

    tok, model = be.tokenizer, be.hf_model
    conv, _ = text_messages(q.messages)
    ids = tok.apply_chat_template(
        [conv], add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    free = GenerationConfig(max_tokens=tokens, structured=False)
    bound = GenerationConfig(max_tokens=tokens, structured=True)
    t_bare, t_sovtp, t_con, n_bare, n_sovtp, n_con, masks = [], [], [], [], [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                **ids,
                max_new_tokens=tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
            )
        t_bare.append(time.perf_counter() - t0)
        n_bare.append(out.shape[1] - ids["input_ids"].shape[1])
        t0 = time.perf_counter()
        (r,) = be.generate([q], free)
        t_sovtp.append(time.perf_counter() - t0)
        n_sovtp.append(r.usage.completion_tokens)
        m0 = be.constraint_seconds
        t0 = time.perf_counter()
        (c,) = be.generate([q], bound)
        t_con.append(time.perf_counter() - t0)
        n_con.append(c.usage.completion_tokens)
        masks.append(be.constraint_seconds - m0)
    prompt = ids["input_ids"].shape[1]
    tps = [n / t for n, t in zip(n_bare, t_bare, strict=True)]
    tps_s = [n / t for n, t in zip(n_sovtp, t_sovtp, strict=True)]
    tps_c = [n / t for n, t in zip(n_con, t_con, strict=True)]
    med = statistics.median
    print(
        f"prompt {prompt} tokens; {repeats} alternating repeats; torch threads {torch.get_num_threads()}"
    )
    print(f"bare model.generate   {med(tps):7.2f} tokens/s  ({med(n_bare)} tokens)")
    print(f"sovtp (unconstrained) {med(tps_s):7.2f} tokens/s  ({med(n_sovtp)} tokens)")
    print(f"sovtp ({q.output}, xgrammar) {med(tps_c):7.2f} tokens/s  ({med(n_con)} tokens)")
    # per repeat (the runs of one repeat are adjacent in time, so they share the machine's load)
    pair = [b / a for a, b in zip(tps, tps_s, strict=True)]
    pair_c = [b / a for a, b in zip(tps_s, tps_c, strict=True)]
    print(
        f"ratio sovtp/bare            {med(pair):.3f}   (target >= 0.9; per repeat "
        f"{min(pair):.2f}..{max(pair):.2f})"
    )
    print(
        f"ratio constrained/free      {med(pair_c):.3f}   (per repeat "
        f"{min(pair_c):.2f}..{max(pair_c):.2f})"
    )
    per_tok = [1000 * m / max(n, 1) for m, n in zip(masks, n_con, strict=True)]
    print(f"grammar mask per token      {med(per_tok):.3f} ms (time inside the logits processor)")


def parse_rates(be, max_tokens: int) -> None:
    from sovtp.backends import GenerationConfig
    from sovtp.scoring.parse import predict

    print(f"parse status on the shipped sample clip (sovtp/full, max_tokens {max_tokens}):")
    print("| output | constrained | status | finish | tokens | label | seconds |")
    print("|---|---|---|---|---|---|---|")
    for output in ("staged", "json", "label", "text"):
        q = _query(output)
        for structured in (True, False):
            if output == "text" and structured:
                continue  # text is never constrained
            t0 = time.perf_counter()
            (r,) = be.generate([q], GenerationConfig(max_tokens=max_tokens, structured=structured))
            p = predict(r, q.labels, sample_id="s", system="smol", variant=output, output=output)
            print(
                f"| {output} | {'yes' if structured else 'no'} | {p.parse_status} | "
                f"{r.finish_reason} | {r.usage.completion_tokens} | {p.label} | "
                f"{time.perf_counter() - t0:.1f} |"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--output", default="json", help="the contract timed constrained")
    ap.add_argument("--parse-rates", action="store_true")
    ap.add_argument("--max-tokens", type=int, default=160)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    from sovtp.backends import get_backend

    be = get_backend("transformers", model=MODEL, device_map=None, dtype="float32")
    if a.parse_rates:
        parse_rates(be, a.max_tokens)
    else:
        speed(be, _query(a.output), a.tokens, a.repeats)


if __name__ == "__main__":
    main()
