# Shared by scripts/demo, scripts/test, scripts/bench: Debian packages, the build, helpers.
# Sourced, not run.

DAYBREAK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Every Debian package daybreak builds, tests or demos with.
DAYBREAK_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libcli11-dev libsqlitecpp-dev libsqlite3-dev sqlite3 libcurl4-openssl-dev libssl-dev
  nlohmann-json3-dev libtomlplusplus-dev libspdlog-dev libfmt-dev libhowardhinnant-date-dev tzdata
  libphonenumber-dev libprotobuf-dev libicu-dev libcpp-httplib-dev zlib1g-dev libbrotli-dev
  libmicrohttpd-dev   # daybreak-callbacks' HTTP server
  libgtest-dev libgmock-dev googletest librapidcheck-dev libbenchmark-dev
  python3 python3-aiosmtpd faketime curl jq
  openssl   # the TLS tests make their certificates with `openssl req`
  prometheus prometheus-node-exporter chromium  # promtool checks the textfiles and rules; test_prometheus scrapes
                                                 # with the real node_exporter; headless Chromium renders the HTML report
  cron systemd   # test_schedule_cron runs the real cron daemon; systemd-analyze reads the shipped timers
  postgresql libpq-dev   # the PostgreSQL ledger: libpq to build, the server for its tests
  dpkg-dev file man-db   # the .deb: dpkg-shlibdeps computes Depends, CPack reads ELF types; man -l
)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs whatever of DAYBREAK_PACKAGES is missing (needs root; says so otherwise).
ensure_packages() { ensure_debian_packages "${DAYBREAK_PACKAGES[@]}"; }

# Installs whatever of the named Debian packages is missing: for tools only one script needs
# (scripts/fuzz: clang-14, libclang-rt-14-dev), which stay out of DAYBREAK_PACKAGES.
ensure_debian_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing missing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq || die "apt-get update failed"
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install failed: ${missing[*]}"
}

# Configures and builds into $1 (a build directory) with extra CMake arguments after it;
# $BUILD_TARGETS (space-separated) limits what is built.
build_tree() {
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    cmake -S "$DAYBREAK_ROOT" -B "$dir" -G Ninja "$@" >/dev/null || die "cmake configure failed"
  fi
  # shellcheck disable=SC2086
  ninja -C "$dir" -j"$(nproc)" ${BUILD_TARGETS:-} >&2 || die "build failed"
}

# Starts the simulator in the background; sets SIM_PID and SIM_PORT. Args go to daybreak-sim.
start_simulator() {
  local bin=$1 portfile=$2; shift 2
  rm -f "$portfile"
  "$bin" --port 0 --port-file "$portfile" "$@" 2>>"${SIM_LOG:-/dev/null}" &
  SIM_PID=$!
  for _ in $(seq 1 100); do
    [ -s "$portfile" ] && break
    kill -0 "$SIM_PID" 2>/dev/null || die "simulator exited at start (see ${SIM_LOG:-its log})"
    sleep 0.05
  done
  [ -s "$portfile" ] || die "simulator did not start"
  SIM_PORT=$(cat "$portfile")
}

# Milliseconds since the epoch, from the real clock (scripts only; the binaries take DAYBREAK_CLOCK).
now_ms() { date +%s%3N; }
