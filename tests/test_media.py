"""Decoding, sampling and bad-media handling on clips the tests build with PyAV."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sovtp.errors import MediaError
from sovtp.media import DecodeStats, Sampling, load_audio, load_frames, probe
from sovtp.media.sample import write_video


def _numbered_frames(n: int, w: int = 64, h: int = 48) -> list[np.ndarray]:
    """Frames whose brightness encodes their index (robust to lossy codecs): left half i % 32,
    right half i // 32."""
    out = []
    for i in range(n):
        img = np.zeros((h, w, 3), dtype=np.uint8)
        img[:, : w // 2] = (i % 32) * 7
        img[:, w // 2 :] = (i // 32) * 12
        out.append(img)
    return out


def _index_of(img: np.ndarray) -> int:
    w = img.shape[1]
    lo = float(img[:, 4 : w // 2 - 4].mean()) / 7
    hi = float(img[:, w // 2 + 4 : -4].mean()) / 12
    return int(round(lo)) + 32 * int(round(hi))


@pytest.mark.parametrize(
    "ext,codec",
    [
        ("mp4", "libx264"),
        ("avi", "mpeg4"),
        ("mov", "libx264"),
        ("mkv", "libx264"),
        ("webm", "libvpx-vp9"),
    ],
)
def test_video_containers_decode_with_index_and_timestamp(tmp_path, ext, codec):
    p = write_video(tmp_path / f"clip.{ext}", _numbered_frames(30), fps=10, codec=codec)
    frames = load_frames(p, "uniform:5")
    assert [f.index for f in frames] == [3, 9, 15, 21, 27]
    for f in frames:
        assert f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8
        assert abs(_index_of(f.image) - f.index) <= 1
        assert f.timestamp_s == pytest.approx(f.index / 10, abs=0.051)


def test_sampling_strategies(tmp_path):
    p = write_video(tmp_path / "c.mp4", _numbered_frames(40), fps=20)
    assert [f.index for f in load_frames(p, "all")] == list(range(40))
    assert [f.index for f in load_frames(p, "fps:5")] == [0, 4, 8, 12, 16, 20, 24, 28, 32, 36]
    got = load_frames(p, "indices:2,17,39")
    assert [f.index for f in got] == [2, 17, 39]
    assert [_index_of(f.image) for f in got] == [2, 17, 39]
    with pytest.raises(MediaError, match="beyond"):
        load_frames(p, "indices:40")
    with pytest.raises(ValueError, match="bad sampling"):
        Sampling.parse("every:3")


def test_apex_sampling_parses_but_needs_annotate_to_resolve(tmp_path):
    s = Sampling.parse(" APEX:8@120-300 ")
    assert (s.kind, int(s.value), s.window, str(s)) == ("apex", 8, (120, 300), "apex:8@120-300")
    assert Sampling.parse(str(Sampling.parse("apex:3"))).window is None
    for bad in ("apex:0", "apex:x", "apex:3@9-2", "apex:3@-1-4"):
        with pytest.raises(ValueError, match="bad sampling"):
            Sampling.parse(bad)
    p = write_video(tmp_path / "c.mp4", _numbered_frames(10), fps=10)
    with pytest.raises(ValueError, match="detection pass"):
        load_frames(p, "apex:3")  # choosing the frames needs faces: sovtp.annotate does it


def test_sparse_sampling_seeks_instead_of_decoding_everything(tmp_path):
    p = write_video(tmp_path / "long.mp4", _numbered_frames(600), fps=25, gop=25)
    stats = DecodeStats()
    frames = load_frames(p, "uniform:4", stats)
    assert [_index_of(f.image) for f in frames] == [f.index for f in frames] == [75, 225, 375, 525]
    assert stats.seeks >= 3
    assert stats.decoded < 150, f"decoded {stats.decoded} of 600 frames for 4 samples"


@pytest.mark.parametrize("ext", ["jpg", "png", "bmp", "webp"])
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_images_become_rgb(tmp_path, astronaut_png, ext, mode):
    if ext == "jpg" and mode == "RGBA":
        pytest.skip("JPEG has no alpha channel")
    im = Image.open(astronaut_png).convert(mode)
    p = tmp_path / f"a.{ext}"
    im.save(p)
    (frame,) = load_frames(p, "uniform:8")
    assert frame.image.shape == (512, 512, 3) and frame.index == 0
    assert probe(p).kind == "image"


def test_audio_track_to_numpy(tmp_path):
    import av

    p = tmp_path / "av.mp4"
    sr, freq = 16000, 440.0
    with av.open(str(p), "w") as out:
        vs = out.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        aus = out.add_stream("aac", rate=sr)
        aus.layout = "mono"
        t = np.arange(sr) / sr
        tone = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
        for k in range(0, sr, 1024):
            chunk = tone[k : k + 1024]
            af = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
            af.sample_rate = sr
            for pkt in aus.encode(af):
                out.mux(pkt)
        for pkt in aus.encode():
            out.mux(pkt)
        for img in _numbered_frames(10):
            for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
    assert probe(p).has_audio
    samples, rate = load_audio(p, 16000)
    assert rate == 16000 and samples.dtype == np.float32
    assert 0.9 * sr < len(samples) < 1.2 * sr
    spec = np.abs(np.fft.rfft(samples[2000:14000]))
    peak_hz = np.argmax(spec) * rate / len(samples[2000:14000])
    assert abs(peak_hz - freq) < 5


def test_bad_media_give_one_clear_error(tmp_path, pan_mp4):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    truncated = tmp_path / "truncated.mp4"
    data = pan_mp4.read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    audio_only = tmp_path / "voice.m4a"
    import av

    with av.open(str(audio_only), "w", format="mp4") as out:
        s = out.add_stream("aac", rate=16000)
        s.layout = "mono"
        af = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        af.sample_rate = 16000
        for pkt in list(s.encode(af)) + list(s.encode()):
            out.mux(pkt)
    cases = {
        empty: "empty",
        text: "not a readable",
        truncated: "",
        audio_only: "no video stream",
        tmp_path / "missing.mp4": "no such file",
    }
    for path, reason in cases.items():
        with pytest.raises(MediaError) as e:
            load_frames(path, "uniform:8")
        assert str(path) in str(e.value) and reason in str(e.value)
    with pytest.raises(MediaError, match="no audio stream"):
        load_audio(pan_mp4)
