#!/usr/bin/env bash
# Capture golden BGP vectors from real BIRD 2, FRR bgpd, GoBGP and ExaBGP sessions.
#
# Builds a lab of network namespaces on one bridge, runs the daemons with configs that put as
# many message and attribute kinds as possible on the wire, drives them through a scripted
# sequence of phases (converge, route refresh, withdrawals, admin shutdown with RFC 9003
# message, admin reset, hold timer expiry, daemon shutdown), captures port 179 with tcpdump
# on every bridge port, and runs extract.py to write <daemon>/NN-<kind>-<what>.hex and
# manifest.json next to this script (or into $OUT).
#
# Usage (root): bgp/tests/golden/capture.sh        # OUT=dir to write elsewhere
# Needs: bird2 frr gobgpd exabgp tcpdump jq python3 iproute2 (Debian bookworm packages).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$HERE}
[ "$(id -u)" = 0 ] || { echo "capture.sh: run as root (it creates network namespaces)" >&2; exit 1; }
for t in bird birdc /usr/lib/frr/bgpd /usr/lib/frr/zebra vtysh gobgpd gobgp exabgp tcpdump jq python3; do
  command -v "$t" >/dev/null || [ -x "$t" ] || { echo "capture.sh: $t not found" >&2; exit 1; }
done

P="gv$$"                 # namespace prefix, unique per run
LAB=$(mktemp -d /tmp/golden-lab.XXXXXX)
chmod 711 "$LAB"         # FRR drops to user frr and must traverse it
PIDS=()                  # every process we started, killed on exit
NSS=()

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
phase() { echo "$(date +%s.%N) $1" >>"$LAB/phases"; log "phase: $1"; }

cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null && kill -CONT "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  for ns in "${NSS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  if [ -n "${KEEP_LAB:-}" ]; then log "lab kept in $LAB"; else rm -rf "$LAB"; fi
}
trap cleanup EXIT

# wait_for SECONDS DESCRIPTION CMD...: poll CMD until it succeeds or the deadline passes.
wait_for() {
  local secs=$1 desc=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= end)); then log "timeout after ${secs}s: $desc"; return 1; fi
    sleep 0.2
  done
}

# ------------------------------------------------------------------------------ topology
# node  index daemon  AS          role in the lab
# bird1 1     BIRD    4200000001  eBGP to frr1 (v4 + v6 sessions), gobgp1, exabgp1; add-path, GR, LLGR,
#                                 extended messages, hostname, BGP role
# frr1  2     FRR     65002       route reflector for gobgp1 and bird2; aggregate-address; add-path tx to bird1
# gobgp1 3    GoBGP   65002       iBGP RR client of frr1 (v4 + v6), eBGP to bird1, exabgp1, bird3
# exabgp1 4   ExaBGP  65004       eBGP to bird1, frr1, gobgp1; unknown attribute, many prefixes per UPDATE
# bird2 5     BIRD    65002       iBGP RR client of frr1 (defaults); a session to gobgp1 with a wrong peer AS
# bird3 6     BIRD    65010       2-octet AS only (enable as4 off) to frr1 and gobgp1: AS4_PATH both ways
#                                 (BIRD with as4 off still reads the peer's 4-octet AS capability, so
#                                 it cannot peer with bird1's AS 4200000001)
NODES=(b1 f g x b2 b3)
declare -A IDX=([b1]=1 [f]=2 [g]=3 [x]=4 [b2]=5 [b3]=6)
declare -A NAME=([b1]=bird1 [f]=frr1 [g]=gobgp1 [x]=exabgp1 [b2]=bird2 [b3]=bird3)
declare -A DAEMON=([b1]=bird [f]=frr [g]=gobgp [x]=exabgp [b2]=bird [b3]=bird)

