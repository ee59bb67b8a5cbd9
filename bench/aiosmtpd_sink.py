"""A discarding aiosmtpd server for the benchmarks (the slow-server case).

Started by bench/sinks.ts as `/usr/bin/python3 bench/aiosmtpd_sink.py`. It binds
127.0.0.1 port 0, prints one JSON line {"port": N} and serves until SIGTERM or until
its parent goes away. Every message is accepted and dropped.
"""

import asyncio
import json
import os
import signal
import sys

from aiosmtpd.smtp import SMTP


class Discard:
    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 OK"


def main():
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    handler = Discard()
    server = loop.run_until_complete(
        loop.create_server(
            lambda: SMTP(handler, loop=loop, decode_data=False, hostname="aiosmtpd.bench", auth_exclude_mechanism=["PLAIN", "LOGIN"]),
            host="127.0.0.1",
            port=0,
        )
    )
    stop = loop.create_future()

    def on_signal():
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    parent = os.getppid()

    async def orphan_watchdog():
        while not stop.done():
            if os.getppid() != parent:
                on_signal()
                return
            await asyncio.sleep(1)

    watchdog = loop.create_task(orphan_watchdog())
    sys.stdout.write(json.dumps({"port": server.sockets[0].getsockname()[1]}) + "\n")
    sys.stdout.flush()
    loop.run_until_complete(stop)
    watchdog.cancel()
    server.close()
    loop.close()


if __name__ == "__main__":
    main()
