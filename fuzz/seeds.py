#!/usr/bin/env python3
"""Write hand-made seed inputs for the fuzz targets into corpus/<target>/seed-*.

Usage: python3 seeds.py [decode_message] [codec_stream]   (default: both)

Layout (see src/lib.rs): octet 0 = session context flags (bit 0 4-octet AS, bit 1 extended
message, bits 2..5 add-path for ipv4-unicast, ipv6-unicast, ipv4-multicast, ipv6-multicast);
codec_stream adds octet 1 = chunk size. Also turns the golden vectors captured from real
daemons (../bgp/tests/golden) into seeds. Run from the fuzz/ directory; `cargo fuzz cmin`
afterwards keeps only the seeds that add coverage.
"""
import os
import struct

MARKER = b"\xff" * 16


def msg(kind, body):
    return MARKER + struct.pack(">HB", 19 + len(body), kind) + body


def cap(code, value=b""):
    return bytes([code, len(value)]) + value


def param(caps):
    return bytes([2, len(caps)]) + caps


def open_body(asn, hold, bgp_id, params, version=4):
    return struct.pack(">BHH4sB", version, asn, hold, bytes(bgp_id), len(params)) + params


def attr(flags, code, value):
    if flags & 0x10:
        return struct.pack(">BBH", flags, code, len(value)) + value
    return struct.pack(">BBB", flags, code, len(value)) + value


def update(withdrawn=b"", attrs=b"", nlri=b""):
    return msg(2, struct.pack(">H", len(withdrawn)) + withdrawn
               + struct.pack(">H", len(attrs)) + attrs + nlri)


MP_V4 = cap(1, b"\x00\x01\x00\x01")
MP_V6 = cap(1, b"\x00\x02\x00\x01")
AS4 = cap(65, struct.pack(">I", 4200000001))
GR = cap(64, b"\x40\x78\x00\x01\x01\x80\x00\x02\x01\x00")
ADDPATH = cap(69, b"\x00\x01\x01\x03\x00\x02\x01\x01")
FQDN = cap(73, b"\x02r1\x03lab")

opens = [
    # BIRD style: everything in one parameter.
    open_body(23456, 240, [10, 0, 0, 1],
              param(MP_V4 + MP_V6 + cap(2) + cap(70) + cap(6) + AS4 + GR + ADDPATH)),
    # FRR style: one parameter per capability, Cisco route refresh, FQDN.
    open_body(65001, 180, [192, 0, 2, 1],
              b"".join(param(c) for c in [MP_V4, cap(128), cap(2), cap(70), AS4, ADDPATH,
                                          FQDN, GR, cap(6)])),
    # No capabilities.
    open_body(65002, 90, [10, 0, 0, 2], b""),
    # Unknown capability.
    open_body(65002, 0, [10, 0, 0, 2], param(cap(200, b"\x01\x02\x03"))),
]
ext_params = param(MP_V4 + cap(2))
ext_params = bytes([2]) + struct.pack(">H", len(ext_params) - 2) + ext_params[2:]
opens.append(struct.pack(">BHH4sBBH", 4, 65001, 90, bytes([10, 0, 0, 1]), 255, 255,
                         len(ext_params)) + ext_params)

origin = attr(0x40, 1, b"\x00")
as_path2 = attr(0x40, 2, b"\x02\x02\xfd\xe9\x5b\xa0")
as_path4 = attr(0x40, 2, b"\x02\x02" + struct.pack(">II", 65001, 4200000001))
as4_path = attr(0xc0, 17, b"\x02\x02" + struct.pack(">II", 65001, 4200000001))
next_hop = attr(0x40, 3, bytes([10, 0, 0, 1]))
med = attr(0x80, 4, struct.pack(">I", 100))
local_pref = attr(0x40, 5, struct.pack(">I", 100))
communities = attr(0xc0, 8, struct.pack(">II", 0xfde90001, 0xffffff01))
large = attr(0xc0, 32, struct.pack(">III", 65001, 1, 2))
mp_reach_v6 = attr(0x90, 14, b"\x00\x02\x01\x10" + bytes(15) + b"\x01" + b"\x00"
                   + b"\x40\xfd\x00\x00\x10\x02\x44\x00\x01")
mp_unreach_v6 = attr(0x90, 15, b"\x00\x02\x01" + b"\x40\xfd\x00\x00\x10\x02\x44\x00\x01")