BR="${P}br"
ip netns add "$BR"; NSS+=("$BR")
ip netns exec "$BR" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$BR" link add br0 type bridge
ip -n "$BR" link set br0 up
{
  echo "{"
  first=1
  for n in "${NODES[@]}"; do
    i=${IDX[$n]}; ns="${P}$n"
    ip netns add "$ns"; NSS+=("$ns")
    # No DAD, so IPv6 addresses (and the EUI-64 link-local from the fixed MAC) are usable at once.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    ip link add "port-$n" netns "$BR" type veth peer name eth0 netns "$ns"
    ip -n "$BR" link set "port-$n" master br0
    ip -n "$BR" link set "port-$n" up
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 address "02:00:00:00:00:0$i"
    ip -n "$ns" addr add "10.0.0.$i/24" dev eth0
    ip -n "$ns" addr add "2001:db8:ff::$i/64" dev eth0 nodad
    ip -n "$ns" link set eth0 up
    for a in "10.0.0.$i" "2001:db8:ff::$i" "fe80::ff:fe00:$i"; do
      [ $first = 1 ] || echo ","
      first=0
      printf '  "%s": {"node": "%s", "daemon": "%s"}' "$a" "${NAME[$n]}" "${DAEMON[$n]}"
    done
  done
  echo; echo "}"
} >"$LAB/nodes.json"

# One capture per bridge port; extract.py de-duplicates segments seen on two ports.
for n in "${NODES[@]}"; do
  ip netns exec "$BR" tcpdump -i "port-$n" -U -s 0 -w "$LAB/port-$n.pcap" 'tcp port 179' 2>"$LAB/tcpdump-$n.log" &
  PIDS+=($!)
done
for n in "${NODES[@]}"; do
  wait_for 10 "tcpdump on port-$n" grep -q "listening on" "$LAB/tcpdump-$n.log"
done

