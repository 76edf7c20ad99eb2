#!/usr/bin/env bash
# The image test: builds Pier's Dockerfile from this checkout (committed or not: the build context is
# the working tree, filtered by .dockerignore), runs it on a new volume, probes /_/health and the
# examples (one using the database), restarts the container, starts a new one on the same volume,
# and checks the image's size and user. Ends with "image test: ok" (exit 0) or "image test: FAILED".
#
#   bash tests/image/run.sh          # podman if it works here, else docker
#
# Needs a working podman or docker; it never installs one. Where denoland/deno:2.9.6 cannot be
# pulled (podman only) it makes a stand-in (see below; needs debootstrap, root and an apt mirror).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)

DENO_VERSION=2.9.6
BASE=docker.io/denoland/deno:$DENO_VERSION
IMAGE=localhost/pier-image-test
PORT=${PIER_IMAGE_PORT:-18480}
MAX_BYTES=400000000
WORK=${PIER_IMAGE_WORK:-/tmp/pier-image-test}
mkdir -p "$WORK/empty"

failures=0
check() { # check NAME COMMAND...: runs the command, reports it
  if "${@:2}" >/dev/null 2>&1; then echo "ok    $1"; else echo "FAIL  $1"; failures=$((failures + 1)); fi
}
die() { echo "FAIL  $*"; echo "image test: FAILED"; exit 1; }
now() { date +%s.%N; }
since() { echo "scale=2; ($(now) - $1) / 1" | bc; }

if podman info >/dev/null 2>&1; then
  ENGINE=podman
  # Hosts without CAP_SYS_RESOURCE cannot have their rlimits raised above the hard limits, and
  # crun refuses cgroup v1 hybrid mounts (see container-smoke.sh); these settings do on any host.
  export CONTAINERS_CONF=$WORK/containers.conf
  printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=32768:32768"]\n' \
    "$(ulimit -Hn)" "$(ulimit -Hn)" >"$CONTAINERS_CONF"
  if command -v runc >/dev/null; then printf '[engine]\nruntime = "runc"\n' >>"$CONTAINERS_CONF"; fi
elif docker info >/dev/null 2>&1; then
  ENGINE=docker
else
  die "neither podman nor docker works here"
fi
echo "engine: $ENGINE"

