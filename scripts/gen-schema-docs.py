#!/usr/bin/env python3
"""Write the fleet schema's tables into docs/inventory.md (between <!-- schema:NAME --> markers).

    scripts/gen-schema-docs.py           rewrite the tables
    scripts/gen-schema-docs.py --check   exit 1 when the doc is out of date (tests/unit/planner/test_fleet_schema.py)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.pmoves.fleet.plugins.module_utils.fleet_schema import docs_tables  # noqa: E402

DOC = REPO / "docs" / "inventory.md"


def render(text: str) -> str:
    for name, table in docs_tables().items():
        pattern = re.compile(rf"(<!-- schema:{name} -->\n).*?(<!-- /schema:{name} -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"{DOC}: no <!-- schema:{name} --> ... <!-- /schema:{name} --> block")
        text = pattern.sub(lambda m, t=table: m.group(1) + t + m.group(2), text)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    old = DOC.read_text()
    new = render(old)
    if args.check:
        return 0 if new == old else 1
    if new != old:
        DOC.write_text(new)
        print(f"wrote {DOC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