# ------------------------------------------------------------------------------ BIRD
mkdir -p "$LAB/b1" "$LAB/b2" "$LAB/b3"
cat >"$LAB/b1/bird.conf" <<'EOF'
log stderr all;
router id 10.0.0.1;
hostname "bird1";
protocol device { }
protocol static s4 {
  ipv4;
  route 10.1.1.0/24 blackhole;
  route 10.1.2.0/24 blackhole;
  route 10.9.9.0/24 blackhole;
}
protocol static s4wd { ipv4; route 10.1.3.0/24 blackhole; route 10.1.4.0/24 blackhole; }
protocol static s6 { ipv6; route 2001:db8:1::/48 blackhole; route 2001:db8:1:1::/64 blackhole; }
protocol static s6wd { ipv6; route 2001:db8:13::/48 blackhole; }
filter ex4 {
  if net = 10.1.1.0/24 then {
    bgp_med = 50;
    bgp_community.add((65001,100));
    bgp_community.add((65001,101));
    bgp_large_community.add((4200000001,1,2));
    bgp_ext_community.add((rt,65001,7));
    bgp_ext_community.add((ro,10.0.0.1,8));
  }
  if net = 10.1.2.0/24 then { bgp_path.prepend(4200000099); bgp_origin = ORIGIN_INCOMPLETE; }
  accept;
}
filter ex6 {
  if net = 2001:db8:1::/48 then { bgp_community.add((65001,600)); bgp_med = 60; }
  accept;
}
template bgp tpl {
  local as 4200000001;
  connect delay time 1; connect retry time 1; error wait time 1,3;
  graceful restart on;
  long lived graceful restart on;
  enable extended messages on;
  advertise hostname on;
}
protocol bgp p_f from tpl {
  local 10.0.0.1 as 4200000001;
  neighbor 10.0.0.2 as 65002;
  local role customer;
  ipv4 { import all; export filter ex4; add paths on; };
}
protocol bgp p_f6 from tpl {
  local 2001:db8:ff::1 as 4200000001;
  neighbor 2001:db8:ff::2 as 65002;
  ipv6 { import all; export filter ex6; };
}
protocol bgp p_g from tpl {
  local 10.0.0.1 as 4200000001;
  neighbor 10.0.0.3 as 65002;
  ipv4 { import all; export filter ex4; add paths on; };
}
protocol bgp p_x from tpl {
  local 10.0.0.1 as 4200000001;
  neighbor 10.0.0.4 as 65004;
  hold time 3; keepalive time 1;
  ipv4 { import all; export filter ex4; add paths on; };
}
EOF
cat >"$LAB/b2/bird.conf" <<'EOF'
log stderr all;
router id 10.0.0.5;
protocol device { }
protocol static s4 { ipv4; route 10.5.1.0/24 blackhole; }
filter ex { bgp_local_pref = 250; bgp_community.add((65002,500)); accept; }
protocol bgp p_f {
  local 10.0.0.5 as 65002;
  neighbor 10.0.0.2 as 65002;
  connect delay time 1; connect retry time 1; error wait time 1,3;
  ipv4 { import all; export filter ex; next hop self; };
}
# Deliberately wrong peer AS (gobgp1 is AS 65002): bird2 answers gobgp1's OPEN with an OPEN
# Message Error / Bad Peer AS NOTIFICATION, over and over.
protocol bgp p_gbad {
  local 10.0.0.5 as 65002;
  neighbor 10.0.0.3 as 65003;
  connect delay time 1; connect retry time 1; error wait time 1,3;
  ipv4 { import all; export none; };
}
EOF
cat >"$LAB/b3/bird.conf" <<'EOF'
log stderr all;
router id 10.0.0.6;
protocol device { }
protocol static s4 { ipv4; route 10.6.1.0/24 blackhole; }
filter ex { bgp_community.add((65010,1)); bgp_path.prepend(4200000066); accept; }
template bgp tpl {
  local as 65010;
  enable as4 off;
  connect delay time 1; connect retry time 1; error wait time 1,3;
  ipv4 { import all; export filter ex; };
}
protocol bgp p_f from tpl { local 10.0.0.6 as 65010; neighbor 10.0.0.2 as 65002; }
protocol bgp p_g from tpl { local 10.0.0.6 as 65010; neighbor 10.0.0.3 as 65002; }
EOF
for b in b1 b2 b3; do bird -p -c "$LAB/$b/bird.conf"; done
birdc_() { local n=$1; shift; birdc -s "$LAB/$n/bird.ctl" "$@"; }
bird_up() { birdc_ "$1" show protocols "$2" | grep -q Established; }

# ------------------------------------------------------------------------------ FRR
mkdir -p "$LAB/f"
cat >"$LAB/f/bgpd.conf" <<'EOF'
frr defaults traditional
hostname frr1
log stdout informational
!
route-map RM_ATTRS permit 10
 set community 65002:200 65002:201
 set large-community 4200000001:2:3
 set extcommunity rt 65002:9
 set metric 20
 set origin egp
!
router bgp 65002
 bgp router-id 10.0.0.2
 no bgp ebgp-requires-policy
 no bgp network import-check
 bgp graceful-restart
 neighbor 10.0.0.1 remote-as 4200000001
 neighbor 10.0.0.1 local-role provider
 neighbor 10.0.0.1 timers connect 1
 neighbor 2001:db8:ff::1 remote-as 4200000001
 neighbor 2001:db8:ff::1 timers connect 1
 neighbor 10.0.0.3 remote-as 65002
 neighbor 10.0.0.3 timers connect 1
 neighbor 2001:db8:ff::3 remote-as 65002
 neighbor 2001:db8:ff::3 timers connect 1
 neighbor 10.0.0.4 remote-as 65004
 neighbor 10.0.0.4 timers connect 1
 neighbor 10.0.0.5 remote-as 65002
 neighbor 10.0.0.5 timers connect 1
 neighbor 10.0.0.6 remote-as 65010
 neighbor 10.0.0.6 timers connect 1
 !
 address-family ipv4 unicast
  network 10.2.1.0/24 route-map RM_ATTRS
  network 10.2.2.0/24
  network 10.2.3.0/24
  network 10.20.1.0/24
  network 10.20.2.0/24
  aggregate-address 10.20.0.0/16 summary-only
