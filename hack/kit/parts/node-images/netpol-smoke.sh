#!/bin/sh
# Runs INSIDE a throwaway privileged kindnetd container: proves the network policy
# enforcer (/bin/netpol) without a cluster. This container plays the node; three network
# namespaces play pods routed through it: a server in namespace a, whose NetworkPolicy
# admits only namespace monitoring, and one client each in monitoring and outsider.
# netpol-smoke (the kit's harness, mounted at /smoke) fakes the API server and the pods.
set -o errexit -o nounset
S=/smoke/netpol-smoke
fail() {
  echo "netpol smoke: $*" >&2
  [ -f /tmp/netpol.log ] && { echo "--- netpol log (last 40 lines)" >&2; tail -n 40 /tmp/netpol.log >&2; }
  exit 1
}
# wait_for SECONDS CMD...: until CMD succeeds
wait_for() { n=$1; shift; while ! "$@" >/dev/null 2>&1; do n=$((n - 1)); [ "$n" -gt 0 ] || return 1; sleep 1; done; }

echo 1 > /proc/sys/net/ipv4/ip_forward
for p in srv:10.10.1.10 mon:10.10.2.20 out:10.10.3.30; do
  ns=${p%%:*} ip=${p#*:} gw=${p#*:}
  gw=${gw%.*}.1
  ip netns add "$ns"
  ip link add "veth-$ns" type veth peer name eth0 netns "$ns"
  ip addr add "$gw/24" dev "veth-$ns" && ip link set "veth-$ns" up
  ip -n "$ns" addr add "$ip/24" dev eth0 && ip -n "$ns" link set eth0 up && ip -n "$ns" link set lo up
  ip -n "$ns" route add default via "$gw"
done

mkdir -p /tmp/api
pod() { # pod NAMESPACE NAME IP APP
  printf '{"metadata":{"name":"%s","namespace":"%s","uid":"%s-%s","labels":{"app":"%s"}},"spec":{"nodeName":"smoke-node","containers":[{"name":"c","image":"x"}]},"status":{"phase":"Running","podIP":"%s","podIPs":[{"ip":"%s"}]}}' \
    "$2" "$1" "$1" "$2" "$4" "$3" "$3"
}
namespace() { printf '{"metadata":{"name":"%s","uid":"ns-%s","labels":{"kubernetes.io/metadata.name":"%s"}}}' "$1" "$1" "$1"; }
printf '{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[%s,%s,%s]}' \
  "$(pod a server 10.10.1.10 server)" "$(pod monitoring client 10.10.2.20 client)" "$(pod outsider client 10.10.3.30 client)" > /tmp/api/pods.json
printf '{"kind":"NamespaceList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[%s,%s,%s]}' \
  "$(namespace a)" "$(namespace monitoring)" "$(namespace outsider)" > /tmp/api/namespaces.json
cat > /tmp/api/networkpolicies.json <<'JSON'
{"kind":"NetworkPolicyList","apiVersion":"networking.k8s.io/v1","metadata":{"resourceVersion":"1"},"items":[
 {"metadata":{"name":"only-monitoring","namespace":"a","uid":"np-1"},
  "spec":{"podSelector":{"matchLabels":{"app":"server"}},"policyTypes":["Ingress"],
          "ingress":[{"from":[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]}]}}]}
JSON
"$S" api -addr 127.0.0.1:6443 /api/v1/pods=/tmp/api/pods.json /api/v1/namespaces=/tmp/api/namespaces.json \
  /apis/networking.k8s.io/v1/networkpolicies=/tmp/api/networkpolicies.json 2>/tmp/api.log &
ip netns exec srv "$S" serve 10.10.1.10:8080 &

# without the enforcer both clients get through: what follows is the policy's doing
wait_for 10 ip netns exec out "$S" dial 10.10.1.10:8080 1s || fail "no route from outsider to the server even without policies"
ip netns exec mon "$S" dial 10.10.1.10:8080 2s || fail "no route from monitoring to the server"

# as the DaemonSet runs it (default-cni.yaml)
KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=6443 \
  /bin/netpol --hostname-override=smoke-node --v=2 --nfqueue-id=98 >/tmp/netpol.log 2>&1 &
netpol=$!
in_set() { nft list set inet kube-network-policies podips-v4 | grep -qw 10.10.1.10; }
wait_for 60 in_set || fail "the server's IP never reached the nftables set: $(nft list ruleset 2>&1)"
# packets queued before the enforcer listens on queue 98 are dropped: wait for it
bound() { awk '$1 == 98 { found = 1 } END { exit !found }' /proc/net/netfilter/nfnetlink_queue; }
wait_for 30 bound || fail "nobody listens on nfqueue 98: $(cat /proc/net/netfilter/nfnetlink_queue)"

ip netns exec mon "$S" dial 10.10.1.10:8080 5s || fail "monitoring -> a/server refused, but the policy admits namespace monitoring"
if ip netns exec out "$S" dial 10.10.1.10:8080 3s 2>/dev/null; then
  fail "outsider -> a/server got through, but the policy admits only namespace monitoring"
fi
grep -q 'verdict="drop"' /tmp/netpol.log || fail "the enforcer logged no drop verdict"

# SIGINT (what the enforcer listens for): it removes its table on the way out
kill -INT "$netpol"
wait "$netpol" || fail "netpol exited $? on SIGINT"
! nft list table inet kube-network-policies >/dev/null 2>&1 || fail "table left behind after exit"
echo "netpol smoke: ok (monitoring admitted, outsider dropped, table removed on exit)"
