"""An optional frequency channel for the CNN baselines (face presentation-attack detection).

Why: the traces a presentation attack leaves — halftone dots and moiré of a print, the
sub-pixel grid of a screen, the blocks of a re-encoded image — live in the high spatial
frequencies that RGB-trained backbones down-weight.  Spoof-detection CNNs therefore often read
a frequency view of the face next to its colours.  Here that view is the Gaussian **high-pass
of the crop's luminance**, computed with an FFT and brought back to the image plane (so it stays
aligned pixel for pixel with RGB), divided by the crop's luminance spread (contrast-invariant,
but a blurred copy still has less high-frequency energy than a sharp face), and **stacked with
RGB as a 4th input channel**.

How it plugs in without a second data path: :class:`FreqNet` wraps a backbone and takes the
same ImageNet-normalised RGB batch every model in :mod:`sovtp.baselines` takes — it derives the
4th channel itself, on the device, inside ``forward``.  The training loop, precise BN, the
predictor and the checkpoints (a wrapped model's state dict) are unchanged.  The backbone's first
convolution is widened from 3 to 4 input channels: the RGB filters keep their weights (ImageNet
ones included) and the new channel's weights start small (``init_std``), so a pretrained
network starts out computing what it computed before and learns how much to read the new view.

The hook :func:`build_model` offers: ``freq=True`` (see the module's ``build_freq_model``).
"""

from __future__ import annotations

from typing import Any

import torch  # this module is imported only when the channel is asked for
from torch import nn

from sovtp.baselines.models import IMAGENET_MEAN, IMAGENET_STD

DEFAULT_CUTOFF = 0.15  # cycles per pixel where the Gaussian high-pass reaches ~40 % gain
DEFAULT_INIT_STD = 1e-3


def highpass_luminance(rgb01: Any, cutoff: float = DEFAULT_CUTOFF) -> Any:
    """(B, 1, H, W): the Gaussian high-pass (``1 - exp(-r²/2c²)``, ``r`` in cycles per pixel)
    of the luminance of a (B, 3, H, W) batch in [0, 1], divided by each image's luminance
    standard deviation.  Computed in float32 whatever the autocast dtype (FFTs in bf16 are
    neither supported everywhere nor accurate)."""
    with torch.autocast(rgb01.device.type, enabled=False):
        x = rgb01.float()
        lum = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
        h, w = lum.shape[-2:]
        fy = torch.fft.fftfreq(h, device=x.device)
        fx = torch.fft.fftfreq(w, device=x.device)
        r2 = fy[:, None] ** 2 + fx[None, :] ** 2
        gain = 1.0 - torch.exp(-r2 / (2 * cutoff**2))
        hp = torch.fft.ifft2(torch.fft.fft2(lum) * gain).real
        spread = lum.flatten(1).std(dim=1).clamp_min(1e-3)[:, None, None]
        return (hp / spread).unsqueeze(1)


def _first_rgb_conv(model: Any) -> tuple[Any, str, Any]:
    """(parent module, attribute name, conv) of the first Conv2d reading 3 channels."""
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Conv2d) and mod.in_channels == 3:
            parent = model
            *path, last = name.split(".")
            for p in path:
                parent = getattr(parent, p)
            return parent, last, mod
    raise ValueError("the model has no Conv2d with 3 input channels to widen")


def widen_first_conv(model: Any, init_std: float = DEFAULT_INIT_STD, seed: int = 0) -> Any:
    """Replace the model's first 3-channel convolution with a 4-channel one (in place): RGB
    weights copied, the new channel's weights drawn from N(0, ``init_std``²) (seeded)."""
    parent, attr, old = _first_rgb_conv(model)
    new = nn.Conv2d(
        4,
        old.out_channels,
        old.kernel_size,
        old.stride,
        old.padding,
        old.dilation,
        old.groups,
        old.bias is not None,
        old.padding_mode,
    ).to(old.weight.device, old.weight.dtype)
    g = torch.Generator().manual_seed(seed)
    extra = torch.randn((old.out_channels, 1, *old.kernel_size), generator=g) * init_std
    with torch.no_grad():
        new.weight.copy_(torch.cat([old.weight, extra.to(old.weight)], dim=1))
        if old.bias is not None:
            new.bias.copy_(old.bias)
    if isinstance(parent, nn.Sequential) or attr.isdigit():
        parent[int(attr)] = new
    else:
        setattr(parent, attr, new)
    return model


class FreqNet(nn.Module):
    """``backbone(cat(rgb, highpass(rgb)))`` for an ImageNet-normalised RGB batch; the
    backbone's first convolution must read 4 channels (:func:`widen_first_conv`)."""

    def __init__(self, backbone: Any, cutoff: float = DEFAULT_CUTOFF) -> None:
        super().__init__()
        self.backbone = backbone
        self.cutoff = float(cutoff)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN)[None, :, None, None], False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD)[None, :, None, None], False)

    def frequency(self, x: Any) -> Any:
        """The 4th channel of a normalised batch (what the backbone reads next to RGB)."""
        return highpass_luminance(x.float() * self.std + self.mean, self.cutoff)

    def forward(self, x: Any) -> Any:
        f = self.frequency(x).to(x.dtype)
        return self.backbone(torch.cat([x, f], dim=1))


def with_freq_channel(
    model: Any, *, cutoff: float = DEFAULT_CUTOFF, init_std: float = DEFAULT_INIT_STD, seed: int = 0
) -> Any:
    """``model`` (a 3-channel backbone, its head already set) as a :class:`FreqNet`."""
    return FreqNet(widen_first_conv(model, init_std, seed), cutoff)


def build_freq_model(
    name: str,
    n_classes: int,
    weights: Any = None,
    *,
    size: int | None = None,
    freq: bool = True,
    cutoff: float = DEFAULT_CUTOFF,
    init_std: float = DEFAULT_INIT_STD,
    **kwargs: Any,
) -> tuple[Any, dict[str, Any]]:
    """:func:`sovtp.baselines.models.build_model` with the frequency channel added when
    ``freq``: same signature plus ``freq``/``cutoff``/``init_std``; the provenance records it.
    Weights load into the 3-channel backbone first, then the first convolution is widened."""
    from sovtp.baselines.models import build_model

    model, prov = build_model(name, n_classes, weights, size=size, **kwargs)
    if not freq:
        return model, prov
    prov = {**prov, "freq": freq_provenance(cutoff, init_std)}
    return with_freq_channel(model, cutoff=cutoff, init_std=init_std), prov


def freq_provenance(cutoff: float = DEFAULT_CUTOFF, init_std: float = DEFAULT_INIT_STD) -> dict:
    return {
        "channel": "FFT Gaussian high-pass of the crop's luminance / its std, 4th input",
        "cutoff_cycles_per_px": cutoff,
        "init_std": init_std,
    }