BIGNETS
  neighbor 10.0.0.1 addpath-tx-all-paths
  neighbor 10.0.0.3 route-reflector-client
  neighbor 10.0.0.5 route-reflector-client
  no neighbor 2001:db8:ff::1 activate
  no neighbor 2001:db8:ff::3 activate
 exit-address-family
 !
 address-family ipv6 unicast
  network 2001:db8:2::/48 route-map RM_ATTRS
  network 2001:db8:22::/48
  neighbor 2001:db8:ff::1 activate
  neighbor 2001:db8:ff::3 activate
  neighbor 2001:db8:ff::3 route-reflector-client
 exit-address-family
!
EOF
# 600 host routes with the same attributes: with add-path (9 octets per NLRI) frr1 packs them
# for bird1 into one UPDATE of more than 4096 octets, which the extended message capability
# (RFC 8654) allows on that session; other peers get them split into 4096-octet UPDATEs.
big=""
for i in $(seq 0 599); do big="$big  network 10.200.$((i / 250)).$((i % 250 + 1))/32\n"; done
sed -i "s|^BIGNETS\$|$big|" "$LAB/f/bgpd.conf"
: >"$LAB/f/zebra.conf"
chown -R frr:frr "$LAB/f"
vty() { vtysh --vty_socket "$LAB/f" -d bgpd "$@"; }
frr_up() { vty -c "show bgp neighbors $1 json" | jq -e --arg p "$1" '.[$p].bgpState == "Established"'; }

# ------------------------------------------------------------------------------ GoBGP
mkdir -p "$LAB/g"
gobgp_nbr() { # addr as family [extra toml]
  cat <<EOF
[[neighbors]]
  [neighbors.config]
    neighbor-address = "$1"
    peer-as = $2
  [neighbors.timers.config]
    connect-retry = 1
  [neighbors.graceful-restart.config]
    enabled = true
    restart-time = 120
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "$3"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
${4:-}
EOF
}
{
  cat <<'EOF'
[global.config]
  as = 65002
  router-id = "10.0.0.3"
EOF
  gobgp_nbr 10.0.0.2 65002 ipv4-unicast
  gobgp_nbr 2001:db8:ff::2 65002 ipv6-unicast
  gobgp_nbr 10.0.0.1 4200000001 ipv4-unicast '    [neighbors.afi-safis.add-paths.config]
      send-max = 4
      receive = true'
  gobgp_nbr 10.0.0.4 65004 ipv4-unicast
  gobgp_nbr 10.0.0.6 65010 ipv4-unicast
  gobgp_nbr 10.0.0.5 65002 ipv4-unicast
} >"$LAB/g/gobgpd.toml"
gobgpd -d -f "$LAB/g/gobgpd.toml" -t toml >/dev/null
gob() { gobgp --target "unix://$LAB/g/api.sock" "$@"; }
gobgp_up() { gob -j neighbor "$1" | jq -e '.state.session_state == 6'; }

# ------------------------------------------------------------------------------ ExaBGP
mkdir -p "$LAB/x"
cat >"$LAB/x/relay.py" <<'EOF'
#!/usr/bin/python3
import select, sys
cmds = open(sys.argv[1], 'a+'); cmds.seek(0)
out = open(sys.argv[2], 'a', buffering=1)
while True:
    line = cmds.readline()
    if line:
        sys.stdout.write(line); sys.stdout.flush(); continue
    r, _, _ = select.select([sys.stdin], [], [], 0.2)
    if r:
        msg = sys.stdin.readline()
        if not msg: break
        out.write(msg)
