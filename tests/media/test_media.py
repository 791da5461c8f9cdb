"""Decoding, sampling and bad-media handling on clips the tests build with PyAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sovtp.errors import MediaError, SovtpError
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
    with pytest.raises(MediaError, match="beyond") as err:
        load_frames(p, "indices:40")
    assert str(p) in str(err.value) and "<clip>" not in str(err.value)  # which clip, by path
    frames_dir = tmp_path / "frames"  # a folder of frames names itself too
    frames_dir.mkdir()
    for i, f in enumerate(load_frames(p, "indices:0,1,2")):
        Image.fromarray(f.image).save(frames_dir / f"img_{i}.png")
    with pytest.raises(MediaError, match=f"cannot read media {frames_dir}: frame indices"):
        load_frames(frames_dir, "indices:5")
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


# --- what files really store: bit depth, palettes, alpha, orientation, VFR, size ---------------


def _grey(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64).mean(axis=2)


def _faces(detector, img: np.ndarray):
    return detector.detect(img, 0, 0.0).faces


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path, detector):
    """A 16-bit greyscale PNG (Pillow mode I;16) used to read as all white and show no face."""
    from sovtp.media.sample import astronaut

    ref = _grey(astronaut())
    grey16 = tmp_path / "grey16.png"
    Image.fromarray(np.rint(ref * 257).astype(np.uint16)).save(grey16)
    assert Image.open(grey16).mode == "I;16"
    (frame,) = load_frames(grey16)
    img = frame.image
    assert img.dtype == np.uint8 and img.shape == (512, 512, 3)
    assert np.abs(img[..., 0].astype(np.float64) - ref).max() <= 1.0  # scaled, not clipped
    assert len(_faces(detector, img)) == 1
    # 16-bit RGB (48-bit PNG, written by OpenCV): the 8-bit picture comes back
    import cv2

    rgb16 = tmp_path / "rgb16.png"
    cv2.imwrite(str(rgb16), (astronaut().astype(np.uint16) * 257)[..., ::-1])
    (frame,) = load_frames(rgb16)
    assert np.abs(frame.image.astype(int) - astronaut()).max() <= 1


def _expected_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha.astype(np.float64)[..., None] / 255
    return rgb.astype(np.float64) * a + 255 * (1 - a)


@pytest.mark.parametrize("mode", ["P", "P+transparency", "L", "LA", "RGBA", "I;16", "I"])
def test_palette_grey_and_alpha_pngs_become_the_picture_on_white(tmp_path, mode):
    from sovtp.media.sample import astronaut

    rgb = astronaut()
    grey = np.rint(_grey(rgb)).astype(np.uint8)
    alpha = np.full(grey.shape, 255, np.uint8)
    alpha[:, :128] = 0  # left quarter transparent
    alpha[:, 128:256] = 128  # then half
    p = tmp_path / ("x.tif" if mode == "I" else "x.png")  # PNG cannot hold 32-bit integers
    if mode in ("P", "P+transparency"):
        im = Image.fromarray(rgb).quantize(64)
        idx = np.asarray(im)
        pal = np.array(im.getpalette()[: 3 * 256], dtype=np.uint8).reshape(-1, 3)
        want = pal[idx].astype(np.float64)
        if mode == "P+transparency":
            im.info["transparency"] = int(idx[256, 256])
            im.save(p, transparency=int(idx[256, 256]))
            want[idx == idx[256, 256]] = 255
        else:
            im.save(p)
    elif mode == "L":
        Image.fromarray(grey).save(p)
        want = np.repeat(grey[..., None], 3, 2).astype(np.float64)
    elif mode == "LA":
        Image.fromarray(np.dstack([grey, alpha]), "LA").save(p)
        want = _expected_on_white(np.repeat(grey[..., None], 3, 2), alpha)
    elif mode == "RGBA":
        Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(p)
        want = _expected_on_white(rgb, alpha)
    else:  # 16-bit and 32-bit integer greyscale
        Image.fromarray(grey.astype(np.uint16) * 257).convert(mode).save(p)
        want = np.repeat(grey[..., None], 3, 2).astype(np.float64)
    (frame,) = load_frames(p)
    assert frame.image.dtype == np.uint8 and frame.image.shape == (512, 512, 3)
    assert np.abs(frame.image.astype(np.float64) - want).max() <= 1.0


def test_exif_orientation_is_applied(tmp_path, detector):
    """A phone JPEG stores the sensor's pixels and says 'rotate 90° clockwise to view'."""
    from sovtp.media.sample import astronaut

    upright = np.ascontiguousarray(astronaut()[:, 56:456])  # 512×400: not square
    stored = np.ascontiguousarray(np.rot90(upright, 1))  # lying on its side
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    p = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(p, quality=95, exif=exif)
    (frame,) = load_frames(p)
    assert frame.image.shape == upright.shape
    assert np.abs(frame.image.astype(int) - upright).mean() < 4
    assert probe(p).width == 400 and probe(p).height == 512
    (face,) = _faces(detector, frame.image)
    assert abs(face.head_pose[2]) < 25  # roll: upright, not lying at ±90°


