"""The real CLI with every agent on the one scripted fake (a helper run as a subprocess, not a
test module):

    python tests/scripted_cli.py SCRIPT.json REQUESTS_OUT.json run --provider offline ...

``cvagents.cli.main`` runs in this process exactly as ``python -m cvagents`` runs it, except
that the offline provider the run puts its agents on is a ``ScriptedProvider`` (tests/fakes.py)
playing ``SCRIPT.json``: a list of ``{"agent": ..., "purpose": ..., "reply": ...}`` (agent and
purpose optional; a reply is a text, or a list of ``[tool name, arguments]``). Calls with no
scripted reply are answered as the offline provider would. On the way out every request the
fake received (system prompt and messages) is written to ``REQUESTS_OUT.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fakes import ScriptedProvider

from cvagents import cli, runner


def _reply(r):
    return [(name, args) for name, args in r] if isinstance(r, list) else r


def main(argv: list[str]) -> int:
    script, out, args = Path(argv[0]), Path(argv[1]), argv[2:]
    fake = ScriptedProvider.as_offline()
    for item in json.loads(script.read_text(encoding="utf-8")):
        fake.enqueue([_reply(item["reply"])], agent=item.get("agent"), purpose=item.get("purpose"))
    runner.OfflineProvider = lambda: fake  # type: ignore[assignment,misc]
    try:
        return cli.main(args)
    finally:
        seen = [
            {
                "agent": r.agent,
                "purpose": r.purpose,
                "system": r.system,
                "messages": [m.content for m in r.messages],
            }
            for r in fake.requests
        ]
        out.write_text(json.dumps(seen, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
