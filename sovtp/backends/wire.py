"""A chat request's body as the bytes that go on the wire, fast: ``json.dumps`` byte for byte,
with the images' base64 data URLs spliced in rather than run through the JSON encoder (they are
most of a body's bytes, and JSON writes base64 unchanged)."""

from __future__ import annotations

import json
import os
from typing import Any

# the bytes JSON writes as they are: printable ASCII but the quote and the backslash
_JSON_PLAIN = bytes(range(0x20, 0x7F)).replace(b'"', b"").replace(b"\\", b"")


def _spliceable(url: Any) -> bool:
    """A data URL that JSON would write unchanged (base64: printable ASCII, no quote or
    backslash), so its bytes can go into the body without the encoder's pass over them
    (``bytes.translate`` deletes the plain bytes: anything left needs escaping)."""
    return (
        isinstance(url, str)
        and url.startswith("data:")
        and url.isascii()
        and not url.encode("ascii").translate(None, _JSON_PLAIN)
    )


def wire_json(body: dict[str, Any]) -> bytes:
    """``json.dumps(body).encode()``, byte for byte, without JSON-encoding the images: each
    image part's data URL (two JPEGs are ~460 kB of base64, ~1 ms of the encoder per request)
    is swapped for a placeholder, the rest encoded, and the URLs' bytes spliced back in.  The
    placeholders carry a random nonce; should the encoded text hold one anyway (a prompt that
    quotes it), the body is encoded the plain way."""
    urls: list[str] = []
    nonce = os.urandom(8).hex()

    def mark(k: int) -> str:
        return f"@@sovtp-image-{nonce}-{k}@@"

    def swap(part: Any) -> Any:
        if isinstance(part, dict) and part.get("type") == "image_url":
            url = (part.get("image_url") or {}).get("url")
            if _spliceable(url):
                urls.append(url)
                return {**part, "image_url": {**part["image_url"], "url": mark(len(urls) - 1)}}
        return part

    messages = []
    for m in body.get("messages") or []:
        c = m.get("content") if isinstance(m, dict) else None
        messages.append({**m, "content": [swap(x) for x in c]} if isinstance(c, list) else m)
    text = json.dumps({**body, "messages": messages})
    if not urls:
        return text.encode()
    if any(text.count(mark(k)) != 1 for k in range(len(urls))):
        return json.dumps(body).encode()
    out: list[bytes] = []
    rest = text
    for k, url in enumerate(urls):
        head, rest = rest.split(mark(k), 1)
        out += [head.encode(), url.encode("ascii")]
    out.append(rest.encode())
    return b"".join(out)