@pytest.mark.parametrize("degrees,turn", [(90, -1), (-90, 1), (180, 2)])
def test_video_rotation_metadata_makes_frames_upright(tmp_path, detector, degrees, turn):
    import av

    from sovtp.media.sample import astronaut

    upright = np.ascontiguousarray(astronaut()[:, 56:456])  # 512×400
    stored = np.ascontiguousarray(np.rot90(upright, turn))
    p = tmp_path / f"phone{degrees}.mp4"
    with av.open(str(p), "w") as out:
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = stored.shape[1], stored.shape[0], "yuv420p"
        s.set_display_rotation(degrees)  # counter-clockwise, as a phone's display matrix says
        for _ in range(2):
            for pkt in s.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    info = probe(p)
    assert (info.width, info.height) == (400, 512)
    frames = load_frames(p, "uniform:2")
    assert all(f.image.shape == upright.shape for f in frames)
    assert np.abs(frames[0].image.astype(int) - upright).mean() < 8
    (face,) = _faces(detector, frames[0].image)
    assert abs(face.head_pose[2]) < 25


def _vfr_clip(path, times_ms: list[int], **options: str):
    """Frames numbered by brightness (``_index_of``), shown at irregular times (1 ms base);
    ``options``: the muxer's (``movflags="faststart"``: the index before the frames)."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w", options=options) as out:
        s = out.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.time_base = s.codec_context.time_base = Fraction(1, 1000)
        for img, t in zip(_numbered_frames(len(times_ms)), times_ms, strict=True):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = t, Fraction(1, 1000)
            for pkt in s.encode(f):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    return path


def test_variable_frame_rate_is_sampled_by_time(tmp_path):
    """4 frames a second apart, then a 30-frame burst in the last second: the average rate says
    ~7 fps, so frame numbers computed from it land on the wrong frames, and twice on one."""
    times = [0, 1000, 2000, 3000] + [4000 + round(i * 1000 / 30) for i in range(30)]
    p = _vfr_clip(tmp_path / "vfr.mp4", times)
    frames = load_frames(p, "uniform:8")
    stamps = [f.timestamp_s for f in frames]
    assert len(frames) == 8 and len(set(stamps)) == 8  # 8 distinct presentation times
    assert [_index_of(f.image) for f in frames] == [f.index for f in frames]  # index = frame no.
    for f in frames:
        assert f.timestamp_s == pytest.approx(times[f.index] / 1000, abs=1e-3)
    assert stamps[:4] == [0.0, 1.0, 2.0, 3.0]  # the sparse seconds are all sampled
    # fps:F picks the frame nearest each 1/F s: the sparse part has only whole seconds
    got = [round(f.timestamp_s, 3) for f in load_frames(p, "fps:2")]
    assert got == [0.0, 1.0, 2.0, 3.0, 4.0, 4.5]
    # indices count frames in presentation order
    got = load_frames(p, "indices:1,3,20")
    assert [(f.index, _index_of(f.image)) for f in got] == [(1, 1), (3, 3), (20, 20)]
    with pytest.raises(MediaError, match="beyond") as err:
        load_frames(p, "indices:1000")
    assert f"cannot read media {p}:" in str(err.value)


@pytest.mark.parametrize(
    ("times", "vfr"),
    [([round(i * 1000 / 30) for i in range(20)], False), ([0, 1000, 1030, 1060, 1500], True)],
)
def test_a_clip_whose_frames_are_cut_off_is_an_error_not_an_empty_sample(tmp_path, times, vfr):
    """The index promises frames, the file ends where they begin (a copy cut short): both the
    constant- and the variable-rate decoder find none — an error naming the file, never an
    empty list that a run would score as a sample with nothing to see."""
    from sovtp.media.video import is_vfr

    whole = _vfr_clip(tmp_path / "whole.mp4", times, movflags="faststart")
    import av

    with av.open(str(whole)) as c:  # the two cases take the two decoders
        assert is_vfr(c.streams.video[0]) == vfr
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: data.index(b"mdat") + 4])
    with pytest.raises(MediaError, match="no frame could be decoded"):
        load_frames(cut, "uniform:4")


def _png_header(path, width: int, height: int):
    """A PNG that claims width × height (RGB) but holds almost no data: a decompression bomb's
    header, which must be refused before anything is allocated."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def test_oversized_media_are_refused_by_a_pixel_cap(tmp_path, monkeypatch, astronaut_png):
    from sovtp.errors import MediaTooLargeError

    bomb = _png_header(tmp_path / "bomb.png", 20000, 20000)
    for read in (load_frames, probe):
        with pytest.raises(MediaTooLargeError, match="SOVTP_MAX_PIXELS"):
            read(bomb)
    big = _png_header(tmp_path / "big.png", 12000, 10000)  # 120 MP: under Pillow's own limit
    with pytest.raises(MediaTooLargeError, match="120.0 megapixels"):
        load_frames(big)
    # the cap from the environment, and a parameter that overrides it
    monkeypatch.setenv("SOVTP_MAX_PIXELS", "100000")
    with pytest.raises(MediaTooLargeError, match="512×512"):
        load_frames(astronaut_png)
    assert load_frames(astronaut_png, max_pixels=10**6)[0].image.shape == (512, 512, 3)
    clip = write_video(tmp_path / "c.mp4", _numbered_frames(5), fps=10)  # 64×48 = 3072 px
    assert len(load_frames(clip, "uniform:2")) == 2
    with pytest.raises(MediaTooLargeError, match="64×48"):
        load_frames(clip, "uniform:2", max_pixels=3000)
    with pytest.raises(MediaTooLargeError):
        probe(clip, max_pixels=3000)
    monkeypatch.setenv("SOVTP_MAX_PIXELS", "lots")
    with pytest.raises(SovtpError, match="SOVTP_MAX_PIXELS"):
        load_frames(astronaut_png)
    # a cap above Pillow's own bomb limit is honoured (Pillow's limit is lifted to match)
    monkeypatch.delenv("SOVTP_MAX_PIXELS")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert load_frames(astronaut_png)[0].image.shape == (512, 512, 3)


