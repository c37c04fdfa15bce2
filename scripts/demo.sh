#!/usr/bin/env bash
# One-command demo of caddy-cognito (`make demo`):
#   cognito-local (real Cognito-shaped tokens) -> our caddy build -> sample backend
# Everything listens on 127.0.0.1, on free ports, and is stopped on exit.
#
# Env:
#   DEMO_NONINTERACTIVE=1   run the curl checks and exit (0 = every status as
#                           expected, 1 = not); also the default without a TTY
#   DEMO_KEEP=1             keep the temporary directory (logs) on exit
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bold() { if [[ -t 1 ]]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
info() { printf '==> %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

need() {
	command -v "$1" >/dev/null 2>&1 || die "$1 is not on PATH: $2"
}
need go "install Go 1.26+ (https://go.dev/dl/)"
need node "install Node.js 20+ (cognito-local runs on it)"
need npm "install npm (comes with Node.js)"
need curl "install curl"

INTERACTIVE=1
if [[ "${DEMO_NONINTERACTIVE:-}" == 1 || ! -t 0 ]]; then
	INTERACTIVE=0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/caddy-cognito-demo.XXXXXX")
PIDS=()   # process group leaders, in start order
NAMES=()

# Each background job gets its own process group, so stopping it stops
# everything it spawned.
set -m

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
	local status=$?
	trap - EXIT INT TERM
	set +e +m # +m: no job-control chatter ("Terminated") while stopping
	local i pid
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		pid=${PIDS[i]}
		kill -TERM -- "-$pid" 2>/dev/null
	done
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		pid=${PIDS[i]}
		for _ in $(seq 100); do # up to 10 s each
			kill -0 -- "-$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 -- "-$pid" 2>/dev/null; then
			printf 'demo: %s (pid %s) ignored SIGTERM, killing it\n' "${NAMES[i]}" "$pid" >&2
			kill -KILL -- "-$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
	done
	if [[ "${DEMO_KEEP:-}" == 1 ]]; then
		info "logs kept in $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'printf "demo: failed at line %s: %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME LOGFILE CMD...: run CMD in the background in its own process group.
start() {
	local name=$1 log=$2
	shift 2
	"$@" >"$log" 2>&1 &
	PIDS+=("$!")
	NAMES+=("$name")
}

# wait_http NAME URL: poll URL until it answers 2xx, while the last started
# process is alive; 30 s at most.
wait_http() {
	local name=$1 url=$2 pid=${PIDS[${#PIDS[@]} - 1]} log=$3
	for _ in $(seq 300); do
		if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			cat "$log" >&2
			die "$name exited before it was ready"
		fi
		sleep 0.1
	done
	cat "$log" >&2
	die "$name not ready at $url after 30 s"
}

info "building caddy (with cognito_auth) and the sample backend into $WORK"
go build -o "$WORK/caddy" ./cmd/caddy
go build -o "$WORK/sample-backend" ./cmd/sample-backend
go build -o "$WORK/provision" ./e2e/cmd/provision
# The browser part's OpenID provider (zitadel/oidc, Cognito-shaped tokens)
# lives in the e2e/browser module, so the plugin's module stays lean.
(cd e2e/browser && go build -o "$WORK/demo-idp" ./cmd/demo-idp)

want_version=$(sed -n 's/.*"cognito-local": *"\([^"]*\)".*/\1/p' e2e/package.json)
have_version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' e2e/node_modules/cognito-local/package.json 2>/dev/null | head -n1 || true)
if [[ "$have_version" != "$want_version" ]]; then
	info "installing cognito-local $want_version (npm ci in e2e/)"
	(cd e2e && npm ci --no-audit --no-fund --loglevel=error)
fi

read -r CL_PORT BACKEND_PORT DEMO_PORT DEMO_WEB_PORT IDP_PORT <<<"$("$WORK/provision" ports 5 | tr '\n' ' ')"

info "starting cognito-local on 127.0.0.1:$CL_PORT"
mkdir -p "$WORK/cognito"
# shellcheck disable=SC2016 # expanded by the inner sh
start cognito-local "$WORK/cognito-local.log" \
	sh -c 'cd "$1" && HOST=127.0.0.1 PORT="$2" exec node "$3"' sh \
	"$WORK/cognito" "$CL_PORT" "$ROOT/e2e/node_modules/cognito-local/lib/bin/start.js"
wait_http cognito-local "http://127.0.0.1:$CL_PORT/health" "$WORK/cognito-local.log"

info "provisioning a user pool, an app client, group \"admins\", alice (admin) and bob"
"$WORK/provision" demo -endpoint "http://127.0.0.1:$CL_PORT" >"$WORK/demo.env"
# shellcheck disable=SC1091
source "$WORK/demo.env"

info "starting the sample backend on 127.0.0.1:$BACKEND_PORT"
start sample-backend "$WORK/sample-backend.log" "$WORK/sample-backend" -listen "127.0.0.1:$BACKEND_PORT"
wait_http sample-backend "http://127.0.0.1:$BACKEND_PORT/healthz" "$WORK/sample-backend.log"

# Browser sign-in: a web client of the demo provider, a client secret and a
# session key made up for this run.
DEMO_WEB_SECRET=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
DEMO_WEB_KEYS=$(head -c 32 /dev/urandom | base64)
DEMO_WEB_PASSWORD=correct-horse-battery # the demo provider's users (e2e/browser/idp)
DEMO_IDP="http://127.0.0.1:$IDP_PORT"
WEB_URL="http://localhost:$DEMO_WEB_PORT"
export DEMO_WEB_SECRET DEMO_WEB_KEYS DEMO_IDP DEMO_WEB_PORT
info "starting the browser sign-in's OpenID provider on 127.0.0.1:$IDP_PORT"
start demo-idp "$WORK/demo-idp.log" "$WORK/demo-idp" -listen "127.0.0.1:$IDP_PORT" -site "$WEB_URL"
wait_http demo-idp "$DEMO_IDP/.well-known/openid-configuration" "$WORK/demo-idp.log"

info "starting caddy on 127.0.0.1:$DEMO_PORT and $WEB_URL with scripts/demo.Caddyfile"
export DEMO_PORT DEMO_ISSUER DEMO_JWKS_URL DEMO_CLIENT_ID
export DEMO_BACKEND="127.0.0.1:$BACKEND_PORT"
start caddy "$WORK/caddy.log" env XDG_CONFIG_HOME="$WORK/xdg" XDG_DATA_HOME="$WORK/xdg" \
	"$WORK/caddy" run --config "$ROOT/scripts/demo.Caddyfile" --adapter caddyfile
CADDY_PID=${PIDS[${#PIDS[@]} - 1]}
wait_http caddy "http://127.0.0.1:$DEMO_PORT/health" "$WORK/caddy.log"

URL="http://127.0.0.1:$DEMO_PORT"
PASSED=0
FAILED=0

# check EXPECTED TITLE DISPLAY-COMMAND -- CURL-ARGS...
check() {
	local want=$1 title=$2 shown=$3
	shift 4
	echo
	bold "# $title (expect $want)"
	printf '$ %s\n' "$shown"
	local out status
	out=$(curl -sS --max-time 10 -i "$@" 2>&1) || true
	status=$(printf '%s\n' "$out" | sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p')
	printf '%s\n' "$out" | tr -d '\r' | grep -iE '^(HTTP/|www-authenticate:)' || true
	printf '%s\n' "$out" | tr -d '\r' | sed '1,/^$/d'
	if [[ "$status" == "$want" ]]; then
		printf -- '--> %s as expected\n' "$status"
		PASSED=$((PASSED + 1))
	else
		printf -- '--> FAIL: got %s, want %s\n' "${status:-no answer}" "$want"
		FAILED=$((FAILED + 1))
	fi
}

echo
bold "caddy-cognito demo: $URL  (issuer $DEMO_ISSUER, app client $DEMO_CLIENT_ID)"

check 200 "open health route, no token" \
	"curl -i $URL/health" -- "$URL/health"
check 401 "protected route without a token" \
	"curl -i $URL/api/v1/profile" -- "$URL/api/v1/profile"
check 401 "protected route with a forged token" \
	"curl -i -H 'Authorization: Bearer not.a.token' $URL/api/v1/profile" -- \
	-H 'Authorization: Bearer not.a.token' "$URL/api/v1/profile"
check 200 "alice's access token: the backend echoes the verified claims (a spoofed X-Cognito-Sub is dropped)" \
	"curl -i -H \"Authorization: Bearer \$ALICE_ACCESS_TOKEN\" -H 'X-Cognito-Sub: spoofed' $URL/api/v1/profile" -- \
	-H "Authorization: Bearer $ALICE_ACCESS_TOKEN" -H 'X-Cognito-Sub: spoofed' "$URL/api/v1/profile"
check 200 "POST /api/v1/order needs scope aws.cognito.signin.user.admin" \
	"curl -i -X POST -H \"Authorization: Bearer \$ALICE_ACCESS_TOKEN\" $URL/api/v1/order" -- \
	-X POST -H "Authorization: Bearer $ALICE_ACCESS_TOKEN" "$URL/api/v1/order"
check 403 "DELETE /api/v1/order/42 needs scope orders/admin, which the token lacks" \
	"curl -i -X DELETE -H \"Authorization: Bearer \$ALICE_ACCESS_TOKEN\" $URL/api/v1/order/42" -- \
	-X DELETE -H "Authorization: Bearer $ALICE_ACCESS_TOKEN" "$URL/api/v1/order/42"
check 200 "admin route, alice is in group admins" \
	"curl -i -H \"Authorization: Bearer \$ALICE_ACCESS_TOKEN\" $URL/api/v1/admin/stats" -- \
	-H "Authorization: Bearer $ALICE_ACCESS_TOKEN" "$URL/api/v1/admin/stats"
check 403 "admin route, bob is in no group" \
	"curl -i -H \"Authorization: Bearer \$BOB_ACCESS_TOKEN\" $URL/api/v1/admin/stats" -- \
	-H "Authorization: Bearer $BOB_ACCESS_TOKEN" "$URL/api/v1/admin/stats"

check 302 "browser sign-in: a page navigation without a session goes to the provider's login" \
	"curl -i -H 'Sec-Fetch-Mode: navigate' -H 'Accept: text/html' $WEB_URL/" -- \
	-H 'Sec-Fetch-Mode: navigate' -H 'Accept: text/html' "$WEB_URL/"
check 401 "browser sign-in: fetch()/XHR without a session gets 401, never a redirect" \
	"curl -i -H 'Sec-Fetch-Mode: cors' $WEB_URL/api/data" -- \
	-H 'Sec-Fetch-Mode: cors' "$WEB_URL/api/data"

# Did the spoofed header really not reach the backend?
echoed=$(curl -sS --max-time 10 -H "Authorization: Bearer $ALICE_ACCESS_TOKEN" -H 'X-Cognito-Sub: spoofed' "$URL/api/v1/profile" || true)
if [[ "$echoed" == *"$ALICE_SUB"* && "$echoed" != *spoofed* ]]; then
	PASSED=$((PASSED + 1))
else
	echo "--> FAIL: the backend did not see exactly alice's verified sub: $echoed"
	FAILED=$((FAILED + 1))
fi

echo
bold "Browser sign-in: open $WEB_URL/ in a browser and sign in as alice / $DEMO_WEB_PASSWORD"
echo "(bob / $DEMO_WEB_PASSWORD is not in group staff: 403; $WEB_URL/logout signs out)"

echo
if ((FAILED == 0)); then
	bold "demo: all $PASSED checks gave the expected status"
	RESULT=0
else
	bold "demo: $FAILED of $((PASSED + FAILED)) checks FAILED (logs: DEMO_KEEP=1 keeps $WORK)"
	RESULT=1
fi

if ((INTERACTIVE == 0)); then
	exit "$RESULT"
fi

echo "URL='$URL'" >>"$WORK/demo.env"
cat <<EOF

Everything is still running. In another terminal, try:

  source $WORK/demo.env    # sets URL, ALICE_ACCESS_TOKEN, ALICE_ID_TOKEN, BOB_ACCESS_TOKEN, ...

  curl -i \$URL/api/v1/profile -H "Authorization: Bearer \$ALICE_ID_TOKEN"          # ID token: 200
  curl -i \$URL/api/v1/admin/x -H "Authorization: Bearer \$BOB_ACCESS_TOKEN"        # not in admins: 403
  curl -i -X POST \$URL/api/v1/order -H "Authorization: Bearer \$BOB_ACCESS_TOKEN"  # has the scope: 200

A fresh token from cognito-local (http://127.0.0.1:$CL_PORT; users alice@example.com and
bob@example.com, password $DEMO_PASSWORD):

  curl -s http://127.0.0.1:$CL_PORT/ -H 'Content-Type: application/x-amz-json-1.1' \\
    -H 'X-Amz-Target: AWSCognitoIdentityProviderService.InitiateAuth' \\
    -d '{"ClientId":"$DEMO_CLIENT_ID","AuthFlow":"USER_PASSWORD_AUTH","AuthParameters":{"USERNAME":"$ALICE_EMAIL","PASSWORD":"$DEMO_PASSWORD"}}'

Routes: scripts/demo.Caddyfile.  Logs: $WORK/*.log (removed on exit; DEMO_KEEP=1 keeps them)
EOF
bold "Press Ctrl-C to stop everything."

STOP=0
trap 'STOP=1' INT TERM
while ((STOP == 0)) && kill -0 "$CADDY_PID" 2>/dev/null; do
	sleep 1 &
	wait $! 2>/dev/null || true
done
if ((STOP == 0)); then
	echo "demo: caddy exited unexpectedly:" >&2
	tail -n 20 "$WORK/caddy.log" >&2
	RESULT=1
fi
echo
info "stopping"
exit "$RESULT"
