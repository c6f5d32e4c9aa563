#!/usr/bin/env bash
# pprofd demo: build pprofd and a demo Go service, run two demo instances and pprofd against
# them for DEMO_SECONDS, then show what was collected and what it cost.
#
#   scripts/demo.sh
#
# Environment (all optional):
#   DEMO_DIR           where profiles are written (default: <repo>/demo-profiles; wiped first)
#   DEMO_SECONDS       how long pprofd runs (default 45)
#   DEMO_INTERVAL      scrape interval (default 15s)
#   DEMO_PORT_A/_B     demo-app ports on 127.0.0.1 (default 16061, 16062)
#   DEMO_METRICS_PORT  pprofd's own HTTP port on 127.0.0.1 (default 19750)
#   DEMO_WORK          demo-app -work factor (default 1)
#   DEMO_SKIP_DEPS=1   do not run scripts/install-deps.sh
#   PPROFD_BIN         use this pprofd binary instead of building build-release/src/pprofd
#
# Exits non-zero when a demo instance lacks a process_cpu, memory or goroutine profile, when
# `go tool pprof` cannot read a stored profile, or when pprofd does not exit 0 on SIGTERM.
set -euo pipefail

orig_pwd=$PWD
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd -P)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }
running() { # true while pid $1 exists and is not a zombie (an exited child not yet waited for)
  local state
  state=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

abs_path() { # resolve a path given relative to the caller's cwd
  case $1 in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s\n' "$orig_pwd/$1" ;;
  esac
}

DEMO_DIR=$(abs_path "${DEMO_DIR:-$root/demo-profiles}")
DEMO_DIR=${DEMO_DIR%/}
DEMO_SECONDS=${DEMO_SECONDS:-45}
DEMO_INTERVAL=${DEMO_INTERVAL:-15s}
DEMO_PORT_A=${DEMO_PORT_A:-16061}
DEMO_PORT_B=${DEMO_PORT_B:-16062}
DEMO_METRICS_PORT=${DEMO_METRICS_PORT:-19750}
DEMO_WORK=${DEMO_WORK:-1}
export DEMO_DIR DEMO_INTERVAL DEMO_PORT_A DEMO_PORT_B DEMO_METRICS_PORT

[[ $DEMO_SECONDS =~ ^[0-9]+$ && $DEMO_SECONDS -ge 10 ]] || die "DEMO_SECONDS must be an integer >= 10"
for p in "$DEMO_PORT_A" "$DEMO_PORT_B" "$DEMO_METRICS_PORT"; do
  [[ $p =~ ^[0-9]+$ && $p -ge 1 && $p -le 65535 ]] || die "invalid port '$p'"
done
[[ $DEMO_PORT_A != "$DEMO_PORT_B" ]] || die "DEMO_PORT_A and DEMO_PORT_B must differ"

# Logs, metrics and the demo binaries' output live next to (not inside) the profile directory,
# so the file sink's retention never sees them and the profile counts below stay exact.
run_dir=${DEMO_DIR}-run
pprofd_log=$run_dir/pprofd.log
metrics_file=$run_dir/metrics.txt
marker=.pprofd-demo

# ---------------------------------------------------------------------------------------------
# cleanup: stop everything this script started

pids=()
cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do
      running "$pid" || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() { # true when something accepts connections on 127.0.0.1:$1
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
# a. dependencies

if [[ ${DEMO_SKIP_DEPS:-0} != 1 ]]; then
  log "installing dependencies (scripts/install-deps.sh)"
  scripts/install-deps.sh
fi
command -v go >/dev/null 2>&1 || die "go not found on PATH (install golang-go)"
command -v curl >/dev/null 2>&1 || die "curl not found on PATH"

# ---------------------------------------------------------------------------------------------
# b. pprofd (Release)

if [[ -n ${PPROFD_BIN:-} ]]; then
  pprofd=$(abs_path "$PPROFD_BIN")
  log "using pprofd binary $pprofd"
else
  log "building pprofd (Release, build-release/)"
  cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DPPROFD_BUILD_TESTS=OFF
  cmake --build build-release -j"$(nproc)" --target pprofd
  pprofd=$root/build-release/src/pprofd
fi
[[ -x $pprofd ]] || die "pprofd binary not found at $pprofd"

# ---------------------------------------------------------------------------------------------
# c. demo app (standard library only: no module download, no network)

log "building examples/demo-app ($(go version))"
mkdir -p build-release
(cd examples/demo-app && GOPROXY=off GOTOOLCHAIN=local go build -o "$root/build-release/demo-app" .)
demo_app=$root/build-release/demo-app

# ---------------------------------------------------------------------------------------------
# d. run directory and two demo instances

for port in "$DEMO_PORT_A" "$DEMO_PORT_B" "$DEMO_METRICS_PORT"; do
  port_in_use "$port" && die "port 127.0.0.1:$port is already in use (set DEMO_PORT_A, DEMO_PORT_B or DEMO_METRICS_PORT)"
done

# Refuse to wipe anything this script did not create.
case $DEMO_DIR in
  "" | / | "$root" | "${HOME:-/}" | "${HOME:-/}"/) die "refusing to use DEMO_DIR=$DEMO_DIR" ;;
esac
# $run_dir/.pprofd-demo names the DEMO_DIR of an earlier run: only such directories (or empty
# ones) are wiped; the profile directory itself holds nothing but what pprofd writes.
previous=""
[[ -f $run_dir/$marker ]] && previous=$(<"$run_dir/$marker")
for d in "$DEMO_DIR" "$run_dir"; do
  if [[ -e $d ]]; then
    if [[ -d $d && ( $previous == "$DEMO_DIR" || -z $(ls -A "$d") ) ]]; then
      rm -rf -- "$d"
    else
      die "$d exists and was not created by this script; remove it or set DEMO_DIR"
    fi
  fi
done
mkdir -p "$DEMO_DIR" "$run_dir"
printf '%s\n' "$DEMO_DIR" >"$run_dir/$marker"

declare -A app_pid=()
start_app() { # name port
  "$demo_app" -listen "127.0.0.1:$2" -name "$1" -work "$DEMO_WORK" >"$run_dir/$1.log" 2>&1 &
  app_pid[$1]=$!
  pids+=("$!")
}
wait_app() { # name port
  local i
  for i in $(seq 1 50); do
    if ! running "${app_pid[$1]}"; then
      cat "$run_dir/$1.log" >&2 || true
      die "demo-app $1 exited during startup (port $2 taken?)"
    fi
    if curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$2/debug/pprof/"; then
      log "demo-app $1 is up on 127.0.0.1:$2 (pid ${app_pid[$1]})"
      return 0
    fi
    sleep 0.2
  done
  die "demo-app $1 did not answer http://127.0.0.1:$2/debug/pprof/ within 10 s"
}
log "starting demo-a on 127.0.0.1:$DEMO_PORT_A and demo-b on 127.0.0.1:$DEMO_PORT_B"
start_app demo-a "$DEMO_PORT_A"
start_app demo-b "$DEMO_PORT_B"
wait_app demo-a "$DEMO_PORT_A"
wait_app demo-b "$DEMO_PORT_B"

# ---------------------------------------------------------------------------------------------
# e. pprofd

clk_tck=$(getconf CLK_TCK)
cpu_ticks() { # utime + stime of pid $1; fields after the ")" that ends the command name
  local stat
  stat=$(<"/proc/$1/stat") || return 1
  stat=${stat##*) }
  # shellcheck disable=SC2086
  set -- $stat
  echo $(( ${12} + ${13} ))
}
status_kib() { # value of field $2 (e.g. VmRSS, VmHWM) in /proc/$1/status, in KiB; 0 if gone
  awk -v k="$2:" '$1 == k { v = $2 } END { print v + 0 }' "/proc/$1/status" 2>/dev/null || true
}

log "running pprofd for ${DEMO_SECONDS}s (config examples/demo.yaml, profiles in $DEMO_DIR, log $pprofd_log)"
start_ns=$(date +%s%N)
"$pprofd" run --config.file="$root/examples/demo.yaml" >"$pprofd_log" 2>&1 &
pprofd_pid=$!
pids+=("$pprofd_pid")

pprofd_died() {
  local rc=0
  wait "$pprofd_pid" || rc=$?
  echo "---- last lines of $pprofd_log ----" >&2
  tail -n 20 "$pprofd_log" >&2 || true
  die "pprofd exited early with code $rc"
}

sample_at=$(( DEMO_SECONDS - 5 ))
for (( s = 0; s < sample_at; s++ )); do
  sleep 1
  running "$pprofd_pid" || pprofd_died
done

rss_kib=$(status_kib "$pprofd_pid" VmRSS)
hwm_kib=$(status_kib "$pprofd_pid" VmHWM)
ticks=$(cpu_ticks "$pprofd_pid")
sample_ns=$(date +%s%N)
if curl -fsS --max-time 5 -o "$metrics_file" "http://127.0.0.1:$DEMO_METRICS_PORT/metrics"; then
  metrics_ok=1
else
  metrics_ok=0
  log "warning: could not fetch http://127.0.0.1:$DEMO_METRICS_PORT/metrics"
fi

for (( ; s < DEMO_SECONDS; s++ )); do
  sleep 1
  running "$pprofd_pid" || pprofd_died
done
# The last reading before SIGTERM (CPU time keeps counting until exit, so read it now too).
ticks=$(cpu_ticks "$pprofd_pid" || echo "$ticks")
rss_end_kib=$(status_kib "$pprofd_pid" VmRSS)
hwm_kib=$(status_kib "$pprofd_pid" VmHWM)
end_ns=$(date +%s%N)

log "sending SIGTERM to pprofd (pid $pprofd_pid)"
kill -TERM "$pprofd_pid"
term_ns=$(date +%s%N)
for _ in $(seq 1 200); do # 20 s: shutdown_timeout (10 s) plus slack
  running "$pprofd_pid" || break
  sleep 0.1
done
pprofd_rc=0
if running "$pprofd_pid"; then
  log "pprofd did not exit within 20 s of SIGTERM; killing it"
  kill -KILL "$pprofd_pid" 2>/dev/null || true
fi
wait "$pprofd_pid" || pprofd_rc=$?
stop_ms=$(( ($(date +%s%N) - term_ns) / 1000000 ))
log "pprofd exited with code $pprofd_rc after ${stop_ms} ms"

# The demo instances are no longer needed.
for name in demo-a demo-b; do
  kill -TERM "${app_pid[$name]}" 2>/dev/null || true
done

# ---------------------------------------------------------------------------------------------
# f. profiles per target and type (layout: <dir>/<service_name>/<__name__>/<unix_ms>-<instance>.pb.gz)

failed=0
types=(process_cpu memory goroutine mutex block)
required=(process_cpu memory goroutine)

mapfile -d '' profiles < <(find "$DEMO_DIR" -mindepth 3 -maxdepth 3 -type f -name '*.pb.gz' -print0 | sort -z)

echo
echo "Profiles collected in $DEMO_DIR (${#profiles[@]} files):"
{
  printf 'demo-a\t127.0.0.1:%s\t-\ndemo-b\t127.0.0.1:%s\t-\n' "$DEMO_PORT_A" "$DEMO_PORT_B" # rows even when empty
  for f in "${profiles[@]}"; do
    rel=${f#"$DEMO_DIR"/}
    service=${rel%%/*}
    rest=${rel#*/}
    type=${rest%%/*}
    base=${rest#*/}
    base=${base%.pb.gz}
    printf '%s\t%s\t%s\n' "$service" "${base#*-}" "$type"
  done
} | sort | awk -F'\t' -v types="${types[*]}" '
  BEGIN { nt = split(types, t, " ") }
  { key = $1 "\t" $2; if (!(key in seen)) { seen[key] = 1; keys[++n] = key }; c[key, $3]++ }
  END {
    printf "%-14s %-22s", "service_name", "instance"
    for (j = 1; j <= nt; j++) printf " %11s", t[j]
    printf "\n"
    for (i = 1; i <= n; i++) {
      split(keys[i], k, "\t")
      printf "%-14s %-22s", k[1], k[2]
      for (j = 1; j <= nt; j++) printf " %11d", c[keys[i], t[j]]
      printf "\n"
    }
  }'

missing=()
for port in "$DEMO_PORT_A" "$DEMO_PORT_B"; do
  for type in "${required[@]}"; do
    found=0
    for f in "${profiles[@]}"; do
      [[ $f == */"$type"/*-"127.0.0.1:$port.pb.gz" ]] && { found=1; break; }
    done
    [[ $found == 1 ]] || missing+=("127.0.0.1:$port/$type")
  done
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "MISSING: no profile for ${missing[*]}"
  failed=1
fi

# Every profile must have its JSON sidecar with matching labels.
if command -v python3 >/dev/null 2>&1; then
  if ! python3 - "$DEMO_DIR" <<'PY'
import json, os, sys
root = sys.argv[1]
bad = 0
checked = 0
for dirpath, _, files in os.walk(root):
    for name in sorted(files):
        if not name.endswith(".pb.gz"):
            continue
        path = os.path.join(dirpath, name)
        rel = os.path.relpath(path, root).split(os.sep)
        if len(rel) != 3:
            continue
        checked += 1
        side = path[: -len(".pb.gz")] + ".json"
        try:
            with open(side) as fh:
                meta = json.load(fh)
            labels = meta["labels"]
            for k in ("target", "time_nanos", "duration_nanos", "sample_types"):
                if k not in meta:
                    raise ValueError("no %r" % k)
            if labels.get("__name__") != rel[1]:
                raise ValueError("__name__ %r, directory %r" % (labels.get("__name__"), rel[1]))
            if labels.get("service_name", "").replace("/", "_") != rel[0]:
                raise ValueError("service_name %r, directory %r" % (labels.get("service_name"), rel[0]))
            inst = rel[2][: -len(".pb.gz")].split("-", 1)[1]
            want = (labels.get("pod") or labels.get("instance") or "").replace("/", "_")
            if want != inst:
                raise ValueError("instance/pod %r, file name %r" % (want, inst))
        except Exception as e:  # noqa: BLE001 - report every kind of problem
            bad += 1
            print("BAD SIDECAR %s: %s" % (side, e))
print("sidecars: %d checked, %d bad" % (checked, bad))
sys.exit(1 if bad else 0)
PY
  then
    failed=1
  fi
else
  echo "(python3 not found: JSON sidecars not checked)"
fi

# ---------------------------------------------------------------------------------------------
# g. the top functions of one CPU profile (the largest one: the most samples)

cpu_profile=$(find "$DEMO_DIR" -mindepth 3 -maxdepth 3 -path '*/process_cpu/*' -name '*.pb.gz' -printf '%s\t%p\n' |
  sort -rn | head -n 1 | cut -f 2-)
if [[ -n $cpu_profile ]]; then
  echo
  echo "Top 10 functions of ${cpu_profile#"$root"/}:"
  go tool pprof -top -nodecount=10 "$cpu_profile" 2>/dev/null || { echo "go tool pprof -top failed"; failed=1; }
fi

# ---------------------------------------------------------------------------------------------
# h. every stored profile must be readable by go tool pprof; pprofd's cost

echo
ok=0
bad=0
for f in "${profiles[@]}"; do
  if err=$(go tool pprof -raw "$f" 2>&1 >/dev/null); then
    ok=$((ok + 1))
  else
    bad=$((bad + 1))
    echo "UNREADABLE: ${f#"$root"/}: $(printf '%s' "$err" | tail -n 3)"
  fi
done
echo "go tool pprof -raw: $ok ok, $bad failed"
[[ $bad -eq 0 ]] || failed=1

if [[ $metrics_ok == 1 ]]; then
  echo
  echo "pprofd metrics at t=${sample_at}s (full text in ${metrics_file#"$root"/}):"
  grep -E '^pprofd_(scrapes_total|sink_sent_profiles_total|sink_dropped_profiles_total|delta_total)' "$metrics_file" || true
fi

echo
awk -v rss="$rss_kib" -v rss_end="$rss_end_kib" -v hwm="$hwm_kib" -v ticks="$ticks" -v hz="$clk_tck" \
    -v wall_ns="$((end_ns - start_ns))" -v at="$sample_at" -v rc="$pprofd_rc" -v stop="$stop_ms" 'BEGIN {
  cpu = ticks / hz; wall = wall_ns / 1e9
  printf "pprofd: RSS %.1f MiB at t=%ds, %.1f MiB at the end, peak %.1f MiB\n", rss / 1024, at, rss_end / 1024, hwm / 1024
  printf "pprofd: %.2f CPU seconds in %.1f s = %.2f%% of one core\n", cpu, wall, 100 * cpu / wall
  printf "pprofd: exit code %d after SIGTERM (%d ms)\n", rc, stop
}'
if [[ $pprofd_rc -ne 0 ]]; then
  echo "FAILED: pprofd exited with code $pprofd_rc"
  failed=1
fi

echo
if [[ $failed -ne 0 ]]; then
  echo "demo: FAILED (logs in ${run_dir#"$root"/})"
  exit 1
fi
echo "demo: OK (profiles in ${DEMO_DIR#"$root"/}, logs in ${run_dir#"$root"/})"