# --- the base image ---------------------------------------------------------------------------
# denoland/deno:2.9.6 when it can be pulled; otherwise (podman only) a stand-in with its layout,
# made as ../shared/tools/container-smoke.sh does, but on a slim Debian as the real image is
# (denoland/deno_docker's debian.dockerfile: FROM debian:stable-slim, deno, tini, user deno 1993,
# DENO_DIR=/deno-dir/): debootstrap's minbase without what Debian's -slim images leave out.
BUILD_ARGS=()
STANDIN=localhost/pier-test/deno:$DENO_VERSION
SLIM=localhost/pier-test/debian:bookworm-slim
slim_debian() { # $SLIM
  podman image exists "$SLIM" && return 0
  command -v debootstrap >/dev/null || die "no $BASE, and no debootstrap for a stand-in"
  local mirror rootfs=$WORK/rootfs
  [ -n "$WORK" ] || die "WORK is empty"
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
  [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  rm -rf "$rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$WORK/debootstrap.log" ||
    die "debootstrap (see $WORK/debootstrap.log)"
  # As debuerreotype's slimify makes debian:*-slim: no docs but copyrights, man pages, locales.
  printf 'path-exclude /usr/share/%s/*\n' doc man groff info locale lintian linda \
    >"$rootfs/etc/dpkg/dpkg.cfg.d/docker"
  echo 'path-include /usr/share/doc/*/copyright' >>"$rootfs/etc/dpkg/dpkg.cfg.d/docker"
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  (cd "$rootfs/usr/share" && rm -rf man/* groff/* info/* locale/* lintian/* linda/*)
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import -q - "$SLIM" >/dev/null
  rm -rf "$rootfs"
}
standin() { # $STANDIN, and the build arguments that use it
  [ "$ENGINE" = podman ] || die "no $BASE and no way to make a stand-in with docker"
  slim_debian
  local dir=$WORK/deno-img
  mkdir -p "$dir"
  if [ ! -x "$dir/deno" ]; then
    (cd "$dir" && npm pack -q "@deno/linux-x64-glibc@$DENO_VERSION" >/dev/null &&
      tar -xzf "deno-linux-x64-glibc-$DENO_VERSION.tgz" package/deno && mv package/deno . &&
      rmdir package) || die "could not get deno $DENO_VERSION from npm"
  fi
  # denoland/deno_docker's _entry.sh
  printf '%s\n' '#!/bin/sh' 'set -e' 'case "$1" in' \
    '    bundle | cache | completions | doc | eval | fmt | help | info | link | repl | run | test | types )' \
    '    exec deno "$@";;' 'esac' 'exec "$@"' >"$dir/docker-entrypoint.sh"
  chmod 755 "$dir/docker-entrypoint.sh"
  printf '%s\n' "FROM $SLIM" \
    'RUN apt-get update \' \
    ' && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tini \' \
    ' && apt-get clean && rm -rf /var/lib/apt/lists/* \' \
    ' && ln -s /usr/bin/tini /tini \' \
    ' && useradd --uid 1993 --user-group deno && mkdir /deno-dir/ && chown deno:deno /deno-dir/' \
    "ENV DENO_DIR=/deno-dir/ DENO_INSTALL_ROOT=/usr/local DENO_VERSION=$DENO_VERSION" \
    'COPY deno /usr/bin/deno' \
    'COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh' \
    'ENTRYPOINT ["/tini", "--", "docker-entrypoint.sh"]' \
    'CMD ["eval", "console.log('"'"'Welcome to Deno!'"'"')"]' >"$dir/Containerfile"
  podman image exists "$STANDIN" ||
    podman build -q --pull=never -t "$STANDIN" "$dir" >/dev/null || die "building the stand-in base"
  BASE=$STANDIN
  # The machines this was written on reach npm through a TLS-intercepting proxy whose CA only the
  # host's bundle has: the build's Deno gets that bundle through DENO_CERT, set in a build-only tag
  # of the stand-in (podman build's --env does not reach RUN steps); the image does not keep it.
  local ca=/etc/ssl/certs/ca-certificates.crt
  if [ -f "$ca" ]; then
    printf 'FROM %s\nENV DENO_CERT=/build-ca.crt\n' "$STANDIN" |
      podman build -q --pull=never -t "$STANDIN-build" -f - "$WORK/empty" >/dev/null ||
      die "tagging the stand-in"
    BUILD_ARGS+=(-v "$ca:/build-ca.crt:ro" --build-arg "DENO_IMAGE=$STANDIN-build")
  else
    BUILD_ARGS+=(--build-arg "DENO_IMAGE=$STANDIN")
  fi
}
if timeout 120 $ENGINE pull -q "$BASE" >/dev/null 2>&1; then
  echo "base: $BASE"
else
  echo "base: a stand-in ($BASE cannot be pulled here)"
  standin
fi
# podman builds OCI images by default, which have no HEALTHCHECK; a stand-in is not to be pulled.
if [ "$ENGINE" = podman ]; then BUILD_ARGS+=(--format docker --pull=never); fi

# --- build ------------------------------------------------------------------------------------
t=$(now)
$ENGINE build "${BUILD_ARGS[@]}" -t "$IMAGE" "$ROOT" >"$WORK/build.log" 2>&1 ||
  { tail -40 "$WORK/build.log"; die "build (log: $WORK/build.log)"; }
if [[ " ${BUILD_ARGS[*]} " == *build-ca.crt* ]]; then
  # (a bare FROM would be the same image, --unsetenv ignored)
  printf 'FROM %s\nLABEL org.opencontainers.image.title=pier\n' "$IMAGE" |
    podman build -q --pull=never --format docker --unsetenv DENO_CERT -t "$IMAGE" -f - "$WORK/empty" \
      >/dev/null || die "dropping DENO_CERT"
fi
echo "built in $(since "$t")s"
bytes=$($ENGINE image inspect --format '{{.Size}}' "$IMAGE")
base_bytes=$($ENGINE image inspect --format '{{.Size}}' "$BASE")
echo "image size: $((bytes / 1000000)) MB (the base $((base_bytes / 1000000)) MB)"
check "image size $((bytes / 1000000)) MB <= $((MAX_BYTES / 1000000)) MB" test "$bytes" -le "$MAX_BYTES"
check "image user is deno" test "$($ENGINE image inspect --format '{{.Config.User}}' "$IMAGE")" = deno
check "image has a HEALTHCHECK" sh -c \
  "$ENGINE image inspect --format '{{.Config.Healthcheck}}' $IMAGE | grep -q health.ts"
check "STOPSIGNAL SIGTERM" test "$($ENGINE image inspect --format '{{.Config.StopSignal}}' "$IMAGE")" = SIGTERM
check "no toolchain in the image" sh -c "$ENGINE run --rm $IMAGE ls node_modules/.deno >$WORK/npm.txt &&
  grep -q jco-transpile $WORK/npm.txt && ! grep -qE 'componentize|binaryen|typescript' $WORK/npm.txt"
check "no .git, .build, tests or component sources in the image" $ENGINE run --rm "$IMAGE" sh -c \
  'test ! -e .git && test ! -e .build && test ! -e tests && ! ls components | grep -q "[.]ts$"'
check "no DENO_CERT left in the image" sh -c \
  "! $ENGINE image inspect --format '{{.Config.Env}}' $IMAGE | grep -q DENO_CERT"

# --- run --------------------------------------------------------------------------------------
CIDS=()
VOL=pier-image-test-$$
remove() { # stops (SIGTERM, up to 20 s) and removes a container
  $ENGINE stop -t 20 "$1" >/dev/null 2>>"$WORK/engine.log"
  $ENGINE rm -f -v "$1" >/dev/null 2>>"$WORK/engine.log"
}
cleanup() {
  for c in "${CIDS[@]}"; do remove "$c"; done
  $ENGINE volume rm -f "$VOL" "$VOL-mine" >/dev/null 2>&1
}
trap cleanup EXIT
$ENGINE volume create "$VOL" >/dev/null
url=http://127.0.0.1:$PORT
wait_healthy() { # seconds until /_/health answers 200 (at most 120 s)
  local t
  t=$(now)
  for _ in $(seq 1 1200); do
    curl -fsS -o /dev/null "$url/_/health" 2>/dev/null && { since "$t"; return 0; }
    sleep 0.1
  done
  return 1
}
# (podman logs to stderr that it has no systemd to time health checks: kept in engine.log)
run() { $ENGINE run -d -p "127.0.0.1:$PORT:8000" -v "$VOL:/app/data" "$IMAGE" 2>>"$WORK/engine.log"; }

t=$(now)
cid=$(run) || die "docker run"
CIDS+=("$cid")
wait_healthy >/dev/null || { $ENGINE logs "$cid"; die "never healthy"; }
echo "first start on an empty volume: healthy in $(since "$t")s (from run)"
health=$WORK/health.json
curl -fsS "$url/_/health" >"$health"
check "every example loaded" sh -c "grep -q '\"name\":\"todos\"' $health && ! grep -q '\"state\":\"failed\"' $health"
check "compile cache baked in (no cache miss)" sh -c \
  "grep -q '\"cache\":\"hit\"' $health && ! grep -q '\"cache\":\"miss\"' $health"
check "GET /hello" sh -c "curl -fsS $url/hello | grep -q Hello"
check "POST /todos (database)" curl -fsS -X POST -H 'content-type: application/json' \
  -d '{"title":"persist me"}' "$url/todos"
check "GET /counter/home (database)" sh -c "curl -fsS $url/counter/home | grep -q '\"visits\":1'"
check "server runs as uid 1993 (owns main.db)" \
  test "$($ENGINE exec "$cid" stat -c %u /app/data/main.db)" = 1993
check "no process runs as root" sh -c \
  "$ENGINE exec $cid sh -c 'stat -c %u /proc/[0-9]*' >$WORK/uids.txt && ! grep -qx 0 $WORK/uids.txt"
if [ "$ENGINE" = podman ]; then check "HEALTHCHECK passes" podman healthcheck run "$cid"; fi

t=$(now)
$ENGINE stop -t 20 "$cid" >/dev/null 2>>"$WORK/engine.log"
code=$($ENGINE inspect -f '{{.State.ExitCode}}' "$cid")
echo "stop: $(since "$t")s, exit code $code"
check "stops on SIGTERM (not killed)" test "$code" != 137

t=$(now)
$ENGINE start "$cid" >/dev/null 2>>"$WORK/engine.log"
wait_healthy >/dev/null || { $ENGINE logs "$cid"; die "never healthy after restart"; }
echo "restart: healthy in $(since "$t")s"
check "todo survived the restart" sh -c "curl -fsS $url/todos | grep -q 'persist me'"
remove "$cid"

t=$(now)
cid=$(run) || die "docker run on the used volume"
CIDS+=("$cid")
wait_healthy >/dev/null || { $ENGINE logs "$cid"; die "never healthy in a new container"; }
echo "new container on the same volume: healthy in $(since "$t")s"
check "todo survived a new container" sh -c "curl -fsS $url/todos | grep -q 'persist me'"
check "counter kept its visits" sh -c "curl -fsS $url/counter/home | grep -q '\"visits\":2'"
remove "$cid"

# Your own components: a directory mounted read-only over the examples (here the hello example
# under another name), served by the image on a volume of its own.
mine=$WORK/mine
rm -rf "$mine" && mkdir -p "$mine"
$ENGINE run --rm "$IMAGE" cat components/hello.wasm >"$mine/mine.wasm" 2>>"$WORK/engine.log"
$ENGINE run --rm "$IMAGE" cat components/hello.permissions.json >"$mine/mine.permissions.json" \
  2>>"$WORK/engine.log"
chmod -R a+rX "$mine"
cid=$($ENGINE run -d -p "127.0.0.1:$PORT:8000" -v "$mine:/app/components:ro" -v "$VOL-mine:/app/data" \
  "$IMAGE" 2>>"$WORK/engine.log") || die "docker run with own components"
CIDS+=("$cid")
wait_healthy >/dev/null || { $ENGINE logs "$cid"; die "never healthy with own components"; }
check "own components mounted: only they serve" sh -c \
  "curl -fsS $url/_/health | grep -q '\"name\":\"mine\"' && ! curl -fsS $url/_/health | grep -q '\"name\":\"todos\"'"
check "own components mounted: GET /hello" sh -c "curl -fsS $url/hello | grep -q Hello"

if [ "$failures" -eq 0 ]; then echo "image test: ok"; else echo "image test: FAILED ($failures)"; exit 1; fi