def test_a_rotated_phone_video_is_de_identified_upright(tmp_path):
    """`sovtp deid` on a video whose pixels are stored sideways: frames are turned upright
    before the face detectors look (a sideways face can escape them), and written upright."""
    import av

    from sovtp.deid.media import deid_media
    from sovtp.media.sample import astronaut

    upright = np.ascontiguousarray(astronaut()[:, 56:456])  # 512×400
    stored = np.ascontiguousarray(np.rot90(upright, -1))
    src = tmp_path / "phone.mp4"
    with av.open(str(src), "w") as out:
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = stored.shape[1], stored.shape[0], "yuv420p"
        s.set_display_rotation(90)
        for _ in range(3):
            for pkt in s.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    dst = tmp_path / "phone_deid.mp4"
    deid_media(src, dst, voice=False)
    frames = load_frames(dst, "all")
    assert frames and frames[0].image.shape[:2] == (512, 400)  # written upright
    # the face region (upper middle of the upright frame) is blurred away
    face = (slice(40, 220), slice(100, 300))
    diff = np.abs(frames[0].image[face].astype(int) - upright[face]).mean()
    assert diff > 15, diff


# --- only regular files are media --------------------------------------------------------------


def _special_files(tmp_path) -> dict:
    """A FIFO, a character device, a socket and a folder that holds no frame: path → the words
    its refusal must say."""
    import os
    import socket

    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    sock = tmp_path / "s.mp4"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(sock))
    srv.close()
    folder = tmp_path / "clipdir"
    folder.mkdir()
    os.mkfifo(folder / "00001.jpg")  # a FIFO named like a frame is no frame either
    return {
        fifo: "FIFO",
        Path("/dev/zero"): "character device",
        sock: "socket",
        folder: "no image frames",
    }


