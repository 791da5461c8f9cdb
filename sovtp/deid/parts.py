"""Audio for omni models: an OpenAI / vLLM ``input_audio`` content part, always anonymised.

Why a type check instead of a flag: the part builder accepts only
:class:`~sovtp.deid.voice.AnonymisedAudio`, which only :func:`sovtp.deid.voice.anonymise` can
make, so no code path can hand it the raw voice.  Vision-only models get the audio as text cues
(:mod:`sovtp.deid.prosody`) instead.
"""

from __future__ import annotations

import base64

from sovtp.deid.voice import AnonymisedAudio
from sovtp.media.audio import resample, wav_bytes

PART_RATE = 16000  # what Whisper-style audio encoders (Qwen2.5-Omni, vLLM's audio models) expect


def input_audio_part(audio: AnonymisedAudio, rate: int = PART_RATE) -> dict:
    """``{"type": "input_audio", "input_audio": {"data": <base64 WAV>, "format": "wav"}}``.

    The anonymised samples are resampled to ``rate`` (16 kHz mono 16-bit PCM by default).
    """
    if not isinstance(audio, AnonymisedAudio):
        raise TypeError(
            "input_audio_part takes AnonymisedAudio (from sovtp.deid.voice.anonymise); "
            "raw audio never goes to a model"
        )
    x = resample(audio.samples, audio.rate, rate)
    data = base64.b64encode(wav_bytes(x, rate)).decode("ascii")
    return {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}
