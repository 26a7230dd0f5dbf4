# Stand-in for nicolaka/netshoot: Debian's packages of the tools the lab's debug shells
# reach for (`kubectl run ... --command -- bash -l`). As upstream: root, /root, zsh by default.
ARG BASE
FROM ${BASE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      bash zsh curl dnsutils netcat-openbsd iputils-ping iproute2 tcpdump jq procps socat less >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
WORKDIR /root
CMD ["zsh"]
