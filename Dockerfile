# distributary in a container: Node.js 24 (from npm) on Debian bookworm, ffmpeg for RTMP outputs,
# libsrt for SRT outputs (loaded in process), util-linux for setpriv (children die with the service).
# Runs as a non-root user;
# the configuration (channels.json, tokens.json) lives in the /config volume.
#   docker build -t distributary .
#   docker run --network host -v distributary-config:/config distributary
# Host networking, because inputs arrive on UDP ports chosen per channel (and multicast needs the host's
# interfaces); see docker-compose.yml for the whole stack with Prometheus, Alertmanager and Grafana.

# BASE: any Debian bookworm image. The default is the official Node.js one; a machine without a registry builds
# on its own Debian (debootstrap --variant=minbase bookworm, imported with `podman import`; README: Container).
# Node.js 24 itself comes from npm (the `node` package), as everywhere else: the base needs only npm to get it.
ARG BASE=node:24.11.1-bookworm-slim

FROM ${BASE} AS build
WORKDIR /opt/distributary
# hadolint ignore=DL3008
RUN command -v npm >/dev/null || { apt-get update \
  && apt-get install -y --no-install-recommends npm ca-certificates && rm -rf /var/lib/apt/lists/*; }
# A CA bundle for a network that inspects TLS (a build can mount one and name it here); unset: the base's own.
ARG NPM_CONFIG_CAFILE
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY scripts ./scripts
COPY src ./src
RUN bash scripts/build-core.sh --force \
  && npm prune --omit=dev --no-audit --no-fund

FROM ${BASE}
# No documentation, manuals or translations; ffmpeg's libraries pull Mesa's GPU drivers (LLVM among them, 160 MB),
# which only a GPU would load and the service never does: left out.
# hadolint ignore=DL3008
RUN printf 'path-exclude=/usr/share/doc/*\npath-exclude=/usr/share/man/*\npath-exclude=/usr/share/locale/*\n' \
    > /etc/dpkg/dpkg.cfg.d/distributary-slim \
  && apt-get update \
  && apt-get install -y --no-install-recommends ffmpeg libsrt1.5-openssl util-linux ca-certificates \
  && for unused in libgl1-mesa-dri libllvm15 libz3-4; do \
    if dpkg -s "$unused" >/dev/null 2>&1; then dpkg --purge --force-depends "$unused"; fi; done \
  && apt-get clean && rm -rf /var/lib/apt/lists/* \
  && useradd --system --uid 10001 --home-dir /opt/distributary --shell /usr/sbin/nologin distributary \
  && mkdir -p /config && chown distributary:distributary /config
WORKDIR /opt/distributary
COPY --from=build /opt/distributary/node_modules ./node_modules
COPY --from=build /opt/distributary/src ./src
COPY views ./views
COPY package.json ./
COPY bin ./bin
USER distributary
ENV DISTRIBUTARY_CONFIG_DIR=/config \
    DISTRIBUTARY_PORT=8000
VOLUME ["/config"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["/opt/distributary/node_modules/.bin/node", "-e", "fetch('http://127.0.0.1:'+(process.env.DISTRIBUTARY_PORT||8000)+'/api/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["bin/distributary"]
CMD ["serve"]
