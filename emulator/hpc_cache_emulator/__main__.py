# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start the emulator: ``python -m hpc_cache_emulator [--scenario FILE] [--port N] [--tls]``.

Prints one line ``READY <url>`` when it serves, writes the same facts as JSON
to --ready-file, and stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import ssl
import sys
import tempfile
import threading
import typing as t

from .server import EmulatorServer
from .state import World


def load_scenario(path: t.Optional[str]) -> t.Dict[str, t.Any]:
    if not path:
        return {}
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if path.endswith((".yml", ".yaml")):
        import yaml  # pylint: disable=import-outside-toplevel

        return yaml.safe_load(text) or {}
    return json.loads(text)


def loopback_only(host: str) -> str:
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        if host == "localhost":
            return "127.0.0.1"
    raise argparse.ArgumentTypeError("the emulator binds to loopback addresses only, not %r" % host)


def main(argv: t.Optional[t.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="hpc_cache_emulator", description=__doc__)
    parser.add_argument("--host", type=loopback_only, default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--scenario", help="a JSON or YAML scenario file")
    parser.add_argument("--tls", action="store_true", help="serve https with a certificate made at start-up")
    parser.add_argument("--state-dir", help="where the certificate goes (default: a temporary folder)")
    parser.add_argument("--ready-file", help="write {url, ca_bundle, identity_header, ...} as JSON here when ready")
    args = parser.parse_args(argv)

    world = World(load_scenario(args.scenario))
    server = EmulatorServer((args.host, args.port), world, "https" if args.tls else "http")
    ca_bundle = None
    if args.tls:
        from .tls import make_certificate  # pylint: disable=import-outside-toplevel

        cert, key = make_certificate(args.state_dir or tempfile.mkdtemp(prefix="hpc-cache-emulator-"))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        ca_bundle = cert

    stop = threading.Event()

    def _stop(_signum: int, _frame: t.Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    facts = {"url": server.base_url, "ca_bundle": ca_bundle, "identity_header": world.identity_header,
             "msi_endpoint": server.base_url + "/msi/token", "pid": os.getpid()}
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(facts, handle)
        os.replace(tmp, args.ready_file)
    print("READY %s" % server.base_url, flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
