"""docker-compose.yml wires the scale-out deployment, and Compose accepts it."""

from __future__ import annotations

import os
import shutil
import subprocess
from itertools import takewhile
from pathlib import Path

import yaml
from click.testing import CliRunner

from hub.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_has_every_part_and_runs_real_hub_commands() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat", "flower", "migrate"} <= set(services)
    for name in ("web", "worker", "beat", "flower", "migrate"):
        command = services[name]["command"]
        assert command[0] == "hub"
        # The command exists in the CLI the image installs.
        words = list(takewhile(lambda word: not word.startswith("-"), command[1:]))
        assert CliRunner().invoke(main, [*words, "--help"]).exit_code == 0, command
    assert "noeviction" in " ".join(services["redis"]["command"])


def test_compose_accepts_the_file() -> None:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is not installed: apt-get install docker-compose (.ci/run does this)"
    result = subprocess.run(
        [binary, "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "HUB_SECRET_KEY": "x" * 32},
    )
    assert result.returncode == 0, result.stderr
