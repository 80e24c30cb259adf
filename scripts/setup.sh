#!/usr/bin/env bash
# Sets up what is missing, and nothing else: npm packages (which bring Node.js 24, Bun and Deno), the Debian
# packages the service and its tests use, and the WebAssembly packet core. Idempotent; quick when all is there.
#   scripts/setup.sh            for running the service
#   scripts/setup.sh --tests    also insists on what only the tests use (the load harness's smoke run included)
#   scripts/setup.sh --load     also insists on what the load harness uses (a C compiler, GStreamer, dvblast)
set -euo pipefail
cd "$(dirname "$0")/.."

for_tests=false
for_load=false
[ "${1:-}" = "--tests" ] && for_tests=true && for_load=true
[ "${1:-}" = "--load" ] && for_load=true

say() { printf 'setup: %s\n' "$*" >&2; }

# --- npm packages --------------------------------------------------------------------------------------------
stamp=node_modules/.distributary-setup
# The lockfile alone says what is installed (its root entry repeats package.json's dependencies): a change of
# package.json's scripts installs nothing again.
want="$(sha256sum <package-lock.json | cut -c1-64)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x node_modules/.bin/node ]; then
  command -v npm >/dev/null || { say "npm is required (install Node.js and npm first)"; exit 1; }
  say "installing npm packages (Node.js 24, Bun, Deno, libraries)"
  # `npm ci` installs exactly the lockfile and never rewrites it (the lockfile lists every platform's optional
  # packages, so it stays valid wherever it is installed).
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi

# --- Debian packages -----------------------------------------------------------------------------------------
missing=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_file() { [ -e "$1" ] || missing+=("$2"); }
# grep reads the whole list (not -q): stopping early would end ldconfig by SIGPIPE, which pipefail counts as
# the library missing.
need_lib() { /sbin/ldconfig -p 2>/dev/null | grep "$1" >/dev/null || missing+=("$2"); }
need_cmd ffmpeg ffmpeg
# The generated slate card's font (src/effects/channel/slate-maker.ts draws the channel's name with it).
need_file /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf fonts-dejavu-core
# SRT runs in process through libsrt (loaded with koffi, no compiler needed); Debian's OpenSSL flavour.
need_lib 'libsrt\(-openssl\)\?\.so\.1\.5 ' libsrt1.5-openssl
# RIST runs in process through librist, loaded with koffi as libsrt is.
need_lib 'librist\.so\.4 ' librist4
need_pkg() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ] || missing+=("$1"); }
if $for_tests; then
  # srt-live-transmit is only a test peer now.
  need_cmd srt-live-transmit srt-tools
  # RIST's test peers: librist's own ristsender, ristreceiver and ristsrppasswd, and GStreamer's ristsink.
  need_cmd ristsender rist-tools
  need_cmd gst-launch-1.0 gstreamer1.0-tools
  need_pkg gstreamer1.0-plugins-bad
  need_cmd nginx nginx
  need_file /usr/lib/nginx/modules/ngx_rtmp_module.so libnginx-mod-rtmp
  # The RTMPS tests' TLS front (nginx stream) and its self-signed CA.
  need_file /usr/lib/nginx/modules/ngx_stream_module.so libnginx-mod-stream
  need_cmd openssl openssl
  need_cmd promtool prometheus
  need_cmd amtool prometheus-alertmanager
  need_cmd chromium chromium
  need_cmd ps procps
  # test/lab/: network namespaces, veth pairs and bridges (ip), loss and partitions (nft), rate limits (tc).
  need_cmd ip iproute2
  need_cmd nft nftables
  # test/lab/ssm.test.ts: the router of source-specific joins forwards with the kernel's multicast routes.
  need_cmd smcrouted smcroute
  # test/ops/container.test.ts: the image built and run by podman (with runc) on a debootstrap base.
  need_cmd podman podman
  need_cmd runc runc
  need_cmd debootstrap debootstrap
  # podman kube play builds its pod's pause image around catatonit.
  need_cmd catatonit catatonit
  # test/ops/kubernetes.test.ts: the manifests rendered by kubectl's kustomize (any kubectl; Debian's when none).
  need_cmd kubectl kubernetes-client
fi
if $for_load; then
  # load-tests/: the C load generator and sinks are built with cc; GStreamer is one of the harness's anchors
  # (udpsrc, rtpmp2tdepay, tee, udpsink from base and good; srtsink from bad).
  need_cmd cc gcc
  need_cmd gst-launch-1.0 gstreamer1.0-tools
  # --anchors dvblast: VideoLAN's dvblast, one process per channel.
  need_cmd dvblast dvblast
  # --protocol rtmp: nginx-rtmp receives every contender's streams.
  need_cmd nginx nginx
  need_file /usr/lib/nginx/modules/ngx_rtmp_module.so libnginx-mod-rtmp
  need_pkg gstreamer1.0-plugins-base
  need_pkg gstreamer1.0-plugins-good
  need_pkg gstreamer1.0-plugins-bad
fi
if [ "${#missing[@]}" -gt 0 ]; then
  line="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "missing Debian packages; as root run:"
    printf '  sudo sh -c "%s"\n' "$line" >&2
    exit 1
  fi
fi

# --- WebAssembly packet core ---------------------------------------------------------------------------------
# The three modules and the layout file their hosts import; rebuilt only when a source changed.
bash scripts/build-core.sh

# --- Stripped modules ----------------------------------------------------------------------------------------
# Every TypeScript module with its types stripped, so that Node.js runs the service without loading its own
# type stripper in each thread (src/effects/runtime/threads/stripped-sources.mjs); a second or less.
node_modules/.bin/node --disable-warning=ExperimentalWarning scripts/strip-sources.ts >/dev/null
