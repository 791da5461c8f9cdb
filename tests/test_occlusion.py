"""Occlusion and presence: what hides a face, which AUs that leaves unmeasured, and shots."""

from __future__ import annotations

import json

from sovtp.types import ClipAnnotation, Face, FrameAnnotation


def test_occlusion_unmeasured_reference_and_shots_survive_the_json_round_trip():
    """annotations.json and the annotation cache store these fields; the cue writer reads them."""
    face = Face(
        track_id=1,
        bbox=(0, 0, 10, 10),
        occlusion={"mouth": "hand", "eyes": "dark glasses"},
        au_unmeasured={"AU17": "mouth open", "AU9": "head turned 52°"},
        au_reference="own neutral",
    )
    clip = ClipAnnotation(
        source="x",
        sha256="0",
        sampling="all",
        frames=[FrameAnnotation(index=0, timestamp_s=0.0, size=(10, 10), faces=[face])],
        shots=[(0, 3), (4, 9)],
    )
    back = ClipAnnotation.from_dict(json.loads(json.dumps(clip.to_dict(), ensure_ascii=False)))
    f = back.frames[0].faces[0]
    assert f.occlusion == {"mouth": "hand", "eyes": "dark glasses"}
    assert f.au_unmeasured == {"AU17": "mouth open", "AU9": "head turned 52°"}
    assert f.au_reference == "own neutral"
    assert back.shots == [(0, 3), (4, 9)]
    # an annotation written before these fields existed still loads
    old = clip.to_dict()
    del old["shots"]
    for k in ("occlusion", "au_unmeasured", "au_reference"):
        del old["frames"][0]["faces"][0][k]
    legacy = ClipAnnotation.from_dict(old)
    assert legacy.shots == [] and legacy.frames[0].faces[0].occlusion == {}
