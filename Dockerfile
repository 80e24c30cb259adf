# distributary in a container: Node.js 24 on Debian bookworm (slim, pinned), ffmpeg for RTMP outputs,
# libsrt for SRT outputs (loaded in process), util-linux for setpriv (children die with the service).
# Runs as a non-root user;
# the configuration (channels.json, tokens.json) lives in the /config volume.
#   docker build -t distributary .
#   docker run --network host -v distributary-config:/config distributary
# Host networking, because inputs arrive on UDP ports chosen per channel (and multicast needs the host's
# interfaces); see docker-compose.yml for the whole stack with Prometheus, Alertmanager and Grafana.

FROM node:24.11.1-bookworm-slim AS build
WORKDIR /opt/distributary
COPY package.json package-lock.json ./
RUN npm install --no-audit --no-fund --loglevel=error
COPY scripts ./scripts
COPY src ./src
RUN bash scripts/build-core.sh --force && npm prune --omit=dev --no-audit --no-fund

FROM node:24.11.1-bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
  && apt-get install -y --no-install-recommends ffmpeg libsrt1.5-openssl util-linux ca-certificates \
  && rm -rf /var/lib/apt/lists/* \
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
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.DISTRIBUTARY_PORT||8000)+'/api/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["bin/distributary"]
CMD ["serve"]
