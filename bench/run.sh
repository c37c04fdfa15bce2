#!/usr/bin/env bash
# Load benchmark of cognito_auth, side by side with plain reverse_proxy.
#
#   bench/run.sh                               # 5 rounds of A B C, 10 s each
#   ROUNDS=7 NICE=-15 PAIRED=1 bench/run.sh    # busy machine: see below
#
# A = plain reverse_proxy to a tiny backend (no auth), sent the very same
#     requests as B (same Authorization headers)
# B = cognito_auth + reverse_proxy, tokens reused (1 000 clients, cache warm)
# C = cognito_auth + reverse_proxy, every token new (150 000 distinct tokens,
#     fresh Caddy, so none is in the cache; more than a 10 s run sends, so
#     none comes round again either)
# H = (REF_HEADERS=1) plain reverse_proxy behind request_header setting the
#     seven X-Cognito-* headers cognito_auth forwards: what forwarding those
#     headers costs Caddy without any authorization
#
# It builds our Caddy and the helper (bench/benchenv: JWKS server, tiny
# backend, token minting), runs the configs one after another as A B C A B C
# …, each on a freshly started Caddy pinned to SERVER_CPU while wrk and the
# helper are pinned to LOAD_CPU, and prints req/s, p99, Caddy CPU time per
# request and the ratios to plain. Before timing it checks that no token and
# a bad token get 401 and a good one 200. With PAIRED=1 it then also runs
# A and B (and A and C) at the same time on the server CPU, each loaded by
# its own wrk, and compares their CPU time per request: both see the same
# machine at the same moment, which makes the ratio stable on a shared or
# busy machine where back-to-back runs drift by ±10 %.
#
# Then (RATE_PCT, default 25) a fixed-rate phase measures added latency the
# way a service sees it: `benchenv rate` sends A, B and C the same requests
# at one constant rate, RATE_PCT % of what plain A reached above (on 2 cores
# the generator shares its core with the backend, and 25 % keeps that core
# below half busy), so nothing is saturated and p99 is latency rather than the queue a closed-loop wrk
# builds at full load (there, p99 only restates the throughput ratio). It is
# an open-model generator: requests are due on schedule whether or not
# earlier ones were answered, and latency runs from the due time, so a
# server that falls behind cannot hide it (no coordinated omission).
#
# Everything listens on 127.0.0.1 only; every process it starts is stopped on
# exit (also on Ctrl-C), and every wrk run is time-bounded, so the script
# ends by itself.
#
# Requires: go, wrk, curl, taskset (apt-get install -y wrk).
# README.md (Performance) has the latest figures and how to read them.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-${TMPDIR:-/tmp}/caddy-cognito-bench}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10} # seconds per timed run
WARMUP=${WARMUP:-3}      # seconds of warm-up per run (not timed)
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}
N_REUSED=${N_REUSED:-1000}
N_NEW=${N_NEW:-150000}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
CADDY_PORT=${CADDY_PORT:-9300}   # paired runs also use CADDY_PORT+10
JWKS_PORT=${JWKS_PORT:-9301}
BACKEND_PORT=${BACKEND_PORT:-9302}
REF_HEADERS=${REF_HEADERS:-0}    # 1: add config H
PAIRED=${PAIRED:-0}              # 1: add the paired runs
RATE_PCT=${RATE_PCT:-25}         # fixed-rate latency phase at this % of A's req/s (0: skip it)
NICE=${NICE:-0}                  # e.g. -15 (root): favour the benchmark's processes on a shared machine
QUIET_MAX_WAIT=${QUIET_MAX_WAIT:-120} # s to wait, before each run, for a machine without CPU contention (0: never)
QUIET_PSI=${QUIET_PSI:-10}       # quiet: CPU pressure (/proc/pressure/cpu "some" avg10) below this %
HOST=127.0.0.1
ISSUER="http://$HOST:$JWKS_PORT/us-west-2_BENCHPOOL"
CLIENT=6vo4qadm0jp3e8kkk0c2d2l8im

for tool in go wrk curl taskset awk; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool is required (apt-get install -y wrk curl util-linux)" >&2; exit 1; }
done
mkdir -p "$WORK"

PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }

# --- build -------------------------------------------------------------------
log "== building Caddy with cognito_auth and the helper (first build can take minutes)"
(cd "$ROOT" && go build -o "$WORK/caddy" ./cmd/caddy && go build -o "$WORK/benchenv" ./bench/benchenv)

# --- tokens ------------------------------------------------------------------
stamp="$ISSUER $CLIENT $N_REUSED $N_NEW"
if [[ ! -s $WORK/tokens-new.txt || ! -s $WORK/key.pem || "$(cat "$WORK/tokens.stamp" 2>/dev/null)" != "$stamp" ]] ||
	[[ -n $(find "$WORK/tokens-new.txt" -mmin +720 2>/dev/null) ]]; then
	log "== minting $N_REUSED + $N_NEW RS256 tokens (valid 24 h; about a minute on 2 cores)"
	rm -f "$WORK/tokens.stamp"
	"$WORK/benchenv" tokens -key "$WORK/key.pem" -n "$N_REUSED" -seed 0 -iss "$ISSUER" -aud "$CLIENT" -out "$WORK/tokens-reused.txt"
	"$WORK/benchenv" tokens -key "$WORK/key.pem" -n "$N_NEW" -seed 1000000 -iss "$ISSUER" -aud "$CLIENT" -out "$WORK/tokens-new.txt"
	echo "$stamp" >"$WORK/tokens.stamp"
fi
good=$(head -n1 "$WORK/tokens-reused.txt")
# Same header and payload, signature of another token: must be refused.
bad="${good%.*}.$(sed -n 2p "$WORK/tokens-reused.txt" | awk -F. '{print $3}')"

# --- helper: JWKS + backend --------------------------------------------------
nice -n "$NICE" taskset -c "$LOAD_CPU" "$WORK/benchenv" serve -key "$WORK/key.pem" \
	-jwks "$HOST:$JWKS_PORT" -backend "$HOST:$BACKEND_PORT" >"$WORK/benchenv.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -fs "http://$HOST:$BACKEND_PORT/" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "http://$HOST:$JWKS_PORT/.well-known/jwks.json" >/dev/null || { log "helper did not start: $(cat "$WORK/benchenv.log")"; exit 1; }

# --- Caddy configs -----------------------------------------------------------
# write_config NAME PORT: plain, cognito or headers, listening on PORT.
write_config() {
	local body
	case $1 in
	plain) body="" ;;
	cognito) body="cognito_auth {
		issuer    $ISSUER
		audience  $CLIENT
		token_use access
		scopes    order/get.order
		jwks url  http://$HOST:$JWKS_PORT/us-west-2_BENCHPOOL/.well-known/jwks.json
	}" ;;
	headers) body="request_header X-Cognito-Sub 000003e7-bbbb-4ccc-8ddd-0000000003e7
	request_header X-Cognito-Username user-00000999
	request_header X-Cognito-Client-Id $CLIENT
	request_header X-Cognito-Token-Use access
	request_header X-Cognito-Scope \"order/get.order order/post.order\"
	request_header X-Cognito-Groups ops,users,billing
	request_header X-Cognito-Issuer $ISSUER" ;;
	esac
	cat >"$WORK/$1-$2.caddyfile" <<EOF
{
	admin off
	auto_https off
	log {
		level WARN
	}
}
:$2 {
	bind $HOST
	$body
	reverse_proxy $HOST:$BACKEND_PORT
}
EOF
}
for c in plain cognito headers; do
	write_config "$c" "$CADDY_PORT"
	write_config "$c" $((CADDY_PORT + 10))
done
config_of() { case $1 in A) echo plain ;; B | C) echo cognito ;; H) echo headers ;; esac; }
tokens_of() { case $1 in C) echo "$WORK/tokens-new.txt" ;; *) echo "$WORK/tokens-reused.txt" ;; esac; }

