"""Molecule verify helper: publish on a subject and print the server's permission error, if any.

Usage: molecule_nats_forge.py URL USER PASSWORD SUBJECT
Prints "violation: <error>" when nats-server refused the publish, "accepted" otherwise.
"""

import asyncio
import sys

import nats


async def main(url: str, user: str, password: str, subject: str) -> None:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    conn = await nats.connect(url, user=user, password=password, error_cb=on_error, connect_timeout=5,
                              max_reconnect_attempts=0)
    await conn.publish(subject, b'{"node_id": "forged"}')
    await conn.flush(timeout=5)
    for _attempt in range(50):  # the -ERR arrives asynchronously: wait up to 5 s for it
        if errors:
            break
        await asyncio.sleep(0.1)
    await conn.close()
    violations = [e for e in errors if "permissions violation" in e.lower()]
    print(f"violation: {violations[0]}" if violations else "accepted")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