updates = [
    (0, update()),  # End-of-RIB ipv4 unicast
    (0, update(attrs=origin + as_path2 + as4_path + next_hop + med + communities,
               nlri=b"\x18\x0a\xf4\x01\x18\x0a\xf4\x02")),
    (1, update(attrs=origin + as_path4 + next_hop + local_pref + large,
               nlri=b"\x18\x0a\xf4\x01")),
    (1, update(withdrawn=b"\x18\x0a\xf4\x01\x10\x0a\xf5")),
    (1, update(attrs=origin + as_path4 + mp_reach_v6 + local_pref)),
    (1, update(attrs=mp_unreach_v6)),
    # add-path ipv4 unicast (flags bit 2)
    (1 | 4, update(attrs=origin + as_path4 + next_hop,
                   nlri=b"\x00\x00\x00\x01\x18\x0a\xf4\x01\x00\x00\x00\x02\x18\x0a\xf4\x01")),
    # attribute errors (RFC 7606): bad ORIGIN value, bad flags
    (1, update(attrs=attr(0x40, 1, b"\x07") + as_path4 + next_hop, nlri=b"\x18\x0a\xf4\x01")),
    (1, update(attrs=attr(0x80, 1, b"\x00") + as_path4 + next_hop, nlri=b"\x18\x0a\xf4\x01")),
]

others = [
    msg(4, b""),
    msg(3, b"\x06\x02\x0bmaintenance"),
    msg(3, b"\x01\x02\x00\x0f"),
    msg(3, b"\x06\x01\x00\x02\x01\x00\x00\x03\xe8"),
    msg(5, b"\x00\x01\x00\x01"),
    msg(5, b"\x00\x02\x01\x01"),
    msg(5, b"\x00\x02\x02\x01"),
]


def write(target, name, data):
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


ADD_PATH_BITS = {(1, 1): 4, (2, 1): 8, (1, 2): 16, (2, 2): 32}


def golden_seeds():
    """The messages captured from BIRD, FRR, GoBGP and ExaBGP (bgp/tests/golden), each with
    the flags octet for the context it was captured in."""
    import json
    root = os.path.join("..", "bgp", "tests", "golden")
    manifest = os.path.join(root, "manifest.json")
    if not os.path.exists(manifest):
        return []
    seeds = []
    for v in json.load(open(manifest))["vectors"]:
        ctx = v["context"]
        flags = (1 if ctx["four_octet_as"] else 0) | (2 if ctx["extended_message"] else 0)
        for f in ctx["add_path"]:
            flags |= ADD_PATH_BITS.get((f["afi"], f["safi"]), 0)
        data = bytes.fromhex("".join(open(os.path.join(root, v["file"])).read().split()))
        name = "golden-" + v["file"].replace("/", "-").removesuffix(".hex")
        seeds.append((name, flags, data))
    return seeds


def main(targets):
    seeds = []
    for i, o in enumerate(opens):
        seeds.append((f"open-{i}", 1, msg(1, o)))
    for i, (flags, u) in enumerate(updates):
        seeds.append((f"update-{i}", flags, u))
    for i, m in enumerate(others):
        seeds.append((f"other-{i}", 3, m))
    golden = golden_seeds()
    if "decode_message" in targets:
        for name, flags, m in seeds + golden:
            write("decode_message", name, bytes([flags]) + m)
    if "codec_stream" not in targets:
        return
    # A session's worth of stream: OPEN, KEEPALIVE, UPDATEs, NOTIFICATION.
    stream = msg(1, opens[0]) + msg(4, b"") + b"".join(u for _, u in updates[:4]) + others[1]
    for chunk in (1, 7, 19, 200):
        write("codec_stream", f"session-{chunk}", bytes([1, chunk]) + stream)
    write("codec_stream", "bad-marker", bytes([0, 5]) + msg(4, b"")[:10] + b"\x00" * 9)
    # Each captured session direction as one stream, in the context of its UPDATEs.
    by_session = {}
    for name, flags, m in golden:
        key = name.rsplit("-", 1)[0].split("-")[1]  # daemon directory
        by_session.setdefault(key, []).append((flags, m))
    for daemon, msgs in by_session.items():
        flags = max(f for f, _ in msgs)
        stream = b"".join(m for f, m in msgs if f == flags)
        write("codec_stream", f"golden-{daemon}", bytes([flags, 61]) + stream)


if __name__ == "__main__":
    import sys
    main(sys.argv[1:] or ["decode_message", "codec_stream"])