# start_caddy CONFIG PORT: sets CADDY_PID.
CADDY_PID=
start_caddy() {
	nice -n "$NICE" taskset -c "$SERVER_CPU" "$WORK/caddy" run --config "$WORK/$1-$2.caddyfile" --adapter caddyfile >"$WORK/caddy-$1-$2.log" 2>&1 &
	CADDY_PID=$!
	PIDS+=("$CADDY_PID")
	for _ in $(seq 100); do
		curl -s -o /dev/null "http://$HOST:$2/" 2>/dev/null && return 0
		kill -0 "$CADDY_PID" 2>/dev/null || break
		sleep 0.1
	done
	log "Caddy ($1) did not start:"
	cat "$WORK/caddy-$1-$2.log" >&2
	exit 1
}
stop_caddy() { # pid
	kill -TERM "$1" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	local keep=() pid
	for pid in "${PIDS[@]}"; do [[ $pid == "$1" ]] || keep+=("$pid"); done
	PIDS=("${keep[@]}")
}
status() { # port [authorization value]
	if [[ $# -gt 1 ]]; then
		curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $2" "http://$HOST:$1/"
	else
		curl -s -o /dev/null -w '%{http_code}' "http://$HOST:$1/"
	fi
}
expect() { # what got want
	[[ $2 == "$3" ]] || { log "FAIL: $1: status $2, want $3 — refusing to time this"; exit 1; }
}
check() { # label port: a benchmark of an authorizer that lets everything through is worthless
	if [[ $(config_of "$1") == cognito ]]; then
		expect "no token" "$(status "$2")" 401
		expect "bad signature" "$(status "$2" "Bearer $bad")" 401
		expect "good token" "$(status "$2" "Bearer $good")" 200
	else
		expect "$(config_of "$1")" "$(status "$2" "Bearer $good")" 200
	fi
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Busy ticks of one CPU (user+nice+system+irq+softirq+steal).
cpu_busy() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
CLK_TCK=$(getconf CLK_TCK)

wrk_run() { # seconds port tokenfile
	timeout $(($1 + 30)) nice -n "$NICE" taskset -c "$LOAD_CPU" wrk -t"$THREADS" -c"$CONNS" -d"$1s" --latency \
		-s "$ROOT/bench/tokens.lua" "http://$HOST:$2/" -- "$3" 0 | grep '^RESULT'
}
field() { sed -E "s/.* $1=([^ ]+).*/\\1/" <<<" $2"; }

# CPU pressure (% of time some task waited for a CPU, last 10 s): other
# work on the machine (used only to wait for a quiet moment).
psi() { awk '/^some/ { split($2, a, "="); printf "%d", a[2] }' /proc/pressure/cpu 2>/dev/null || echo 0; }
wait_quiet() {
	[[ -r /proc/pressure/cpu && $QUIET_MAX_WAIT -gt 0 ]] || return 0
	local waited=0 p
	while :; do
		p=$(psi)
		((p < QUIET_PSI)) && return 0
		if ((waited >= QUIET_MAX_WAIT)); then
			log "  (machine still busy: CPU pressure ${p}% after ${waited}s of waiting; running anyway)"
			return 0
		fi
		sleep 5
		waited=$((waited + 5))
	done
}

RESULTS="$WORK/results.txt"
: >"$RESULTS"

# run_one ROUND LABEL: one timed run on a fresh Caddy.
run_one() {
	local round=$1 label=$2 config tokens
	config=$(config_of "$label")
	tokens=$(tokens_of "$label")
	start_caddy "$config" "$CADDY_PORT"
	local pid=$CADDY_PID
	check "$label" "$CADDY_PORT"
	# Warm-up (untimed): connections, GC, and for B the token cache. C warms
	# up on the reused set so that none of its own tokens is cached.
	wait_quiet
	wrk_run "$WARMUP" "$CADDY_PORT" "$WORK/tokens-reused.txt" >/dev/null
	local t0 t1 b0 b1 res foreign
	t0=$(cpu_ticks "$pid")
	b0=$(cpu_busy "$SERVER_CPU")
	res=$(wrk_run "$DURATION" "$CADDY_PORT" "$tokens")
	t1=$(cpu_ticks "$pid")
	b1=$(cpu_busy "$SERVER_CPU")
	stop_caddy "$pid"
	# Other processes' share of the server's CPU during the run.
	foreign=$(awk -v b=$((b1 - b0)) -v c=$((t1 - t0)) -v s="$DURATION" -v hz="$CLK_TCK" 'BEGIN{ f = (b - c) / hz / s * 100; printf "%.0f", f < 0 ? 0 : f }')
	local reqs cpu_us util
	reqs=$(field requests "$res")
	cpu_us=$(awk -v d=$((t1 - t0)) -v n="$reqs" -v hz="$CLK_TCK" 'BEGIN{printf "%.1f", d / hz * 1e6 / n}')
	util=$(awk -v d=$((t1 - t0)) -v s="$DURATION" -v hz="$CLK_TCK" 'BEGIN{printf "%.0f", d / hz / s * 100}')
	echo "round=$round config=$label $res cpu_us_per_req=$cpu_us caddy_cpu_pct=$util foreign_pct=$foreign" >>"$RESULTS"
	log "  round $round $label: $(field rps "$res") req/s, p99 $(field p99_us "$res") µs, non-2xx $(field non2xx "$res"), Caddy CPU ${cpu_us} µs/req (${util}% of its core; others took ${foreign}%)"
}

# run_pair ROUND X Y: X and Y at the same time on the server CPU.
run_pair() {
	local round=$1 x=$2 y=$3 px py
	start_caddy "$(config_of "$x")" "$CADDY_PORT"
	px=$CADDY_PID
	start_caddy "$(config_of "$y")" $((CADDY_PORT + 10))
	py=$CADDY_PID
	check "$x" "$CADDY_PORT"
	check "$y" $((CADDY_PORT + 10))
	wait_quiet
	wrk_run "$WARMUP" "$CADDY_PORT" "$WORK/tokens-reused.txt" >/dev/null &
	local w=$!
	wrk_run "$WARMUP" $((CADDY_PORT + 10)) "$WORK/tokens-reused.txt" >/dev/null
	wait "$w"
	local x0 y0 x1 y1 rx ry
	x0=$(cpu_ticks "$px")
	y0=$(cpu_ticks "$py")
	wrk_run "$DURATION" "$CADDY_PORT" "$(tokens_of "$x")" >"$WORK/pair-x.txt" &
	w=$!
	ry=$(wrk_run "$DURATION" $((CADDY_PORT + 10)) "$(tokens_of "$y")")
	wait "$w"
	rx=$(cat "$WORK/pair-x.txt")
	x1=$(cpu_ticks "$px")
	y1=$(cpu_ticks "$py")
	stop_caddy "$px"
	stop_caddy "$py"
	local cx cy
	cx=$(awk -v d=$((x1 - x0)) -v n="$(field requests "$rx")" -v hz="$CLK_TCK" 'BEGIN{printf "%.1f", d / hz * 1e6 / n}')
	cy=$(awk -v d=$((y1 - y0)) -v n="$(field requests "$ry")" -v hz="$CLK_TCK" 'BEGIN{printf "%.1f", d / hz * 1e6 / n}')
	echo "pair=$round x=$x y=$y cpu_x=$cx cpu_y=$cy bad=$(($(field non2xx "$rx") + $(field sockerr "$rx") + $(field non2xx "$ry") + $(field sockerr "$ry")))" >>"$RESULTS"
	log "  pair $round $x|$y: CPU $cx | $cy µs/req → $x/$y $(awk -v a="$cx" -v b="$cy" 'BEGIN{printf "%.3f", a / b}')"
}

LABELS="A B C"
[[ $REF_HEADERS == 1 ]] && LABELS="A H B C"
log "== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | awk '{print $3}'), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
log "== $ROUNDS rounds of $LABELS; wrk -t$THREADS -c$CONNS -d${DURATION}s on CPU $LOAD_CPU, Caddy on CPU $SERVER_CPU"
for round in $(seq "$ROUNDS"); do
	for label in $LABELS; do
		run_one "$round" "$label"
	done
done
if [[ $PAIRED == 1 ]]; then
	log "== $ROUNDS paired rounds: A with B, A with C, at the same time on CPU $SERVER_CPU"
	for round in $(seq "$ROUNDS"); do
		run_pair "$round" A B
		run_pair "$round" A C
	done
fi

# --- fixed-rate latency --------------------------------------------------------
# run_rate ROUND LABEL RATE: one fixed-rate run on a fresh Caddy.
run_rate() {
	local round=$1 label=$2 rate=$3 pid res
	start_caddy "$(config_of "$label")" "$CADDY_PORT"
	pid=$CADDY_PID
	check "$label" "$CADDY_PORT"
	wait_quiet
	wrk_run "$WARMUP" "$CADDY_PORT" "$WORK/tokens-reused.txt" >/dev/null
	res=$(timeout $((DURATION + 60)) nice -n "$NICE" taskset -c "$LOAD_CPU" "$WORK/benchenv" rate \
		-addr "$HOST:$CADDY_PORT" -tokens "$(tokens_of "$label")" -rate "$rate" -d "${DURATION}s" | grep '^RATE')
	stop_caddy "$pid"
	echo "rate=$round config=$label $res" >>"$RESULTS"
	log "  rate round $round $label: $(field offered "$res") req/s offered, $(field achieved "$res") sent; p50 $(field p50_us "$res") µs, p99 $(field p99_us "$res") µs, max $(field max_us "$res") µs; $(field failed "$res") not 200"
}

if ((RATE_PCT > 0)); then
	rate=$(awk -v pct="$RATE_PCT" '
		$1 ~ /^round=/ && $2 == "config=A" { split($4, kv, "="); a[++n] = kv[2] }
		END { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j > 0 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
		      m = n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2; printf "%d", m * pct / 100 }' "$RESULTS")
	log "== $ROUNDS fixed-rate rounds of $LABELS at $rate req/s ($RATE_PCT % of A's median), benchenv rate on CPU $LOAD_CPU"
	for round in $(seq "$ROUNDS"); do
		for label in $LABELS; do
			run_rate "$round" "$label" "$rate"
		done
	done
fi

# --- summary -----------------------------------------------------------------
awk -v nnew="$N_NEW" -v labels="$LABELS" '
function median(a, n,   i, j, t, s) {
	for (i = 1; i <= n; i++) s[i] = a[i]
	for (i = 2; i <= n; i++) { t = s[i]; for (j = i - 1; j > 0 && s[j] > t; j--) s[j + 1] = s[j]; s[j + 1] = t }
	return n % 2 ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2
}
{
	delete v
	for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	if ("rate" in v) {
		r = v["rate"]; c = v["config"]; offered = v["offered"]
		rp50[c, r] = v["p50_us"]; rp99[c, r] = v["p99_us"]; rbad[c] += v["failed"]
		if (r > nrate) nrate = r
		next
	}
	if ("pair" in v) {
		k = v["x"] v["y"]; np[k]++
		pr[k, np[k]] = v["cpu_x"] / v["cpu_y"]; pbad[k] += v["bad"]
		next
	}
	r = v["round"]; c = v["config"]
	rps[c, r] = v["rps"]; p99[c, r] = v["p99_us"]; cpu[c, r] = v["cpu_us_per_req"]; reqs[c, r] = v["requests"]
	bad[c] += v["non2xx"] + v["sockerr"]; util[c, r] = v["caddy_cpu_pct"]
	if (v["foreign_pct"] + 0 >= 5) busy[r] = 1
	if (r > rounds) rounds = r
}
END {
	printf "\n%-36s %10s %9s %12s %7s\n", "config (median of " rounds " rounds)", "req/s", "p99 ms", "CPU µs/req", "CPU %"
	nc = split(labels, cs, " ")
	for (k = 1; k <= nc; k++) hasc[cs[k]] = 1
	names["A"] = "A plain reverse_proxy"; names["H"] = "H plain + seven X-Cognito headers"
	names["B"] = "B cognito_auth, tokens reused"; names["C"] = "C cognito_auth, every token new"
	for (k = 1; k <= nc; k++) {
		c = cs[k]
		for (r = 1; r <= rounds; r++) { x[r] = rps[c, r]; y[r] = p99[c, r]; z[r] = cpu[c, r]; u[r] = util[c, r] }
		printf "%-36s %10.0f %9.2f %12.1f %7.0f\n", names[c], median(x, rounds), median(y, rounds) / 1000, median(z, rounds), median(u, rounds)
	}
	printf "\nratios to plain A (median of the per-round ratios; target in brackets)\n"
	target["B"] = "[>= 0.95]"; target["C"] = "[>= 0.70]"; target["H"] = "(reference)"
	for (k = 2; k <= nc; k++) {
		c = cs[k]
		for (r = 1; r <= rounds; r++) { q[r] = rps[c, r] / rps["A", r]; w[r] = cpu["A", r] / cpu[c, r]; d[r] = p99[c, r] - p99["A", r] }
		printf "  %s throughput %.3f, CPU-based %.3f, p99 added %+.2f ms   %s\n", c, median(q, rounds), median(w, rounds), median(d, rounds) / 1000, target[c]
		if (c == "B") printf "    (target for B p99 added: <= 0.2 ms)\n"
		printf "    per round:"
		for (r = 1; r <= rounds; r++) printf " %.3f", q[r]
		printf "\n"
	}
	if ("H" in hasc) {
		printf "\nratios to H, plain + the same headers (the part cognito_auth controls)\n"
		for (r = 1; r <= rounds; r++) { q[r] = rps["C", r] / rps["H", r]; w[r] = cpu["H", r] / cpu["C", r]; q2[r] = rps["B", r] / rps["H", r]; w2[r] = cpu["H", r] / cpu["B", r] }
		printf "  C/H throughput %.3f, CPU-based %.3f   [>= 0.78]\n", median(q, rounds), median(w, rounds)
		printf "    per round:"; for (r = 1; r <= rounds; r++) printf " %.3f", q[r]; printf "\n"
		printf "  B/H throughput %.3f, CPU-based %.3f\n\n", median(q2, rounds), median(w2, rounds)
	}
	if (nrate > 0) {
		printf "\nfixed rate, %d req/s offered to each (median of %d rounds)\n", offered, nrate
		printf "%-36s %9s %9s %14s\n", "config", "p50 ms", "p99 ms", "p99 added ms"
		for (k = 1; k <= nc; k++) {
			c = cs[k]
			for (r = 1; r <= nrate; r++) { x[r] = rp50[c, r]; y[r] = rp99[c, r]; d[r] = rp99[c, r] - rp99["A", r] }
			printf "%-36s %9.3f %9.3f %14s%s\n", names[c], median(x, nrate) / 1000, median(y, nrate) / 1000,
				c == "A" ? "" : sprintf("%+.3f", median(d, nrate) / 1000), c == "B" ? "   [target <= 0.2 ms]" : ""
			if (rbad[c] > 0) printf "WARNING: %s: %d requests not answered 200 at the fixed rate\n", names[c], rbad[c]
		}
	}
	for (k in np) {
		for (i = 1; i <= np[k]; i++) t[i] = pr[k, i]
		printf "paired %s/%s CPU per request: median %.3f over %d rounds (", substr(k, 1, 1), substr(k, 2, 1), median(t, np[k]), np[k]
		for (i = 1; i <= np[k]; i++) printf "%s%.3f", (i > 1 ? " " : ""), t[i]
		printf ")%s\n", pbad[k] ? "  WARNING: errors" : ""
	}
	for (r = 1; r <= rounds; r++) wrap[r] = reqs["C", r] > nnew ? (reqs["C", r] - nnew) / reqs["C", r] * 100 : 0
	if (median(wrap, rounds) > 0) printf "note: the token file of C wrapped: %.0f%% of its requests reused a token first sent %d requests earlier (new unless still cached; the cache holds 100 000 by default): raise N_NEW\n", median(wrap, rounds), nnew
	for (k = 1; k <= nc; k++) if (bad[cs[k]] > 0) printf "WARNING: %s had %d non-2xx or socket errors: its figures are not valid\n", names[cs[k]], bad[cs[k]]
	nb = 0; for (r = 1; r <= rounds; r++) if (busy[r]) nb++
	if (nb > 0) printf "WARNING: in %d of %d rounds other processes took >= 5%% of the server CPU: rerun on a quiet machine, or with NICE=-15 PAIRED=1\n", nb, rounds
}' "$RESULTS"
log "raw results: $RESULTS"
