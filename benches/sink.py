#!/usr/bin/env python3
"""A minimal SMTP sink that records when each mail arrived (benches/run.sh, submit-to-mail latency).

Accepts everything, stores nothing but, per mail, the CLOCK_MONOTONIC time at which its final
"." arrived, formgate's message id (from `Message-ID: <formgate.verify.<id>.…>`) and the recipient.
Prints "listening" once bound; on SIGTERM writes `<ns> <message id> <recipient>` lines to --out.

    sink.py --listen 127.0.0.1:2526 --out arrivals.txt
"""

import argparse
import asyncio
import re
import signal
import time

MESSAGE_ID = re.compile(rb"^Message-ID:\s*<formgate\.[a-z]+\.(\d+)\.", re.IGNORECASE | re.MULTILINE)

arrivals = []


async def session(reader, writer):
    writer.write(b"220 bench-sink ESMTP\r\n")
    rcpt = b"?"
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-bench-sink\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n")
            elif verb == b"RCPT":
                rcpt = line.split(b":", 1)[1].strip().strip(b"<>")
                writer.write(b"250 2.1.5 Ok\r\n")
            elif verb == b"DATA":
                writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                await writer.drain()
                data = await reader.readuntil(b"\r\n.\r\n")
                at = time.monotonic_ns()
                head = data.split(b"\r\n\r\n", 1)[0]
                m = MESSAGE_ID.search(head)
                arrivals.append((at, m.group(1).decode() if m else "-", rcpt.decode(errors="replace")))
                writer.write(b"250 2.0.0 Ok: queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                await writer.drain()
                break
            else:  # HELO, MAIL, RSET, NOOP, …
                writer.write(b"250 Ok\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    host, port = args.listen.rsplit(":", 1)
    server = await asyncio.start_server(session, host, int(port), backlog=256)
    print("listening", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    with open(args.out, "w") as f:
        for at, mid, rcpt in arrivals:
            f.write(f"{at} {mid} {rcpt}\n")


if __name__ == "__main__":
    asyncio.run(main())