EOF
chmod 755 "$LAB/x/relay.py"
: >"$LAB/x/commands"
cat >"$LAB/x/exabgp.conf" <<EOF
process relay {
    run $LAB/x/relay.py $LAB/x/commands $LAB/x/received.jsonl;
    encoder json;
}
template {
    neighbor peers {
        router-id 10.0.0.4;
        local-address 10.0.0.4;
        local-as 65004;
        family { ipv4 unicast; }
        api { processes [ relay ]; receive { parsed; update; } neighbor-changes; }
        static {
            route 10.4.1.0/24 next-hop self origin egp med 40 community [ 65004:1 65004:2 ] extended-community [ target:65004:1 origin:65004:2 ] large-community [ 65004:1:1 ] atomic-aggregate aggregator ( 65004:10.0.0.4 ) attribute [ 0x63 0xc0 0xdeadbeef ];
            route 10.4.2.0/24 next-hop self;
            route 10.4.3.0/24 next-hop self aggregator ( 4200000004:10.0.0.4 );
            route 10.9.9.0/24 next-hop self;
        }
    }
}
neighbor 10.0.0.1 {
    inherit peers;
    peer-as 4200000001;
    hold-time 3;
    capability { route-refresh; graceful-restart 120; add-path send/receive; }
}
neighbor 10.0.0.2 { inherit peers; peer-as 65002; }
neighbor 10.0.0.3 { inherit peers; peer-as 65002; }
EOF
exabgp --validate "$LAB/x/exabgp.conf" >"$LAB/x/validate.log" 2>&1 || { cat "$LAB/x/validate.log" >&2; exit 1; }
exa() { echo "$*" >>"$LAB/x/commands"; }

# ------------------------------------------------------------------------------ start
phase start
for b in b1 b2 b3; do
  ip netns exec "${P}$b" bird -f -c "$LAB/$b/bird.conf" -s "$LAB/$b/bird.ctl" -P "$LAB/$b/bird.pid" \
    >"$LAB/$b/bird.log" 2>&1 &
  PIDS+=($!)
done
ip netns exec "${P}f" /usr/lib/frr/zebra -f "$LAB/f/zebra.conf" --vty_socket "$LAB/f" -z "$LAB/f/zserv.api" \
  -i "$LAB/f/zebra.pid" -u frr -g frr >"$LAB/f/zebra.log" 2>&1 &
PIDS+=($!)
wait_for 10 "zebra socket" test -S "$LAB/f/zserv.api"
ip netns exec "${P}f" /usr/lib/frr/bgpd -f "$LAB/f/bgpd.conf" --vty_socket "$LAB/f" -z "$LAB/f/zserv.api" \
  -i "$LAB/f/bgpd.pid" -u frr -g frr -P 0 >"$LAB/f/bgpd.log" 2>&1 &
FRR_PID=$!; PIDS+=($FRR_PID)
ip netns exec "${P}g" gobgpd -f "$LAB/g/gobgpd.toml" -t toml --api-hosts "unix://$LAB/g/api.sock" \
  --pprof-disable -p >"$LAB/g/gobgpd.log" 2>&1 &
GOBGP_PID=$!; PIDS+=($GOBGP_PID)
ip netns exec "${P}x" env exabgp.daemon.daemonize=false exabgp.daemon.user=root \
  exabgp.daemon.pid="$LAB/x/exabgp.pid" exabgp.api.cli=false exabgp.log.destination=stdout \
  exabgp "$LAB/x/exabgp.conf" >"$LAB/x/exabgp.log" 2>&1 &
EXA_PID=$!; PIDS+=($EXA_PID)

for b in b1 b2 b3; do wait_for 15 "bird $b control socket" birdc_ $b show status; done
wait_for 15 "bgpd vty" vty -c "show bgp summary"
wait_for 15 "gobgpd api" gob global
# GoBGP originates from its CLI (the config file has no static routes).
gob global rib add 10.3.1.0/24 origin igp med 30 local-pref 300 community 65003:1,65003:2 \
  large-community 4200000001:3:4
