#!/usr/bin/env python3
"""Hostile HTTP client for the web_hostile scenario, run on the host while
the guest runs (`Run` steps): each attack is one subcommand against
127.0.0.1:PORT (QEMU forwards it to the guest's web server), and prints one
line saying how the server answered. It exits non-zero only when it could
not attack at all (no connection), never because the server refused.

  http_hostile.py PORT garbage        # binary garbage, then a blank line
  http_hostile.py PORT long-header    # a 64 KiB header line
  http_hostile.py PORT half-open N S  # N connections, each half a request, held S seconds
"""

import random
import socket
import sys
import time


def connect(port, timeout=20.0):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def answer(sock):
    """The status code of the server's answer, 'closed' or 'reset'."""
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        if not data:
            return "reset"
    except socket.timeout:
        return "no answer (timeout)"
    if not data:
        return "closed"
    parts = data.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/"):
        return parts[1].decode("ascii", "replace")
    return "unreadable: %r" % data[:40]


def send(sock, data):
    """Sends what the server takes; False if it closed first."""
    try:
        sock.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


def garbage(port):
    rng = random.Random(13)
    sock = connect(port)
    junk = bytes(rng.randrange(256) for _ in range(4096))
    send(sock, junk + b"\r\n\r\n")
    print("garbage: answered", answer(sock))
    sock.close()


def long_header(port):
    sock = connect(port)
    head = b"GET / HTTP/1.1\r\nHost: arbor\r\nX-Long: " + b"a" * (64 * 1024) + b"\r\n\r\n"
    sent_all = send(sock, head)
    result = answer(sock)
    # The server answers 400 once one head's worth arrived and closes; the
    # rest may then be refused by a reset, which is a refusal too.
    refused = result in ("400", "431", "reset", "closed")
    print(
        "64 KiB header: %s (answered %s, %s)"
        % ("refused" if refused else "ACCEPTED", result, "all sent" if sent_all else "send cut off")
    )
    sock.close()


def half_open(port, count, hold):
    """Starts `count` connections at once (non-blocking), sends half a
    request on each that connects within 15 s, holds them `hold` seconds
    and closes them all."""
    import selectors

    selector = selectors.DefaultSelector()
    pending = 0
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        selector.register(sock, selectors.EVENT_WRITE)
        pending += 1
    made, refused = [], 0
    deadline = time.monotonic() + 15.0
    while pending and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.5):
            sock = key.fileobj
            selector.unregister(sock)
            pending -= 1
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 and send(
                sock, b"GET / HTTP/1.1\r\nHost: arbor\r\n"
            ):
                made.append(sock)
            else:
                refused += 1
                sock.close()
    for key in list(selector.get_map().values()):
        key.fileobj.close()
    print(
        "half-open: %d connection attempts, %d connected with half a request, %d refused, %d still pending"
        % (count, len(made), refused, pending)
    )
    time.sleep(hold)
    for sock in made:
        sock.close()
    print("half-open: all closed after %.1f s" % hold)


def main():
    port = int(sys.argv[1])
    attack = sys.argv[2]
    if attack == "garbage":
        garbage(port)
    elif attack == "long-header":
        long_header(port)
    elif attack == "half-open":
        half_open(port, int(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit("unknown attack " + attack)


if __name__ == "__main__":
    main()
