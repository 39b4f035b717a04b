#!/usr/bin/env python3
"""Extract BGP messages from pcap captures into golden test vectors.

Standard library only. Reads one or more pcap files (Ethernet, Linux cooked SLL or SLL2),
reassembles every TCP connection on port 179 per direction by sequence number (the same
segment seen on several interfaces is de-duplicated by its offset), splits each byte stream
into BGP messages by the header length field, derives the negotiated session context of each
direction from the two OPENs of that connection, and writes one `.hex` file per distinct
message plus `manifest.json`.

Usage:
  extract.py --nodes nodes.json [--phases phases.txt] --out DIR capture.pcap [more.pcap ...]

nodes.json maps every IP address to {"node": "bird1", "daemon": "bird"}; phases.txt holds
lines "<unix time> <phase name>" written by capture.sh, used to say in which step of the
capture a message was sent.
"""

import argparse
import bisect
import ipaddress
import json
import os
import struct
import sys

BGP_PORT = 179
MARKER = b"\xff" * 16
KIND = {1: "open", 2: "update", 3: "notification", 4: "keepalive", 5: "route-refresh"}
FAMILY_NAME = {(1, 1): "ipv4-unicast", (2, 1): "ipv6-unicast"}
CAP_NAME = {
    1: "multiprotocol",
    2: "route-refresh",
    5: "extended-nexthop",
    6: "extended-message",
    9: "role",
    64: "graceful-restart",
    65: "4-octet-as",
    69: "add-path",
    70: "enhanced-route-refresh",
    71: "llgr",
    73: "fqdn",
    75: "software-version",
    128: "route-refresh-old-cisco",
}
ATTR_NAME = {
    1: "ORIGIN",
    2: "AS_PATH",
    3: "NEXT_HOP",
    4: "MED",
    5: "LOCAL_PREF",
    6: "ATOMIC_AGGREGATE",
    7: "AGGREGATOR",
    8: "COMMUNITIES",
    9: "ORIGINATOR_ID",
    10: "CLUSTER_LIST",
    14: "MP_REACH_NLRI",
    15: "MP_UNREACH_NLRI",
    16: "EXTENDED_COMMUNITIES",
    17: "AS4_PATH",
    18: "AS4_AGGREGATOR",
    32: "LARGE_COMMUNITY",
    35: "OTC",
}
NOTIF_NAME = {
    (1, None): "message-header-error",
    (2, None): "open-error",
    (3, None): "update-error",
    (4, None): "hold-timer-expired",
    (5, None): "fsm-error",
    (6, 1): "cease-max-prefixes",
    (6, 2): "cease-admin-shutdown",
    (6, 3): "cease-peer-deconfigured",
    (6, 4): "cease-admin-reset",
    (6, 5): "cease-connection-rejected",
    (6, 6): "cease-other-config-change",
    (6, 7): "cease-collision",
    (6, 8): "cease-out-of-resources",
    (6, 9): "cease-hard-reset",
    (6, None): "cease",
    (7, None): "route-refresh-error",
}


# ---------------------------------------------------------------- pcap and TCP reassembly