gob global rib add 10.3.2.0/24
gob global rib add 10.9.9.0/24
gob global rib -a ipv6 add 2001:db8:3::/48 community 65003:6
gob global rib -a ipv6 add 2001:db8:33::/48

ok=1
for s in "b1 p_f" "b1 p_f6" "b1 p_g" "b1 p_x" "b2 p_f" "b3 p_f" "b3 p_g"; do
  # shellcheck disable=SC2086
  wait_for 40 "bird session $s" bird_up $s || ok=0
done
for a in 10.0.0.1 2001:db8:ff::1 10.0.0.3 2001:db8:ff::3 10.0.0.4 10.0.0.5 10.0.0.6; do
  wait_for 20 "frr session $a" frr_up $a || ok=0
done
for a in 10.0.0.2 2001:db8:ff::2 10.0.0.1 10.0.0.4 10.0.0.6; do
  wait_for 20 "gobgp session $a" gobgp_up $a || ok=0
done
[ $ok = 1 ] || log "warning: not every session came up; continuing with what is there"

phase converge
# ExaBGP: many prefixes in one UPDATE (same attributes), sent to every peer.
many=""
for i in $(seq 100 139); do many="$many 10.4.$i.0/24"; done
exa "announce attributes next-hop self community [ 65004:99 ] nlri$many"
has_route() { birdc_ "$1" show route "$2" | grep -q "${2%/*}"; }
wait_for 20 "bird3 has 10.4.139.0/24" has_route b3 10.4.139.0/24 || true
wait_for 20 "bird2 has 10.3.1.0/24 (reflected)" has_route b2 10.3.1.0/24 || true
wait_for 20 "bird3 has 10.20.0.0/16 (aggregate)" has_route b3 10.20.0.0/16 || true
wait_for 20 "bird1 has 2001:db8:3::/48" has_route b1 2001:db8:3::/48 || true
wait_for 20 "gobgp has 10.5.1.0/24 (reflected)" sh -c "gobgp --target unix://$LAB/g/api.sock global rib 10.5.1.0/24 | grep -q 10.5.1.0"
sleep 2   # let the last UPDATE bursts (add-path, reflected) drain

phase route-refresh
birdc_ b1 reload in p_f
vty -c "clear bgp 10.0.0.1 soft in"
vty -c "clear bgp ipv6 2001:db8:ff::1 soft in"
gob neighbor 10.0.0.2 softresetin
gob neighbor 10.0.0.1 softresetin
birdc_ b3 reload in p_f
sleep 2

phase withdraw
birdc_ b1 disable s4wd
birdc_ b1 disable s6wd
vty -c "conf t" -c "router bgp 65002" -c "address-family ipv4 unicast" -c "no network 10.2.3.0/24" \
  -c "exit-address-family" -c "address-family ipv6 unicast" -c "no network 2001:db8:22::/48" -c "end"
gob global rib del 10.3.2.0/24
gob global rib -a ipv6 del 2001:db8:33::/48
exa "withdraw route 10.4.2.0/24"
gone() { ! birdc_ "$1" show route "$2" | grep -q "${2%/*}"; }
wait_for 20 "bird3 lost 10.1.3.0/24" gone b3 10.1.3.0/24 || true
wait_for 20 "bird3 lost 10.4.2.0/24" gone b3 10.4.2.0/24 || true
wait_for 20 "bird1 lost 2001:db8:33::/48" gone b1 2001:db8:33::/48 || true
sleep 1

phase admin-shutdown
birdc_ b1 disable p_g '"golden vector: bird1 shuts down the session to gobgp1"'
vty -c "conf t" -c "router bgp 65002" -c 'neighbor 10.0.0.6 shutdown message golden vector: frr1 shuts down the session to bird3' -c "end"
gob neighbor 10.0.0.6 shutdown --reason "golden vector: gobgp1 shuts down the session to bird3" ||
  gob neighbor 10.0.0.6 disable --reason "golden vector: gobgp1 shuts down the session to bird3"
