"""Datasets: a manifest format, adapters for official benchmark layouts, and HF datasets — all
streamed as :class:`~sovtp.data.sample.Sample` records whose media paths never leave their root."""

from sovtp.data.sample import Sample
from sovtp.data.sources import open_dataset

__all__ = ["Sample", "open_dataset"]
