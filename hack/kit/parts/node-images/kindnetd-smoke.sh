#!/bin/sh
# Runs INSIDE a throwaway kindnetd container (its own network namespace, NET_ADMIN):
# one reconcile against a fixture of three nodes, then checks what a node would get.
# Also exercises the iptables wrapper's first call for real.
set -o errexit -o nounset
host_ip=$(ip -4 -o addr show dev eth0 | awk '{split($4, a, "/"); print a[1]; exit}')
gw_ip=$(echo "$host_ip" | awk -F. '{printf "%s.%s.%s.%d", $1, $2, $3, ($4 == 250 ? 251 : 250)}')
cat > /tmp/nodes.json <<EOF
{"metadata": {"resourceVersion": "1"}, "items": [
 {"metadata": {"name": "this-node"}, "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]},
  "status": {"addresses": [{"type": "InternalIP", "address": "$host_ip"}]}},
 {"metadata": {"name": "other-node"}, "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]},
  "status": {"addresses": [{"type": "InternalIP", "address": "$gw_ip"}]}},
 {"metadata": {"name": "new-node"}, "spec": {}, "status": {"addresses": [{"type": "InternalIP", "address": "10.9.9.9"}]}}
]}
EOF
mkdir -p /tmp/net.d
export HOST_IP="$host_ip" POD_SUBNET=10.244.0.0/16
/bin/kindnetd -once -nodes-file /tmp/nodes.json -cni-dir /tmp/net.d
# a second pass must find nothing to change
/bin/kindnetd -once -nodes-file /tmp/nodes.json -cni-dir /tmp/net.d 2>/tmp/second.log
cat /tmp/second.log >&2

fail() { echo "kindnetd smoke: $*" >&2; exit 1; }
grep -q '"subnet": "10.244.0.0/24"' /tmp/net.d/10-kindnet.conflist || fail "conflist: $(cat /tmp/net.d/10-kindnet.conflist)"
ip -4 route show exact 10.244.1.0/24 | grep -q "via $gw_ip dev eth0" || fail "route: $(ip -4 route)"
iptables -t nat -S KINDNET-MASQ | grep -q -- '-d 10.244.0.0/16 -j RETURN' || fail "chain: $(iptables -t nat -S)"
iptables -t nat -S POSTROUTING | grep -q -- '-s 10.244.0.0/16 .*-j KINDNET-MASQ' || fail "jump: $(iptables -t nat -S)"
! grep -q -e 'wrote' -e 'route ' -e 'nat ' /tmp/second.log || fail "second pass changed things"
readlink /etc/alternatives/iptables | grep -q -e 'iptables-nft$' -e 'iptables-legacy$' || fail "wrapper did not pick a backend"
echo "kindnetd smoke: ok ($(iptables --version))"
