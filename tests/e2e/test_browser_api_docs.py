"""The API's interactive docs render in a real Chromium from hub's own files: no CDN, no CSP errors."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect


def test_api_docs_render_offline_under_a_strict_policy(browser: Any, live_url: str) -> None:
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None)
    outside: list[str] = []
    page.on("request", lambda request: outside.append(request.url) if not request.url.startswith(live_url) else None)
    response = page.goto(f"{live_url}/api/v1/docs")
    assert response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    assert "unsafe-inline" not in response.headers["content-security-policy"].split("script-src")[1].split(";")[0]
    # Swagger UI has read the generated document and lists its operations.
    expect(page.locator(".opblock-summary-path").first).to_be_visible(timeout=20_000)
    assert page.locator(".opblock-summary-path", has_text="/relations").count() >= 1
    assert outside == [] and problems == []
    context.close()
