"""The reference page for bench/web.py: a trivial Flask app served by the same server as hub."""

from flask import Flask

app = Flask("trivial")


@app.route("/")
def index() -> str:
    return "hello"
