"""Remote images of e-mails, fetched by hub instead of the reader's browser.

A sender's image server learns nothing about the reader (no IP address, cookies or Referer, and no
plain-http request leaving the browser), and the frame's policy can stay ``img-src 'self'``. The proxy
must not become a way into the network behind hub or an open proxy for anyone: a URL is only fetched
with hub's signature on it (made when the e-mail is shown), every address on the way (redirects too)
is checked with :mod:`hub.net`, and only a bounded amount of raster image comes back.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import time
from dataclasses import dataclass
from urllib.parse import urljoin

from hub.net import AddressRefused, NotAWebAddress, TooSlow, pinned_http

MAX_BYTES = 5 * 1024 * 1024
TIMEOUT_SECONDS = 5.0
MAX_REDIRECTS = 3
# Raster formats only: an SVG is a document that can carry scripts and links.
IMAGE_TYPES = {
    "image/avif",
    "image/bmp",
    "image/gif",
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/x-icon",
    "image/vnd.microsoft.icon",
}
_SIGNING_CONTEXT = b"hub mail image proxy\0"


class ImageRefused(Exception):
    """The image cannot or may not be fetched; the message says why (for logs: the browser only sees a
    broken image, the reader needs no reason for a sender's tracking pixel not loading)."""


@dataclass(frozen=True)
class Image:
    content_type: str
    data: bytes


def sign(secret_key: str, url: str) -> str:
    """The signature that lets the proxy fetch ``url`` (so that it fetches only what hub showed)."""
    return hmac.new(secret_key.encode(), _SIGNING_CONTEXT + url.encode(), hashlib.sha256).hexdigest()


def verify(secret_key: str, url: str, signature: str) -> bool:
    return hmac.compare_digest(sign(secret_key, url), signature)


def fetch_image(
    url: str,
    *,
    allowed_hosts: str,
    max_bytes: int = MAX_BYTES,
    timeout: float = TIMEOUT_SECONDS,
    max_redirects: int = MAX_REDIRECTS,
) -> Image:
    """Fetch a raster image from a public address; raises :class:`ImageRefused`.

    No cookies, no Referer, no credentials from the URL are sent. Each redirect target is checked
    like the first URL; the whole fetch, redirects included, ends after ``timeout`` seconds (a server
    that drips its headers or body cannot hold a web worker: hub.net cuts every wait to the time left).
    """
    deadline = time.monotonic() + timeout
    for _hop in range(max_redirects + 1):
        status, location, content_type, data = _get(url, allowed_hosts, max_bytes, deadline)
        if status in (301, 302, 303, 307, 308) and location:
            url = urljoin(url, location)
            continue
        if status != 200:
            raise ImageRefused(f"The image server answered {status}.")
        if content_type not in IMAGE_TYPES:
            raise ImageRefused(f"Not an image hub shows ({content_type or 'no type'}).")
        return Image(content_type, data)
    raise ImageRefused("Too many redirects.")


def _get(url: str, allowed_hosts: str, max_bytes: int, deadline: float) -> tuple[int, str, str, bytes]:
    """One GET: (status, Location, content type, body); the body only for a 200."""
    timeout = _remaining(deadline)
    try:
        connection, path = pinned_http(url, allowed_hosts, timeout, deadline)
    except NotAWebAddress:
        raise ImageRefused("Only http and https images are fetched.") from None
    except AddressRefused as refused:
        raise ImageRefused(str(refused)) from None
    except (OSError, ValueError, UnicodeError) as exc:
        raise ImageRefused("The image server cannot be found.") from exc
    try:
        # Only these headers (and Host): no Cookie, no Referer, no Authorization from user:pass@ in the URL.
        connection.request("GET", path, headers={"User-Agent": "hub-image-proxy", "Accept": "image/*"})
        response = connection.getresponse()
        content_type = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
        if response.status != 200:
            return response.status, response.getheader("Location") or "", content_type, b""
        length = response.getheader("Content-Length")
        if length and length.isdigit() and int(length) > max_bytes:
            raise ImageRefused(f"The image is larger than {max_bytes} bytes.")
        data = _read(response, max_bytes, deadline)
        return 200, "", content_type, data
    except TooSlow as exc:  # (a server dripping its answer: the fetch's deadline is the connection's)
        raise ImageRefused("The image server is too slow.") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise ImageRefused("The image server cannot be reached.") from exc
    finally:
        connection.close()


def _read(response: http.client.HTTPResponse, max_bytes: int, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise ImageRefused("The image server is too slow.")
        chunk = response.read1(64 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise ImageRefused(f"The image is larger than {max_bytes} bytes.")
        chunks.append(chunk)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ImageRefused("The image server is too slow.")
    return left
