"""The e-mail image proxy: only signed URLs, only public (or allowed) addresses, only raster images
of bounded size, and the image server never sees the reader's cookies or the page they read.

A real HTTP server on loopback plays the sender's image server; the test settings allow loopback
(tests/conftest.py), except where a test takes that away."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hub.mail.image_proxy import MAX_BYTES, sign
from hub.models import User
from tests.servers import self_signed_certificate
from web.images import proxy_url

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@dataclass
class ImageServer:
    port: int
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def image_server() -> Iterator[ImageServer]:
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {
        "/pixel.png": (200, {"Content-Type": "image/png"}, PNG),
        "/page.html": (200, {"Content-Type": "text/html"}, b"<script>alert(1)</script>"),
        "/drawing.svg": (200, {"Content-Type": "image/svg+xml"}, b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
        "/huge.png": (200, {"Content-Type": "image/png"}, PNG + b"\0" * MAX_BYTES),
        "/redirect": (302, {"Location": "/pixel.png"}, b""),
        "/loop": (302, {"Location": "/loop"}, b""),
        "/inside": (302, {"Location": "http://10.11.12.13/pixel.png"}, b""),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            if self.path == "/huge-stream.png":
                # No Content-Length: the body ends when the connection closes, so only counting stops it.
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Connection", "close")
                self.end_headers()
                for _ in range(MAX_BYTES // 65536 + 2):
                    self.wfile.write(b"\0" * 65536)
                return
            status, headers, body = routes.get(self.path.split("?")[0], (404, {}, b""))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server = ImageServer(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def reader(
    client: FlaskClient, make_user: Callable[..., User], login: Callable[[FlaskClient, User], FlaskClient]
) -> FlaskClient:
    return login(client, make_user())


def signed(app: Flask, url: str) -> str:
    return f"/mail/image?url={quote(url, safe='')}&sig={sign(app.extensions['hub.settings'].secret_key, url)}"


def test_an_image_comes_through_without_cookies_or_referrer(
    app: Flask, reader: FlaskClient, image_server: ImageServer
) -> None:
    url = image_server.url("/pixel.png?id=1&u=tracker")
    response = reader.get(signed(app, url), headers={"Referer": "http://hub.example/emails/7"})

    assert response.status_code == 200
    assert response.data == PNG and response.mimetype == "image/png"
    assert response.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"].startswith("private")
    assert response.headers["Referrer-Policy"] == "no-referrer"
    [(path, headers)] = image_server.requests
    assert path == "/pixel.png?id=1&u=tracker"
    assert "cookie" not in headers and "referer" not in headers and "authorization" not in headers
    assert headers["host"] == f"127.0.0.1:{image_server.port}"


def test_the_url_the_frame_gets_is_accepted(app: Flask, reader: FlaskClient, image_server: ImageServer) -> None:
    with app.test_request_context():
        url = proxy_url(image_server.url("/pixel.png"))
    assert url.startswith("/mail/image?")
    assert reader.get(url).data == PNG


def test_only_signed_urls_are_fetched(app: Flask, reader: FlaskClient, image_server: ImageServer) -> None:
    url = image_server.url("/pixel.png")
    good = sign(app.extensions["hub.settings"].secret_key, url)
    other = image_server.url("/page.html")
    assert reader.get(f"/mail/image?url={quote(url, safe='')}").status_code == 400
    assert reader.get("/mail/image").status_code == 400
    assert reader.get(f"/mail/image?url={quote(url, safe='')}&sig=0000").status_code == 404
    # A signature is for its URL only.
    assert reader.get(f"/mail/image?url={quote(other, safe='')}&sig={good}").status_code == 404
    assert (
        reader.get(f"/mail/image?url={quote(url, safe='')}&sig={sign('another-secret-key-000', url)}").status_code
        == 404
    )
    assert image_server.requests == []


def test_login_is_required(app: Flask, client: FlaskClient, image_server: ImageServer) -> None:
    response = client.get(signed(app, image_server.url("/pixel.png")))
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert image_server.requests == []


def test_private_addresses_are_refused(app: Flask, reader: FlaskClient, image_server: ImageServer) -> None:
    settings = app.extensions["hub.settings"]
    app.extensions["hub.settings"] = settings.with_overrides(mail_allowed_hosts="")
    for url in (
        image_server.url("/pixel.png"),
        f"http://localhost:{image_server.port}/pixel.png",
        f"http://[::ffff:127.0.0.1]:{image_server.port}/pixel.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/pixel.png",
    ):
        assert reader.get(signed(app, url)).status_code == 502, url
    assert image_server.requests == []


def test_redirects_are_checked_and_bounded(app: Flask, reader: FlaskClient, image_server: ImageServer) -> None:
    assert reader.get(signed(app, image_server.url("/redirect"))).data == PNG
    # A public-looking start that redirects inside the network is refused at the redirect.
    assert reader.get(signed(app, image_server.url("/inside"))).status_code == 502
    assert reader.get(signed(app, image_server.url("/loop"))).status_code == 502
    assert [path for path, _ in image_server.requests].count("/loop") == 4  # the first try and 3 redirects


def test_the_allow_list_port_is_kept_across_redirects(
    app: Flask, reader: FlaskClient, image_server: ImageServer
) -> None:
    settings = app.extensions["hub.settings"]
    app.extensions["hub.settings"] = settings.with_overrides(mail_allowed_hosts=f"127.0.0.1:{image_server.port}")
    assert reader.get(signed(app, image_server.url("/pixel.png"))).data == PNG
    assert reader.get(signed(app, f"http://127.0.0.1:{image_server.port + 1}/pixel.png")).status_code == 502


@pytest.mark.parametrize("path", ["/page.html", "/drawing.svg", "/missing.png", "/huge.png", "/huge-stream.png"])
def test_only_raster_images_of_bounded_size(
    app: Flask, reader: FlaskClient, image_server: ImageServer, path: str
) -> None:
    response = reader.get(signed(app, image_server.url(path)))
    assert response.status_code == 502
    assert response.data == b""
    assert response.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x.png", "file:///etc/passwd", "javascript:alert(1)", "http:///x"])
def test_only_http_urls(app: Flask, reader: FlaskClient, url: str) -> None:
    assert reader.get(signed(app, url)).status_code == 502


@pytest.fixture
def tls_image_server(image_server: ImageServer, tmp_path: Path) -> Iterator[tuple[ImageServer, Path]]:
    """The same routes over https, with a certificate for "localhost" that nothing trusts by default."""
    cert_path, key_path = self_signed_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            image_server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield ImageServer(httpd.server_address[1], image_server.requests), cert_path
    httpd.shutdown()
    httpd.server_close()


def test_https_images_check_the_certificate_against_the_name(
    app: Flask, reader: FlaskClient, tls_image_server: tuple[ImageServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, cert_path = tls_image_server
    url = f"https://localhost:{server.port}/pixel.png"
    # Untrusted certificate: refused (the connection goes to the checked address, the name to TLS).
    assert reader.get(signed(app, url)).status_code == 502
    assert server.requests == []

    default_context = ssl.create_default_context

    def trusting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        context = default_context(*args, **kwargs)
        context.load_verify_locations(cert_path)
        return context

    monkeypatch.setattr(ssl, "create_default_context", trusting)
    response = reader.get(signed(app, url))
    assert response.status_code == 200 and response.data == PNG
    [(_path, headers)] = server.requests
    assert headers["host"] == f"localhost:{server.port}" and "cookie" not in headers and "referer" not in headers
    # The certificate names localhost, not 127.0.0.1: the same server by address is refused.
    assert reader.get(signed(app, f"https://127.0.0.1:{server.port}/pixel.png")).status_code == 502
