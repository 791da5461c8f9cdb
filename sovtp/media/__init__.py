"""Media in: decode videos and images, sample frames, read audio."""

from sovtp.media.audio import load_audio
from sovtp.media.image import load_image, max_pixels
from sovtp.media.sampling import Sampling
from sovtp.media.video import DecodeStats, MediaInfo, iter_frames, load_frames, probe

__all__ = [
    "DecodeStats",
    "MediaInfo",
    "Sampling",
    "iter_frames",
    "load_audio",
    "load_frames",
    "load_image",
    "max_pixels",
    "probe",
]