def test_fifos_devices_sockets_are_refused_before_any_read(tmp_path):
    """Opening a FIFO blocks until a writer comes and /dev/zero never ends: each reader (the
    cache's hash, video, image, audio) refuses them from ``stat`` with one line.  Each call runs
    in a thread that must finish within 10 s — a read would hang it."""
    from concurrent.futures import ThreadPoolExecutor

    from sovtp.annotate.cache import file_sha256
    from sovtp.media import load_image, probe

    readers = (file_sha256, probe, lambda p: load_frames(p, "uniform:2"), load_image, load_audio)
    with ThreadPoolExecutor(1) as pool:
        for path, words in _special_files(tmp_path).items():
            for read in readers:
                if read in (load_image, load_audio) and path.is_dir():
                    words = "is a directory"  # these two read single files only
                err = pool.submit(_refusal, read, path).result(timeout=10)
                assert str(path) in err and words in err and "\n" not in err, (read, err)


def _refusal(read, path) -> str:
    try:
        read(path)
    except MediaError as e:
        return str(e)
    raise AssertionError(f"{path} was read")


def test_a_media_size_cap_refuses_from_the_size(tmp_path, monkeypatch, astronaut_png):
    monkeypatch.setenv("SOVTP_MAX_MEDIA_BYTES", "1000")
    with pytest.raises(MediaError, match="over the 1000-byte cap"):
        load_frames(astronaut_png, "uniform:1")
    # a cap that is no number is a setting error naming the variable, not one unreadable file
    # (a MediaError would be swallowed as "no audio" or made one error row per sample)
    monkeypatch.setenv("SOVTP_MAX_MEDIA_BYTES", "lots")
    with pytest.raises(SovtpError, match="SOVTP_MAX_MEDIA_BYTES='lots' is not a number of bytes"):
        try:
            load_frames(astronaut_png, "uniform:1")
        except MediaError as e:
            raise AssertionError(f"read as a bad file: {e}") from e


@pytest.mark.slow
def test_a_bench_run_with_a_fifo_sample_ends_with_an_error_row(tmp_path, astronaut_png):
    """The reviewer's case: a FIFO as a sample's media hung ``bench`` forever.  Now that sample is
    an error row naming what the path is, the other samples run, and the run ends (a subprocess
    with a timeout: a hang fails the test instead of the suite)."""
    import json
    import os
    import subprocess
    import sys

    from sovtp.jsonl import iter_jsonl

    root = tmp_path / "root"
    root.mkdir()
    os.mkfifo(root / "pipe.mp4")
    (root / "empty").mkdir()
    Image.open(astronaut_png).resize((128, 128)).save(root / "face.png")
    rows = [("fifo", "pipe.mp4"), ("dir", "empty"), ("ok", "face.png")]
    (root / "m.jsonl").write_text(
        "".join(json.dumps({"id": i, "media": m, "label": "happy"}) + "\n" for i, m in rows)
    )
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "sovtp", "bench", str(root / "m.jsonl"), "-o", str(run)]
    cmd += ["-p", "ladder/plain", "-s", "uniform:1", "--no-report"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert r.returncode == 3, r.stderr[-2000:]  # the run ended, and says some rows are errors
    by = {p["sample_id"]: p for p in iter_jsonl(run / "predictions.jsonl")}
    assert "FIFO" in by["fifo"]["error"] and "no image frames" in by["dir"]["error"]
    assert by["ok"]["error"] is None and by["ok"]["label"] == "happy"