birdc_ b2 disable p_f '"golden vector: bird2 shuts down the session to frr1"'
sleep 2
birdc_ b1 enable p_g
vty -c "conf t" -c "router bgp 65002" -c "no neighbor 10.0.0.6 shutdown" -c "end"
gob neighbor 10.0.0.6 enable
birdc_ b2 enable p_f
wait_for 30 "bird1-gobgp1 up again" bird_up b1 p_g || true
wait_for 30 "bird3-frr1 up again" bird_up b3 p_f || true
wait_for 30 "bird3-gobgp1 up again" bird_up b3 p_g || true
wait_for 30 "bird2-frr1 up again" bird_up b2 p_f || true

phase admin-reset
birdc_ b3 restart p_f
vty -c "clear bgp 10.0.0.5"
gob neighbor 10.0.0.4 reset
exa "neighbor 10.0.0.2 teardown 4"    # ExaBGP API: Cease / Administrative Reset to frr1
wait_for 30 "bird3-frr1 up again" bird_up b3 p_f || true
wait_for 30 "bird2-frr1 up again" bird_up b2 p_f || true

phase hold-timer
kill -STOP "$EXA_PID"
wait_for 20 "bird1 drops exabgp1 (hold timer)" sh -c "! birdc -s $LAB/b1/bird.ctl show protocols p_x | grep -q Established" || true
kill -CONT "$EXA_PID"
wait_for 30 "bird1-exabgp1 up again" bird_up b1 p_x || true
sleep 1

phase shutdown
# Daemon views for cross-checking the vectors (kept next to the vectors).
mkdir -p "$OUT/views"
# (the 600 host routes 10.200.x.y/32 are left out of the route dumps)
birdc_ b3 show route where "net !~ [ 10.200.0.0/16+ ]" all >"$OUT/views/bird3-routes.txt" || true
birdc_ b1 show route where "net !~ [ 10.200.0.0/16+ ]" all >"$OUT/views/bird1-routes.txt" || true
birdc_ b1 show protocols all p_f >"$OUT/views/bird1-protocol-frr1.txt" || true
vty -c "show bgp ipv4 unicast json" |
  jq '.routes |= with_entries(select(.key | startswith("10.200.") | not))' >"$OUT/views/frr1-ipv4.json" || true
vty -c "show bgp ipv6 unicast json" >"$OUT/views/frr1-ipv6.json" || true
vty -c "show bgp neighbors 10.0.0.1 json" >"$OUT/views/frr1-neighbor-bird1.json" || true
gob global rib | grep -v ' 10\.200\.' >"$OUT/views/gobgp1-ipv4.txt" || true
gob neighbor 10.0.0.1 >"$OUT/views/gobgp1-neighbor-bird1.txt" || true
sed -i '1{/^BIRD .* ready\.$/d}' "$OUT"/views/bird*.txt
for pid in "$GOBGP_PID" "$FRR_PID" "$(cat "$LAB/b2/bird.pid")" "$EXA_PID" "$(cat "$LAB/b1/bird.pid")"; do
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
done
sleep 1
phase end

# Stop the captures (SIGINT makes tcpdump flush and close the file).
for pid in "${PIDS[@]:0:${#NODES[@]}}"; do kill -INT "$pid" 2>/dev/null || true; done
for pid in "${PIDS[@]:0:${#NODES[@]}}"; do wait "$pid" 2>/dev/null || true; done

python3 "$HERE/extract.py" --nodes "$LAB/nodes.json" --phases "$LAB/phases" --out "$OUT" "$LAB"/port-*.pcap
# The pcaps (about 1.7 MB) are not committed; PCAP_DIR=dir keeps a copy.
if [ -n "${PCAP_DIR:-}" ]; then
  mkdir -p "$PCAP_DIR"
  for n in "${NODES[@]}"; do cp "$LAB/port-$n.pcap" "$PCAP_DIR/${NAME[$n]}-port.pcap"; done
fi
log "done: vectors and manifest.json in $OUT"
