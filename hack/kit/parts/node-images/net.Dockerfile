# kube-proxy and the kindnetd stand-in: both program the node's netfilter from a host
# network container, so both carry what upstream's distroless-iptables base carries
# (iptables with both backends, ip6tables, ipset, conntrack, nft) plus iproute2, and
# share those layers in the node's containerd.
FROM debian:bookworm-slim AS netbase
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables ipset conntrack nftables iproute2 >/dev/null \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log
COPY iptables-wrapper /usr/sbin/iptables-wrapper
# The wrapper outranks both backends until its first call picks one (see the script).
RUN for t in iptables ip6tables; do \
      update-alternatives --install /usr/sbin/$t $t /usr/sbin/iptables-wrapper 100 \
        --slave /usr/sbin/$t-restore $t-restore /usr/sbin/iptables-wrapper \
        --slave /usr/sbin/$t-save $t-save /usr/sbin/iptables-wrapper; \
    done \
 && test "$(readlink -f /usr/sbin/iptables-save)" = /usr/sbin/iptables-wrapper

FROM netbase AS kube-proxy
COPY kube-proxy /usr/local/bin/kube-proxy
ENTRYPOINT ["/usr/local/bin/kube-proxy"]

FROM netbase AS kindnetd
COPY kindnetd /bin/kindnetd
# NetworkPolicy enforcement (sigs.k8s.io/kube-network-policies), which the real kindnetd
# embeds: the CNI DaemonSet's second container runs it from this image
COPY netpol /bin/netpol
CMD ["/bin/kindnetd"]
