"""The CRM core imports no capability: capabilities hear about CRM changes through hub.crm.events."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CAPABILITIES = ("hub.mail", "hub.telephony", "hub.calendar", "hub.campaigns")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_crm_core_imports_no_capability() -> None:
    core = sorted((ROOT / "hub" / "crm").glob("*.py")) + sorted((ROOT / "hub" / "accounts").glob("*.py"))
    assert core, "the core's modules were not found"
    arrows = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in core
        for name in _imports(path)
        if name.startswith(CAPABILITIES)
    }
    assert arrows == set()


def test_the_mail_capability_hears_about_new_addresses() -> None:
    import hub.wiring  # noqa: F401  (what the first announcement loads)
    from hub.crm import events
    from hub.mail.links import link_mail_of_new_addresses

    assert link_mail_of_new_addresses in events._subscribers[events.AddressesAdded]
