"""Molecule verify helper: print the first message on a NATS subject as JSON, exit 1 on timeout.

Runs on the hub with the nats-py wheel on PYTHONPATH (a pure-Python wheel imports from the zip).
Usage: molecule_nats_sub.py URL USER PASSWORD SUBJECT TIMEOUT_S
"""

import asyncio
import json
import sys

import nats


async def main(url: str, user: str, password: str, subject: str, timeout: float) -> int:
    conn = await nats.connect(url, user=user, password=password, connect_timeout=5, max_reconnect_attempts=0)
    try:
        sub = await conn.subscribe(subject)
        msg = await sub.next_msg(timeout=timeout)
    except nats.errors.TimeoutError:
        print(f"no message on {subject} within {timeout} s", file=sys.stderr)
        return 1
    finally:
        await conn.close()
    print(json.dumps({"subject": msg.subject, "data": json.loads(msg.data)}))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))))
