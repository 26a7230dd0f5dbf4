# Stand-in for curlimages/curl: Debian's curl with upstream's user and entrypoint
# semantics (user curl_user 100:101, `docker run IMAGE -sS URL` runs curl, any other
# command runs as given; the lab's probe pods override it with `sleep`).
ARG BASE
FROM ${BASE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && groupadd --system --gid 101 curl_group \
 && useradd --system --uid 100 --gid 101 --create-home --home-dir /home/curl_user --shell /sbin/nologin curl_user
COPY curl-entrypoint.sh /entrypoint.sh
USER curl_user
WORKDIR /home/curl_user
ENTRYPOINT ["/entrypoint.sh"]
CMD ["curl"]