def read_pcap(path):
    """Yield (timestamp, linktype, frame) for every record of a classic pcap file."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise SystemExit(f"{path}: not a classic pcap file (magic {magic.hex()})")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[off : off + 16])
        off += 16
        frame = data[off : off + incl]
        off += incl
        yield sec + frac / (1e9 if nano else 1e6), linktype, frame


def l3_of(linktype, frame):
    """Return (ethertype, l3 bytes) or None."""
    if linktype == 1:  # Ethernet
        if len(frame) < 14:
            return None
        etype = struct.unpack(">H", frame[12:14])[0]
        off = 14
        if etype == 0x8100 and len(frame) >= 18:
            etype = struct.unpack(">H", frame[16:18])[0]
            off = 18
        return etype, frame[off:]
    if linktype == 113:  # Linux cooked SLL
        if len(frame) < 16:
            return None
        return struct.unpack(">H", frame[14:16])[0], frame[16:]
    if linktype == 276:  # Linux cooked SLL2
        if len(frame) < 20:
            return None
        return struct.unpack(">H", frame[0:2])[0], frame[20:]
    raise SystemExit(f"unsupported pcap link type {linktype}")


def tcp_of(etype, l3):
    """Return (src, dst, sport, dport, seq, flags, payload) or None."""
    if etype == 0x0800 and len(l3) >= 20:
        ihl = (l3[0] & 0x0F) * 4
        total = struct.unpack(">H", l3[2:4])[0]
        if l3[9] != 6:
            return None
        src = str(ipaddress.IPv4Address(l3[12:16]))
        dst = str(ipaddress.IPv4Address(l3[16:20]))
        seg = l3[ihl:total]
    elif etype == 0x86DD and len(l3) >= 40:
        if l3[6] != 6:
            return None
        plen = struct.unpack(">H", l3[4:6])[0]
        src = str(ipaddress.IPv6Address(l3[8:24]))
        dst = str(ipaddress.IPv6Address(l3[24:40]))
        seg = l3[40 : 40 + plen]
    else:
        return None
    if len(seg) < 20:
        return None
    sport, dport, seq = struct.unpack(">HHI", seg[0:8])
    doff = (seg[12] >> 4) * 4
    flags = seg[13]
    return src, dst, sport, dport, seq, flags, seg[doff:]


class Direction:
    """One direction of one TCP connection: the byte stream keyed by stream offset."""

    def __init__(self, isn):
        self.isn = isn
        self.chunks = {}  # offset -> (time, bytes)

    def add(self, t, seq, payload):
        off = (seq - self.isn - 1) % (1 << 32)
        if off > (1 << 30):  # data before the ISN: not ours
            return
        prev = self.chunks.get(off)
        if prev is None or len(payload) > len(prev[1]):
            self.chunks[off] = (t, payload)

    def stream(self):
        """Contiguous bytes from offset 0, with a list of (offset, time) for timing."""
        buf = bytearray()
        times = []
        for off in sorted(self.chunks):
            t, data = self.chunks[off]
            if off > len(buf):
                print(f"warning: hole in stream at offset {len(buf)}", file=sys.stderr)
                break
            new = data[len(buf) - off :]
            if new:
                times.append((len(buf), t))
                buf += new
        return bytes(buf), times


def connections(pcaps):
    """Reassemble every BGP TCP connection. Returns a list of dicts in SYN time order."""
    conns = {}  # (client, cport, server, sport) -> list of connection records
    packets = []
    for path in pcaps:
        for t, lt, frame in read_pcap(path):
            l3 = l3_of(lt, frame)
            if l3 is None:
                continue
            tcp = tcp_of(*l3)
            if tcp is None:
                continue
            if BGP_PORT not in (tcp[2], tcp[3]):
                continue
            packets.append((t, tcp))
    packets.sort(key=lambda p: p[0])
    for t, (src, dst, sport, dport, seq, flags, payload) in packets:
        syn, ack = flags & 0x02, flags & 0x10
        if syn and not ack:
            key = (src, sport, dst, dport)
            recs = conns.setdefault(key, [])
            if recs and recs[-1]["fwd"].isn == seq:
                continue  # the same SYN seen on another interface, or retransmitted
            recs.append({"t": t, "client": (src, sport), "server": (dst, dport),
                         "fwd": Direction(seq), "rev": None})
            continue
        key = (src, sport, dst, dport)
        rkey = (dst, dport, src, sport)
        if syn and ack:
            recs = conns.get(rkey)
            if recs and recs[-1]["rev"] is None:
                recs[-1]["rev"] = Direction(seq)
            continue
        if not payload:
            continue
        if key in conns and conns[key]:
            conns[key][-1]["fwd"].add(t, seq, payload)
        elif rkey in conns and conns[rkey] and conns[rkey][-1]["rev"] is not None:
            conns[rkey][-1]["rev"].add(t, seq, payload)
    out = [c for recs in conns.values() for c in recs if c["rev"] is not None]
    out.sort(key=lambda c: c["t"])
    return out


def split_messages(stream, times):
    """Split a BGP byte stream into (time, message bytes)."""
    msgs = []
    offs = [o for o, _ in times]
    off = 0
    while off + 19 <= len(stream):
        if stream[off : off + 16] != MARKER:
            print(f"warning: no marker at stream offset {off}", file=sys.stderr)
            break
        length = struct.unpack(">H", stream[off + 16 : off + 18])[0]
        if length < 19 or off + length > len(stream):
            break
        i = max(bisect.bisect_right(offs, off) - 1, 0)
        msgs.append((times[i][1] if times else 0.0, stream[off : off + length]))
        off += length
    return msgs


# ---------------------------------------------------------------- light BGP decoding


def open_caps(msg):
    """List of (code, value) capabilities of an OPEN (RFC 5492; RFC 9072 extended params)."""
    body = msg[19:]
    caps = []
    if len(body) < 10:
        return caps
    plen = body[9]
    params = body[10 : 10 + plen]
    ext = False
    if plen == 255 and len(body) >= 13 and body[10] == 255:
        ext = True
        plen = struct.unpack(">H", body[11:13])[0]
        params = body[13 : 13 + plen]
    i = 0
    while i < len(params):
        ptype = params[i]
        if ext:
            pl = struct.unpack(">H", params[i + 1 : i + 3])[0]
            pv = params[i + 3 : i + 3 + pl]
            i += 3 + pl
        else:
            pl = params[i + 1]
            pv = params[i + 2 : i + 2 + pl]
            i += 2 + pl
        if ptype != 2:
            continue
        j = 0
        while j + 2 <= len(pv):
            code, cl = pv[j], pv[j + 1]
            caps.append((code, pv[j + 2 : j + 2 + cl]))
            j += 2 + cl
    return caps


def addpath_modes(caps):
    modes = {}
    for code, val in caps:
        if code != 69:
            continue
        for k in range(0, len(val) - 3, 4):
            afi, safi, mode = struct.unpack(">HBB", val[k : k + 4])
            modes[(afi, safi)] = mode
    return modes


def context(sender_caps, receiver_caps):
    """The context for decoding what `sender` sends (RFC 6793, RFC 8654, RFC 7911 s.4)."""
    s = {c for c, _ in sender_caps}
    r = {c for c, _ in receiver_caps}
    sm, rm = addpath_modes(sender_caps), addpath_modes(receiver_caps)
    fams = sorted(f for f, m in sm.items() if m in (2, 3) and rm.get(f) in (1, 3))
    return {
        "four_octet_as": 65 in s and 65 in r,
        "extended_message": 6 in s and 6 in r,
        "add_path": [{"afi": a, "safi": b} for a, b in fams],
    }


DEFAULT_CTX = {"four_octet_as": False, "extended_message": False, "add_path": []}


def prefixes(data, afi, addpath):
    out = []
    i = 0
    alen = 4 if afi == 1 else 16
    while i < len(data):
        pid = None
        if addpath:
            pid = struct.unpack(">I", data[i : i + 4])[0]
            i += 4
        bits = data[i]
        n = (bits + 7) // 8
        raw = data[i + 1 : i + 1 + n] + b"\0" * (alen - n)
        i += 1 + n
        addr = ipaddress.ip_address(raw)
        s = f"{addr}/{bits}"
        out.append(s if pid is None else f"{s} (path id {pid})")
    return out


def describe_update(msg, ctx):
    body = msg[19:]
    ap = {(f["afi"], f["safi"]) for f in ctx["add_path"]}
    wl = struct.unpack(">H", body[0:2])[0]
    wd = prefixes(body[2 : 2 + wl], 1, (1, 1) in ap)
    al = struct.unpack(">H", body[2 + wl : 4 + wl])[0]
    attrs = body[4 + wl : 4 + wl + al]
    nlri = prefixes(body[4 + wl + al :], 1, (1, 1) in ap)
    parts, names, info = [], [], {"wd4": wd, "nlri4": nlri, "reach": None, "unreach": None}
    i = 0
    asn_len = 4 if ctx["four_octet_as"] else 2
    while i < len(attrs):
        flags, code = attrs[i], attrs[i + 1]
        if flags & 0x10:
            ln = struct.unpack(">H", attrs[i + 2 : i + 4])[0]
            v = attrs[i + 4 : i + 4 + ln]
            i += 4 + ln
        else:
            ln = attrs[i + 2]
            v = attrs[i + 3 : i + 3 + ln]
            i += 3 + ln
        name = ATTR_NAME.get(code, f"attr{code}")
        names.append(name)
        d = f"{name}(flags 0x{flags:02x})"
        if code == 1:
            d = f"ORIGIN {'IGP EGP INCOMPLETE'.split()[v[0]] if v[0] < 3 else v[0]}"
        elif code in (2, 17):
            al2 = 4 if code == 17 else asn_len
            segs, j = [], 0
            while j < len(v):
                st, cnt = v[j], v[j + 1]
                asns = [int.from_bytes(v[j + 2 + k * al2 : j + 2 + (k + 1) * al2], "big")
                        for k in range(cnt)]
                segs.append(("{%s}" if st == 1 else "%s") % " ".join(map(str, asns)))
                j += 2 + cnt * al2
            d = f"{name} [{' '.join(segs)}]"
        elif code == 3:
            d = f"NEXT_HOP {ipaddress.IPv4Address(v)}"
        elif code in (4, 5):
            d = f"{name} {struct.unpack('>I', v)[0]}"
        elif code == 6:
            d = "ATOMIC_AGGREGATE"
        elif code in (7, 18):
            a = int.from_bytes(v[:-4], "big")
            d = f"{name} {a} {ipaddress.IPv4Address(v[-4:])}"
        elif code == 8:
            d = "COMMUNITIES " + " ".join(
                f"{int.from_bytes(v[k:k+2],'big')}:{int.from_bytes(v[k+2:k+4],'big')}"
                for k in range(0, len(v), 4))
        elif code == 9:
            d = f"ORIGINATOR_ID {ipaddress.IPv4Address(v)}"
        elif code == 10:
            d = "CLUSTER_LIST " + " ".join(str(ipaddress.IPv4Address(v[k:k+4]))
                                           for k in range(0, len(v), 4))
        elif code == 16:
            d = "EXTENDED_COMMUNITIES " + " ".join(v[k:k+8].hex() for k in range(0, len(v), 8))
        elif code == 32:
            d = "LARGE_COMMUNITY " + " ".join(
                ":".join(str(x) for x in struct.unpack(">III", v[k:k+12]))
                for k in range(0, len(v), 12))
        elif code == 14:
            afi, safi, nhl = struct.unpack(">HBB", v[0:4])
            nh = v[4 : 4 + nhl]
            if afi == 2 and nhl in (16, 32):
                nhs = " ".join(str(ipaddress.IPv6Address(nh[k:k+16])) for k in range(0, nhl, 16))
            else:
                nhs = nh.hex()
            pf = prefixes(v[5 + nhl :], afi, (afi, safi) in ap)
            info["reach"] = (afi, safi, pf)
            d = f"MP_REACH_NLRI {FAMILY_NAME.get((afi, safi), (afi, safi))} next hop {nhs} nlri {' '.join(pf)}"
        elif code == 15:
            afi, safi = struct.unpack(">HB", v[0:3])
            pf = prefixes(v[3:], afi, (afi, safi) in ap)
            info["unreach"] = (afi, safi, pf)
            d = f"MP_UNREACH_NLRI {FAMILY_NAME.get((afi, safi), (afi, safi))} withdrawn {' '.join(pf) or '(none)'}"
        elif code == 35:
            d = f"OTC {struct.unpack('>I', v)[0]}"
        else:
            d = f"{name} flags 0x{flags:02x} value {v.hex()}"
        if code not in (1, 6) and code in ATTR_NAME and flags & 0x10:
            d += " (extended length)"
        parts.append(d)
    if wd:
        parts.insert(0, "withdrawn " + " ".join(wd))
    if nlri:
        parts.append("nlri " + " ".join(nlri))
    return parts, names, info


def attr_flags(msg, ctx):
    """(type code, flags) of every path attribute of an UPDATE, in wire order."""
    body = msg[19:]
    wl = struct.unpack(">H", body[0:2])[0]
    al = struct.unpack(">H", body[2 + wl : 4 + wl])[0]
    attrs = body[4 + wl : 4 + wl + al]
    out, i = [], 0
    while i + 3 <= len(attrs):
        flags, code = attrs[i], attrs[i + 1]
        if flags & 0x10:
            ln = struct.unpack(">H", attrs[i + 2 : i + 4])[0]
            i += 4 + ln
        else:
            ln = attrs[i + 2]
            i += 3 + ln
        out.append((code, flags))
    return out


def features(msg, ctx, receiver_daemon):
    """What a vector exercises, for choosing a small covering set of UPDATEs."""
    if msg[18] != 2:
        return set()
    _, names, info = describe_update(msg, ctx)
    c4, ap = ctx["four_octet_as"], bool(ctx["add_path"])
    f = {("ctx", c4, ap), ("to", receiver_daemon)}
    for code, flags in attr_flags(msg, ctx):
        f.add(("attr", code, flags))
        f.add(("attr-ctx", code, c4, ap))
    r, u = info["reach"], info["unreach"]
    f.add(("shape", bool(info["wd4"]), bool(info["nlri4"]), bool(r and r[2]), bool(u and u[2]),
           len(info["nlri4"]) > 10, r is not None and r[0] == 2))
    if len(msg) > 4096:
        f.add(("big",))
    if len(msg) == 23:
        f.add(("eor-ipv4",))
    if u is not None and not u[2] and len(names) == 1:
        f.add(("eor", u[0], u[1]))
    for code, _ in attr_flags(msg, ctx):
        f.add(("attr-to", code, receiver_daemon))
        f.add(("attr-fam", code, r is not None and r[0] == 2))
    return f


def short_prefix(p):
    return p.split(" ")[0].replace("/", "_").replace(":", "_")


def describe(msg, ctx):
    """Return (slug, one-line description) of a BGP message."""
    mtype = msg[18]
    kind = KIND.get(mtype, f"type{mtype}")
    if mtype == 1:
        body = msg[19:]
        ver, my_as, hold = struct.unpack(">BHH", body[0:5])
        bgp_id = ipaddress.IPv4Address(body[5:9])
        caps = open_caps(msg)
        names = []
        asn = my_as
        for code, val in caps:
            n = CAP_NAME.get(code, f"cap{code}")
            if code == 1:
                n += "(" + FAMILY_NAME.get(struct.unpack(">HxB", val), str(val.hex())) + ")"
            if code == 65:
                asn = struct.unpack(">I", val)[0]
                n += f"({asn})"
            if code == 69:
                n += "(" + ",".join(f"{FAMILY_NAME.get(f, f)}:{'- rx tx both'.split()[m] if m < 4 else m}"
                                    for f, m in addpath_modes([(code, val)]).items()) + ")"
            if code == 73 and val:
                hl = val[0]
                n += f"({val[1:1+hl].decode(errors='replace')})"
            names.append(n)
        slug = f"as{asn}" + ("" if any(c == 65 for c, _ in caps) else "-2octet")
        return slug, (f"OPEN version {ver}, my AS {my_as}, hold time {hold}, BGP id {bgp_id}, "
                      f"capabilities: {', '.join(names) or 'none'}")
    if mtype == 2:
        parts, names, info = describe_update(msg, ctx)
        if not parts:
            return "eor-ipv4", "UPDATE End-of-RIB for ipv4-unicast (empty UPDATE)"
        r, u = info["reach"], info["unreach"]
        if u is not None and not u[2] and len(names) == 1:
            fam = FAMILY_NAME.get((u[0], u[1]), f"afi{u[0]}-safi{u[1]}")
            return f"eor-{fam.split('-')[0]}", f"UPDATE End-of-RIB for {fam} (empty MP_UNREACH_NLRI)"
        if r:
            slug = f"ipv6-{short_prefix(r[2][0])}" if r[2] else "ipv6-reach"
            if len(r[2]) > 1:
                slug += f"-and-{len(r[2]) - 1}-more"
        elif info["nlri4"]:
            slug = f"ipv4-{short_prefix(info['nlri4'][0])}"
            if len(info["nlri4"]) > 1:
                slug += f"-and-{len(info['nlri4']) - 1}-more"
        elif u:
            slug = f"ipv6-withdraw-{short_prefix(u[2][0])}"
        elif info["wd4"]:
            slug = f"ipv4-withdraw-{short_prefix(info['wd4'][0])}"
        else:
            slug = "attrs-only"
        if ctx["add_path"]:
            slug += "-addpath"
        if not ctx["four_octet_as"]:
            slug += "-2octet"
        return slug, "UPDATE " + "; ".join(parts)
    if mtype == 3:
        code, sub = msg[19], msg[20]
        data = msg[21:]
        name = NOTIF_NAME.get((code, sub)) or NOTIF_NAME.get((code, None)) or f"code{code}"
        d = f"NOTIFICATION code {code} subcode {sub} ({name})"
        if code == 6 and sub in (2, 4) and data:
            ln = data[0]
            d += f", shutdown communication ({ln} octets): {data[1:1+ln].decode(errors='replace')!r}"
        elif data:
            d += f", data {data.hex()}"
        return name, d
    if mtype == 4:
        return "keepalive", "KEEPALIVE"
    if mtype == 5:
        afi, st, safi = struct.unpack(">HBB", msg[19:23])
        sub = {0: "request", 1: "borr", 2: "eorr"}.get(st, f"subtype{st}")
        fam = FAMILY_NAME.get((afi, safi), f"afi{afi}-safi{safi}")
        return f"{fam.split('-')[0]}-{sub}", f"ROUTE-REFRESH {fam} subtype {st} ({sub})"
    return kind, kind


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", required=True)
    ap.add_argument("--phases")
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-per-daemon", type=int, default=60)
    ap.add_argument("pcaps", nargs="+")
    args = ap.parse_args()

    with open(args.nodes) as f:
        nodes = json.load(f)
    phases = []
    if args.phases and os.path.exists(args.phases):
        with open(args.phases) as f:
            for line in f:
                t, name = line.split(None, 1)
                phases.append((float(t), name.strip()))
    phase_times = [p[0] for p in phases]

    def phase_at(t):
        i = bisect.bisect_right(phase_times, t) - 1
        return phases[i][1] if i >= 0 else "start"

    def who(ip):
        n = nodes.get(ip)
        if n is None:
            raise SystemExit(f"address {ip} is not in {args.nodes}")
        return n

    all_msgs = []
    for c in connections(args.pcaps):
        ends = {"fwd": (c["client"][0], c["server"][0]), "rev": (c["server"][0], c["client"][0])}
        per_dir = {}
        for d in ("fwd", "rev"):
            stream, times = c[d].stream()
            per_dir[d] = split_messages(stream, times)
        opens = {}
        for d, msgs in per_dir.items():
            for t, m in msgs:
                if m[18] == 1:
                    opens[d] = (t, open_caps(m), m)
                    break
        for d, msgs in per_dir.items():
            other = "rev" if d == "fwd" else "fwd"
            negotiated = None
            if d in opens and other in opens:
                negotiated = context(opens[d][1], opens[other][1])
            for t, m in msgs:
                ctx = DEFAULT_CTX
                pair = None
                if m[18] != 1 and negotiated is not None:
                    ctx = negotiated
                    pair = (opens[d][2], opens[other][2])  # (sender's OPEN, receiver's OPEN)
                src, dst = ends[d]
                all_msgs.append((t, src, dst, m, ctx, pair))
    all_msgs.sort(key=lambda x: x[0])

    # One file per distinct (daemon, bytes, context). The context matters because the same
    # bytes can mean different things with and without add-path or 4-octet AS.
    seen = set()
    sigs = set()
    cands = []
    for t, src, dst, m, ctx, pair in all_msgs:
        s, r = who(src), who(dst)
        key = (s["daemon"], m, json.dumps(ctx, sort_keys=True))
        if key in seen:
            continue
        seen.add(key)
        slug, desc = describe(m, ctx)
        phase = phase_at(t)
        # Diversity: keep the first message of each shape (sender, message kind, attribute
        # codes and flags, which NLRI fields are used, context); later messages of the same
        # shape differ only in values.
        mtype = m[18]
        cj = (ctx["four_octet_as"], bool(ctx["add_path"]))
        if mtype == 2:
            _, names, info = describe_update(m, ctx)
            rch, urch = info["reach"], info["unreach"]
            sig = (s["daemon"], mtype, tuple(attr_flags(m, ctx)), bool(info["wd4"]),
                   bool(info["nlri4"]), bool(rch and rch[2]), bool(urch and urch[2]),
                   len(m) > 4096, cj)
        elif mtype == 1:
            sig = (s["node"], mtype, tuple(sorted(open_caps(m))), m[19 + 3 : 19 + 5])
        elif mtype == 3:
            sig = (s["node"], mtype, m[19], m[20], len(m) > 21)
        elif mtype == 4:
            sig = (s["daemon"], mtype)
        else:
            sig = (s["node"], mtype, slug)
        if sig in sigs:
            continue
        sigs.add(sig)
        cands.append({"t": t, "msg": m, "ctx": ctx, "sender": s["node"], "receiver": r["node"],
                      "sender_daemon": s["daemon"], "receiver_daemon": r["daemon"],
                      "kind": KIND.get(mtype, str(mtype)), "slug": slug, "desc": desc,
                      "phase": phase, "features": features(m, ctx, r["daemon"]), "pair": pair})

    # Every non-UPDATE candidate is kept (there are few). UPDATEs are chosen per sender daemon
    # greedily by how many new features (attribute type and flags, attribute under each
    # context, message shape, receiver daemon) each adds, until nothing new is added.
    chosen = {}
    for d in sorted({c["sender_daemon"] for c in cands}):
        mine = [c for c in cands if c["sender_daemon"] == d]
        keep = [c for c in mine if c["kind"] != "update"]
        ups = [c for c in mine if c["kind"] == "update"]
        covered = set()
        while ups:
            best = max(ups, key=lambda c: (len(c["features"] - covered), -c["t"]))
            if not best["features"] - covered:
                break
            covered |= best["features"]
            keep.append(best)
            ups.remove(best)
        keep.sort(key=lambda c: c["t"])
        chosen[d] = keep[: args.max_per_daemon]

    manifest = []
    sessions = {}  # (sender OPEN, receiver OPEN) -> session entry
    for daemon in sorted(chosen):
        ddir = os.path.join(args.out, daemon)
        os.makedirs(ddir, exist_ok=True)
        for old in os.listdir(ddir):
            if old.endswith(".hex"):
                os.unlink(os.path.join(ddir, old))
        for n, e in enumerate(chosen[daemon], 1):
            name = f"{n:02d}-{e['kind']}-{e['slug']}.hex"
            h = e["msg"].hex()
            with open(os.path.join(ddir, name), "w") as f:
                for k in range(0, len(h), 64):
                    f.write(h[k : k + 64] + "\n")
            manifest.append({
                "file": f"{daemon}/{name}",
                "kind": e["kind"],
                "sender": e["sender"],
                "sender_daemon": e["sender_daemon"],
                "receiver": e["receiver"],
                "receiver_daemon": e["receiver_daemon"],
                "context": e["ctx"],
                "phase": e["phase"],
                "length": len(e["msg"]),
                "description": f"{e['sender']} -> {e['receiver']}: {e['desc']}",
            })
            if e["pair"] is not None:
                if e["pair"] not in sessions:
                    sessions[e["pair"]] = {
                        "id": len(sessions),
                        "sender": e["sender"],
                        "receiver": e["receiver"],
                        "sender_open": e["pair"][0].hex(),
                        "receiver_open": e["pair"][1].hex(),
                    }
                manifest[-1]["session"] = sessions[e["pair"]]["id"]
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump({"vectors": manifest, "sessions": list(sessions.values())}, f, indent=1)
        f.write("\n")
    counts = {d: len(v) for d, v in chosen.items()}
    print(f"extract: {len(all_msgs)} messages on the wire, {len(manifest)} vectors written {counts}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
