"""The e-mail image proxy: remote images of a message, fetched by hub for the reader's browser."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, request, url_for

from hub.mail.image_proxy import ImageRefused, fetch_image, sign, verify
from web.context import db_session, settings
from web.security import login_required

bp = Blueprint("images", __name__)
log = logging.getLogger(__name__)

# The image is the sender's content: it may do nothing, load nothing and be nothing but an image.
IMAGE_HEADERS = {
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def proxy_url(url: str) -> str:
    """Where the e-mail frame loads the remote image ``url`` from (for ``hub.mail.html.sanitise``)."""
    return url_for("images.image", url=url, sig=sign(settings().secret_key, url))


@bp.route("/mail/image")
@login_required
def image() -> Any:
    url, signature = request.args.get("url", ""), request.args.get("sig", "")
    if not url or not signature:
        return _refusal(400)
    if not verify(settings().secret_key, url, signature):
        # Only URLs hub put into an e-mail it showed (not an open proxy for anyone with a login);
        # any other URL is answered like something that does not exist.
        return _refusal(404)
    # The login check read the user; end that transaction now, not after a slow remote server.
    db_session().commit()
    try:
        fetched = fetch_image(url, allowed_hosts=settings().mail_allowed_hosts)
    except ImageRefused as refused:
        log.info("image proxy refused %s: %s", url, refused)
        return _refusal(502)
    response = Response(fetched.data, mimetype=fetched.content_type, headers=IMAGE_HEADERS)
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response


def _refusal(status: int) -> Response:
    # No reason in the body: a broken image is all the frame shows, and the log has the why.
    return Response(b"", status=status, mimetype="text/plain", headers=IMAGE_HEADERS)
