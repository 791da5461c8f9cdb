"""CNN baseline throughput: sovtp's training and evaluation loops, with their real data path,
against a bare torch loop on the same model with the data already on the device.

    python benchmarks/cnn_throughput.py [--model mobilenet_v2] [--size 112] [--batch 16]
                                        [--steps 6,24] [--device cpu|cuda]

The data are real: a panning clip and stills made from skimage's astronaut, annotated through
the annotation cache (MediaPipe), the subject's face cut, eye-aligned and stored as uint8 crops
(:func:`sovtp.baselines.data.build_cropset`; the first pass and the cache-hit pass are timed
too).  Then, in one run and alternated (best of ``--repeat``):

- train: :func:`sovtp.baselines.train.fit` — uint8 crops moved to the device once, class-balanced
  indices, on-device augmentation (flip, affine, colour jitter), normalisation, AdamW, a cosine
  schedule, bf16 autocast + channels_last on CUDA, precise BN and a checkpoint per epoch —
  against a bare loop: a float tensor already normalised on the device, random indices,
  forward/backward/step;
- eval: :func:`sovtp.baselines.predict.predict_crops` against bare ``model(x)`` under
  ``inference_mode`` on the same pre-normalised tensor.

Images/s are per step (from two run lengths, so model building, the BN pass and the checkpoint
— fixed costs per call or per epoch — cancel) and per whole call.  Target: sovtp / bare ≥ 0.9.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _media(root: Path) -> list[Path]:
    from PIL import Image

    from sovtp.media.sample import astronaut, panning_clip, write_video

    img = astronaut()
    out = [write_video(root / "pan.mp4", panning_clip(2.0, 10))]
    for k, (size, flip) in enumerate([(256, False), (320, True), (288, False), (240, True)]):
        a = img[:, ::-1] if flip else img
        p = root / f"astro_{k}.png"
        Image.fromarray(np.asarray(Image.fromarray(a).resize((size, size)))).save(p)
        out.append(p)
    return out


def _crops(root: Path, size: int):
    from sovtp.baselines.data import build_cropset
    from sovtp.data.sample import Sample

    files = _media(root)
    samples = [Sample(f"s{i}", p, ["a", "b"][i % 2]) for i, p in enumerate(files)]
    t0 = time.perf_counter()
    build_cropset(samples, ["a", "b"], size, "uniform:16", progress=False)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    crops = build_cropset(samples, ["a", "b"], size, "uniform:16", progress=False)
    hit = time.perf_counter() - t0
    return crops, first, hit


def _sync(dev) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize()


def _bare_train(model_name, n_classes, x, y, batch, steps, dev, kwargs) -> float:
    """Seconds for ``steps`` bare training steps (data already normalised on the device)."""
    import torch
    import torch.nn.functional as F

    from sovtp.baselines.models import build_model

    t0 = time.perf_counter()
    model, _ = build_model(model_name, n_classes, **kwargs)
    cuda = dev.type == "cuda"
    model = model.to(dev, memory_format=torch.channels_last if cuda else torch.preserve_format)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    model.train()
    g = torch.Generator(device=dev).manual_seed(0)
    for _ in range(steps):
        ix = torch.randint(0, len(x), (batch,), generator=g, device=dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            loss = F.cross_entropy(model(x[ix]), y[ix])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(dev)
    return time.perf_counter() - t0


def _bare_eval(model, x, batch, dev) -> float:
    import torch

    t0 = time.perf_counter()
    with (
        torch.inference_mode(),
        torch.autocast(dev.type, torch.bfloat16, enabled=dev.type == "cuda"),
    ):
        for i in range(0, len(x), batch):
            model(x[i : i + batch])
    _sync(dev)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="mobilenet_v2")
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", default="6,24", help="two run lengths (steps), short,long")
    ap.add_argument("--eval-images", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's)")
    a = ap.parse_args()

    import torch

    from sovtp.baselines.data import CropSet
    from sovtp.baselines.predict import Loaded, predict_crops
    from sovtp.baselines.train import TrainConfig, fit, normalise, pick_device

    if a.threads:
        torch.set_num_threads(a.threads)
    dev = pick_device(a.device)
    k1, k2 = (int(s) for s in a.steps.split(","))
    with tempfile.TemporaryDirectory() as td:
        import os

        os.environ.setdefault("SOVTP_CACHE_DIR", str(Path(td) / "cache"))
        crops, first, hit = _crops(Path(td), a.size)
        print(
            f"device {dev} · {a.model} · {a.size}px · batch {a.batch} · torch threads "
            f"{torch.get_num_threads()}"
        )
        print(
            f"crops: {len(crops)} from {len(crops.ids)} samples · annotate+cut {first:.2f}s · "
            f"from the annotation cache {hit:.2f}s"
        )
        x_bare = normalise(crops.x.to(dev).float() / 255)
        if dev.type == "cuda":
            x_bare = x_bare.contiguous(memory_format=torch.channels_last)
        y_bare = crops.frame_y().to(dev)

        def sovtp_train(steps: int) -> float:
            cfg = TrainConfig(
                model=a.model,
                size=a.size,
                epochs=1,
                batch_size=a.batch,
                steps_per_epoch=steps,
                device=str(dev),
            )
            t0 = time.perf_counter()
            fit(crops, cfg, Path(td) / f"ck{steps}", progress=False)
            _sync(dev)
            return time.perf_counter() - t0

        def bare_train(steps: int) -> float:
            return _bare_train(a.model, 2, x_bare, y_bare, a.batch, steps, dev, {"size": a.size})

        best: dict[str, float] = {}
        for _ in range(a.repeat):  # alternate, so a busy moment hits both
            for name, fn in (("bare", bare_train), ("sovtp", sovtp_train)):
                for k in (k1, k2):
                    t = fn(k)
                    best[f"{name}{k}"] = min(best.get(f"{name}{k}", float("inf")), t)
        n_img = (k2 - k1) * a.batch
        rate = {n: n_img / (best[f"{n}{k2}"] - best[f"{n}{k1}"]) for n in ("bare", "sovtp")}
        whole = {n: k2 * a.batch / best[f"{n}{k2}"] for n in ("bare", "sovtp")}
        print(
            f"train images/s per step: sovtp {rate['sovtp']:.1f} · bare {rate['bare']:.1f} · "
            f"ratio {rate['sovtp'] / rate['bare']:.3f}  (target >= 0.9)"
        )
        print(
            f"train images/s per call ({k2} steps, incl. model build, precise BN, checkpoint): "
            f"sovtp {whole['sovtp']:.1f} · bare {whole['bare']:.1f} · "
            f"ratio {whole['sovtp'] / whole['bare']:.3f}"
        )

        # eval: the same crops repeated to --eval-images
        reps = -(-a.eval_images // len(crops))
        big = CropSet(
            crops.x.repeat(reps, 1, 1, 1)[: a.eval_images],
            torch.zeros(a.eval_images, dtype=torch.long),
            crops.y[:1],
            ["e"],
            crops.labels,
        )
        x_eval = x_bare.repeat(reps, 1, 1, 1)[: a.eval_images]
        from sovtp.baselines.models import build_model

        model, _ = build_model(a.model, 2, size=a.size)
        model.to(dev).eval()
        loaded = Loaded(model, list(crops.labels), {"size": a.size, "model": a.model}, dev, "cnn")
        ev: dict[str, float] = {}
        for _ in range(a.repeat + 1):
            for name, fn in (
                ("bare", lambda: _bare_eval(model, x_eval, 128, dev)),
                ("sovtp", lambda: _timed(lambda: predict_crops(loaded, big, batch_size=128), dev)),
            ):
                ev[name] = min(ev.get(name, float("inf")), fn())
        er = {n: a.eval_images / ev[n] for n in ev}
        print(
            f"eval images/s: sovtp {er['sovtp']:.1f} · bare {er['bare']:.1f} · "
            f"ratio {er['sovtp'] / er['bare']:.3f}  (target >= 0.9)"
        )


def _timed(fn, dev) -> float:
    t0 = time.perf_counter()
    fn()
    _sync(dev)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
