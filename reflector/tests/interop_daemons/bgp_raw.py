#!/usr/bin/python3
"""A minimal BGP client for the interop tests: connects from SRC to DST:179, opens a session
(OPEN with 4-octet AS and IPv4 unicast, then KEEPALIVE), and once the peer's KEEPALIVE
arrives sends one deliberately malformed message chosen by CASE. Prints one JSON line with
the first NOTIFICATION the peer sends back (or why there was none).

usage: bgp_raw.py SRC DST ASN CASE
CASE: bad-marker | short-length | long-keepalive | bad-type
"""
import json
import socket
import struct
import sys
import time

MARKER = b"\xff" * 16


def msg(kind, body=b""):
    return MARKER + struct.pack("!HB", 19 + len(body), kind) + body


def open_msg(asn, router_id):
    caps = b""
    caps += b"\x01\x04\x00\x01\x00\x01"  # multiprotocol IPv4 unicast
    caps += b"\x41\x04" + struct.pack("!I", asn)  # 4-octet AS
    params = b"\x02" + bytes([len(caps)]) + caps
    my_as = asn if asn < 65536 else 23456
    body = struct.pack("!BHH", 4, my_as, 90) + socket.inet_aton(router_id)
    body += bytes([len(params)]) + params
    return msg(1, body)


def read_msg(sock, deadline):
    buf = b""
    while len(buf) < 19:
        sock.settimeout(max(0.1, deadline - time.time()))
        chunk = sock.recv(19 - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    length, kind = struct.unpack("!HB", buf[16:19])
    body = b""
    while len(body) < length - 19:
        sock.settimeout(max(0.1, deadline - time.time()))
        chunk = sock.recv(length - 19 - len(body))
        if not chunk:
            raise EOFError("connection closed in a message body")
        body += chunk
    return kind, body


def main():
    src, dst, asn, case = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    deadline = time.time() + 15
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(5)
    s.connect((dst, 179))
    s.sendall(open_msg(asn, src))
    established = False
    bad = {
        "bad-marker": b"\x00" * 16 + struct.pack("!HB", 19, 4),
        "short-length": MARKER + struct.pack("!HB", 18, 4),
        "long-keepalive": MARKER + struct.pack("!HB", 20, 4) + b"\x00",
        "bad-type": MARKER + struct.pack("!HB", 19, 9),
    }[case]
    while time.time() < deadline:
        try:
            kind, body = read_msg(s, deadline)
        except (EOFError, socket.timeout, OSError) as e:
            print(json.dumps({"error": str(e), "established": established}))
            return
        if kind == 1:
            s.sendall(msg(4))
        elif kind == 4 and not established:
            established = True
            s.sendall(bad)
        elif kind == 3:
            print(json.dumps({
                "established": established,
                "code": body[0],
                "subcode": body[1],
                "data": body[2:].hex(),
            }))
            return
    print(json.dumps({"error": "timeout", "established": established}))


main()
