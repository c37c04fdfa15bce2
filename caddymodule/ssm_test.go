package caddymodule_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/caddy-cognito/caddy-cognito/caddymodule"
	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
	"github.com/caddy-cognito/caddy-cognito/internal/ssmtest"
)

// ---- Caddyfile ----

func TestCaddyfileSSM(t *testing.T) {
	tests := []struct {
		name, jwks, want string
	}{
		{
			name: "parameter only",
			jwks: "jwks ssm /rootski/cognito/jwks.json",
			want: `"jwks":{"parameter":"/rootski/cognito/jwks.json","source":"ssm"}`,
		},
		{
			name: "everything",
			jwks: `jwks ssm /rootski/cognito/jwks.json {
				region    us-west-2
				endpoint  https://vpce-0abc-xyz.ssm.us-west-2.vpce.amazonaws.com
				refresh   15m
				cooldown  2m
				timeout   5s
			}`,
			want: `"jwks":{"cooldown":120000000000,"endpoint":"https://vpce-0abc-xyz.ssm.us-west-2.vpce.amazonaws.com","parameter":"/rootski/cognito/jwks.json",` +
				`"refresh":900000000000,"region":"us-west-2","source":"ssm","timeout":5000000000}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := adapt(t, ":80 {\ncognito_auth {\nuser_pool us-west-2_NMATFlcVJ\naudience x\n"+tc.jwks+"\n}\n}\n")
			if err != nil {
				t.Fatal(err)
			}
			if got := firstHandler(t, out); !strings.Contains(got, tc.want) {
				t.Errorf("handler JSON\n got %s\nwant it to contain %s", got, tc.want)
			}
		})
	}

	errs := []struct{ name, jwks, want string }{
		{"no parameter", "jwks ssm", "parameter name is required"},
		{"bad parameter", "jwks ssm /what?", "only letters, digits"},
		{"two parameters", "jwks ssm /a /b", "wrong argument count"},
		{"bad region", "jwks ssm /a {\nregion Oregon\n}", `region "Oregon"`},
		{"bad endpoint", "jwks ssm /a {\nendpoint vpce-123\n}", "absolute http(s) URL"},
		{"region twice", "jwks ssm /a {\nregion us-west-2\nregion us-east-1\n}", "region already specified"},
		{"region without value", "jwks ssm /a {\nregion\n}", "wrong argument count"},
		{"unknown option", "jwks ssm /a {\nprofile prod\n}", `unrecognized option "profile"`},
		{"bad refresh", "jwks ssm /a {\nrefresh hourly\n}", `refresh "hourly"`},
		{"refresh too short", "jwks ssm /a {\nrefresh 100ms\n}", "at least 1s"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			_, err := adapt(t, ":80 {\ncognito_auth {\nuser_pool us-west-2_NMATFlcVJ\naudience x\n"+tc.jwks+"\n}\n}\n")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Caddyfile:") {
				t.Errorf("error %v, want %q with the line", err, tc.want)
			}
		})
	}
}

// ---- Real Caddy against the local SSM endpoint ----

// ssmEnv is an integration setup whose keys come from the SSM stand-in.
type ssmEnv struct {
	*env
	ssm   *ssmtest.Server
	param string
}

// newSSMEnv starts the stand-in and points the AWS SDK's default chain at
// the test credentials; the endpoint is given in the Caddyfile. Not
// parallel (environment, and Caddy's fixed admin port).
func newSSMEnv(t *testing.T, pool string) *ssmEnv {
	s := ssmtest.New(t)
	s.Env(t)
	t.Setenv("AWS_ENDPOINT_URL_SSM", "") // the Caddyfile's endpoint must do it
	e := &ssmEnv{env: newEnv(t), ssm: s, param: "/caddy-cognito/" + pool + "/jwks.json"}
	e.issuer = "https://cognito-idp.us-west-2.amazonaws.com/" + pool
	return e
}

// sourceLabel is the source's name in logs and metrics.
func (e *ssmEnv) sourceLabel() string {
	return "ssm:" + ssmtest.Region + ":" + e.param + "@" + e.ssm.URL
}

func (e *ssmEnv) loadSSM(pool string, ssmOpts ...string) {
	e.t.Helper()
	e.load(fmt.Sprintf(`
	route /metrics {
		metrics
	}
	route {
		cognito_auth {
			user_pool %s
			audience %s
			jwks ssm %s {
				endpoint %s
				%s
			}
			startup_wait 2s
		}
		respond "ok"
	}`, pool, testClient, e.param, e.ssm.URL, strings.Join(ssmOpts, "\n\t\t\t\t")))
}

func (e *ssmEnv) signedBy(k *jwttest.Key, kid string) string {
	tok := jwttest.Token{Claims: e.claims()}
	if kid != "" {
		tok.Header = map[string]any{"kid": kid}
	}
	return k.Sign(e.t, tok)
}

func (e *ssmEnv) expectOK(tok string) {
	e.t.Helper()
	e.expect(e.do("GET", "/", "Authorization", "Bearer "+tok), 200, "", "ok")
}

// metric returns the value of one sample on /metrics, or -1.
func (e *ssmEnv) metric(name, labels string) float64 {
	e.t.Helper()
	body := e.do("GET", "/metrics").body
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name+"{"+labels+"}") + ` (\S+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// waitCalls polls until the stand-in received more than n GetParameter calls.
func (e *ssmEnv) waitCalls(n int) {
	e.t.Helper()
	e.ssm.WaitCalls(e.t, ssmtest.OpGet, n+1, 15*time.Second)
}

// Allow, rotation through a new parameter Version, and the 60s default
// cooldown keeping invented kids away from SSM.
func TestIntegrationSSMRotation(t *testing.T) {
	const pool = "us-west-2_SsmRotation"
	e := newSSMEnv(t, pool)
	e.ssm.Put(e.param, string(jwttest.JWKS(sharedKey)))
	e.loadSSM(pool)

	e.expectOK(e.token())
	if got := e.ssm.Calls(ssmtest.OpGet); got != 1 {
		t.Fatalf("%d GetParameter calls to load the keys, want 1", got)
	}

	// The publisher writes version 2 with a new key: its tokens work on
	// first sight, for one GetParameter call.
	e.ssm.Put(e.param, string(jwttest.JWKS(sharedKey, rotatedKey)))
	e.expectOK(e.signedBy(rotatedKey, ""))
	e.expectOK(e.token())
	if got := e.ssm.Calls(ssmtest.OpGet); got != 2 {
		t.Fatalf("%d GetParameter calls after the rotation, want 2", got)
	}
	// Invented kids within the cooldown cost SSM nothing.
	for i := range 30 {
		r := e.do("GET", "/", "Authorization", "Bearer "+e.signedBy(sharedKey, fmt.Sprintf("rnd-%d", i)))
		e.expect(r, 401, `Bearer error="invalid_token", error_description="token signing key is not known"`, "")
	}
	if got := e.ssm.Calls(ssmtest.OpGet); got != 2 {
		t.Fatalf("%d GetParameter calls after 30 invented kids, want 2 (cooldown)", got)
	}
	if n := e.ssm.BadSignatures(); n != 0 {
		t.Fatalf("%d requests failed SigV4 verification", n)
	}
	src := `source="` + e.sourceLabel() + `"`
	if got := e.metric("caddy_cognito_jwks_fetches_total", `result="ok",`+src); got != 2 {
		t.Errorf("fetches ok = %v, want 2", got)
	}
	if got := e.metric("caddy_cognito_jwks_keys", src); got != 2 {
		t.Errorf("keys = %v, want 2", got)
	}
}

// Access denied, a missing parameter and throttling never drop the keys or
// let a bad token through; after throttling the source stays away from SSM.
func TestIntegrationSSMFailuresKeepLastKeys(t *testing.T) {
	const pool = "us-west-2_SsmFailures"
	e := newSSMEnv(t, pool)
	e.ssm.Put(e.param, string(jwttest.JWKS(sharedKey)))
	e.loadSSM(pool, "refresh 1s")
	e.expectOK(e.token())
	src := `source="` + e.sourceLabel() + `"`

	errorsSoFar := func() float64 { return e.metric("caddy_cognito_jwks_fetches_total", `result="error",`+src) }
	for _, f := range []struct{ code, msg string }{
		{ssmtest.CodeAccessDenied, "User: arn:aws:sts::123456789012:assumed-role/sidecar/i-0 is not authorized to perform: ssm:GetParameter"},
		{ssmtest.CodeNotFound, ""},
		{ssmtest.CodeInternal, "boom"}, // retried by the SDK, then a failed fetch
	} {
		before := max(errorsSoFar(), 0)
		e.ssm.Fail(ssmtest.OpGet, f.code, f.msg, -1)
		deadline := time.Now().Add(20 * time.Second)
		for errorsSoFar() <= before { // until a refresh met the fault
			if time.Now().After(deadline) {
				t.Fatalf("%s: no failed fetch observed", f.code)
			}
			time.Sleep(50 * time.Millisecond)
		}
		e.expectOK(e.token())
		e.expect(e.do("GET", "/", "Authorization", "Bearer "+attackerKeyG.Sign(t, jwttest.Token{Claims: e.claims()})), 401, "", "")
		if got := e.metric("caddy_cognito_jwks_keys", src); got != 1 {
			t.Fatalf("%s: keys in service = %v, want 1", f.code, got)
		}
		e.ssm.ClearFaults()
	}

	// The parameter is overwritten with garbage (a new version): a failed
	// fetch, and the last good keys stay in service.
	before := max(errorsSoFar(), 0)
	e.ssm.Put(e.param, "<html>not a key set</html>")
	deadline := time.Now().Add(20 * time.Second)
	for errorsSoFar() <= before {
		if time.Now().After(deadline) {
			t.Fatal("garbage: no failed fetch observed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.expectOK(e.token())
	if got := e.metric("caddy_cognito_jwks_keys", src); got != 1 {
		t.Fatalf("garbage: keys in service = %v, want 1", got)
	}

	// Service is back: a rotation is picked up by the refresh.
	e.ssm.Put(e.param, string(jwttest.JWKS(sharedKey, rotatedKey)))
	rotated := e.signedBy(rotatedKey, "")
	deadline = time.Now().Add(15 * time.Second)
	for e.do("GET", "/", "Authorization", "Bearer "+rotated).status != 200 {
		if time.Now().After(deadline) {
			t.Fatal("rotation not picked up by the refresh after the failures")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Throttled: keys kept, and the source backs off (60-90s) instead of
	// calling SSM every refresh.
	e.ssm.Fail(ssmtest.OpGet, ssmtest.CodeThrottling, "Rate exceeded", -1)
	e.waitCalls(e.ssm.Calls(ssmtest.OpGet))
	throttled := e.ssm.Calls(ssmtest.OpGet)
	e.expectOK(e.token())
	e.expectOK(rotated)
	time.Sleep(2500 * time.Millisecond) // two refresh periods: they must not reach SSM
	if got := e.ssm.Calls(ssmtest.OpGet); got != throttled {
		t.Fatalf("%d GetParameter calls during the throttle backoff, want 0", got-throttled)
	}
	e.expectOK(e.token())
}

// No parameter at start: 503 (not 401, not a pass) until it is published.
func TestIntegrationSSMParameterMissingAtStart(t *testing.T) {
	const pool = "us-west-2_SsmMissing"
	e := newSSMEnv(t, pool)
	e.load(fmt.Sprintf(`
	route {
		cognito_auth {
			user_pool %s
			audience %s
			jwks ssm %s {
				endpoint %s
			}
			startup_wait 100ms
		}
		respond "ok"
	}`, pool, testClient, e.param, e.ssm.URL))

	r := e.do("GET", "/", "Authorization", "Bearer "+e.token())
	e.expect(r, 503, "Bearer", `{"message":"Service Unavailable"}`)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	e.expect(e.do("GET", "/"), 401, "Bearer", "") // no token is still 401

	e.ssm.Put(e.param, string(jwttest.JWKS(sharedKey)))
	deadline := time.Now().Add(20 * time.Second) // the keyring retries at 1s, 2s, 4s …
	for {
		r = e.do("GET", "/", "Authorization", "Bearer "+e.token())
		if r.status == 200 {
			break
		}
		if r.status != 503 || time.Now().After(deadline) {
			t.Fatalf("status %d while waiting for the parameter", r.status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---- caddy cognito-jwks-sync, end to end through Caddy's CLI ----

var (
	cliKeysOnce      sync.Once
	cliKey1, cliKey2 *jwttest.Key
)

// cliKeys makes the keys the CLI tests publish.
func cliKeys(t *testing.T) {
	cliKeysOnce.Do(func() {
		cliKey1, cliKey2 = jwttest.NewKey(t, "key-1"), jwttest.NewKey(t, "key-2")
	})
}

const syncHelperEnv = "CADDY_COGNITO_TEST_CADDY_ARGS"

// TestCaddyCLIHelperProcess is not a test: the tests below run the test
// binary again with this test selected and the caddy arguments in the
// environment, so that Caddy's real main (cobra, flags, exit codes) runs in
// a process of its own.
func TestCaddyCLIHelperProcess(t *testing.T) {
	raw := os.Getenv(syncHelperEnv)
	if raw == "" {
		t.Skip("helper process for the CLI tests")
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(99)
	}
	os.Args = append([]string{"caddy"}, args...)
	caddycmd.Main()
	os.Exit(0)
}

type cliResult struct {
	stdout, stderr string
	code           int
}

// caddyCLI prepares `caddy <args>` with the test's AWS environment.
func caddyCLI(t *testing.T, s *ssmtest.Server, args ...string) *exec.Cmd {
	t.Helper()
	raw, _ := json.Marshal(args)
	self, err := os.Executable() // not os.Args[0]: caddytest rewrites os.Args
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^TestCaddyCLIHelperProcess$", "-test.count=1")
	env := []string{syncHelperEnv + "=" + string(raw)}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	if s != nil {
		env = append(env,
			"AWS_REGION="+s.Region,
			"AWS_ACCESS_KEY_ID="+ssmtest.AccessKeyID,
			"AWS_SECRET_ACCESS_KEY="+ssmtest.SecretAccessKey,
			"AWS_EC2_METADATA_DISABLED=true",
			"AWS_CONFIG_FILE=/dev/null",
			"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
			"AWS_RETRY_MODE=standard",
			"AWS_MAX_ATTEMPTS=1", // a throttled write fails at once
		)
	}
	cmd.Env = env
	return cmd
}

func runCLI(t *testing.T, s *ssmtest.Server, args ...string) cliResult {
	t.Helper()
	cmd := caddyCLI(t, s, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return res
}

func TestCLIHelpListsSync(t *testing.T) {
	r := runCLI(t, nil, "help")
	if r.code != 0 || !strings.Contains(r.stdout, "cognito-jwks-sync") || !strings.Contains(r.stdout, "Copies a Cognito user pool's JWKS into an SSM parameter") {
		t.Fatalf("caddy help: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, nil, "help", "cognito-jwks-sync")
	for _, want := range []string{"--user-pool", "--parameter", "--jwks-url", "--region", "--interval", "--endpoint", "--dry-run", "Exit status"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("caddy help cognito-jwks-sync lacks %s", want)
		}
	}
}

// The sync command from a local JWKS server to the local SSM endpoint.
func TestCLISyncEndToEnd(t *testing.T) {
	cliKeys(t)
	s := ssmtest.New(t)
	js := jwttest.NewServer(t, jwttest.JWKS(cliKey1))
	const param = "/rootski/cognito/jwks.json"
	base := []string{"cognito-jwks-sync", "--user-pool", "us-west-2_NMATFlcVJ", "--parameter", param, "--jwks-url", js.JWKSURL(), "--endpoint", s.URL}

	pretty := func(doc []byte) string {
		var v any
		_ = json.Unmarshal(doc, &v)
		keys := v.(map[string]any)["keys"].([]any)
		for i, j := 0, len(keys)-1; i < j; i, j = i+1, j-1 {
			keys[i], keys[j] = keys[j], keys[i]
		}
		b, _ := json.MarshalIndent(v, "", "  ")
		return string(b)
	}

	steps := []struct {
		name       string
		setup      func()
		extra      []string
		wantCode   int
		wantOut    string // stdout prefix
		wantErr    string // stderr substring
		wantPuts   int    // cumulative PutParameter calls
		wantParam  []byte // the parameter's key set after the step
		wantOutVal bool   // dry run prints the value
	}{
		{name: "first run creates", wantOut: "cognito-jwks-sync: created: " + param + " (us-west-2) version 1 holds kids key-1", wantPuts: 1, wantParam: jwttest.JWKS(cliKey1)},
		{name: "unchanged: no write", wantOut: "cognito-jwks-sync: unchanged: " + param + " (us-west-2) version 1", wantPuts: 1, wantParam: jwttest.JWKS(cliKey1)},
		{
			name:    "reformatted and reordered: no write",
			setup:   func() { js.Set([]byte(pretty(jwttest.JWKS(cliKey1)))) },
			wantOut: "cognito-jwks-sync: unchanged:", wantPuts: 1, wantParam: jwttest.JWKS(cliKey1),
		},
		{
			name:  "dry run shows the change and writes nothing",
			setup: func() { js.Set(jwttest.JWKS(cliKey1, cliKey2)) }, extra: []string{"--dry-run"},
			wantOut: "cognito-jwks-sync: would-update: " + param + " (us-west-2) version 1 from kids key-1 to key-1,key-2", wantPuts: 1, wantParam: jwttest.JWKS(cliKey1), wantOutVal: true,
		},
		{name: "rotation updates", wantOut: "cognito-jwks-sync: updated: " + param + " (us-west-2) version 2 holds kids key-1,key-2 (was key-1)", wantPuts: 2, wantParam: jwttest.JWKS(cliKey1, cliKey2)},
		{
			name:     "JWKS down: exit 2, nothing written",
			setup:    func() { js.Fail(http.StatusBadGateway, nil) },
			wantCode: caddymodule.SyncExitSource, wantErr: "HTTP 502", wantPuts: 2, wantParam: jwttest.JWKS(cliKey1, cliKey2),
		},
		{
			name:     "no usable key: exit 2, never published",
			setup:    func() { js.Set([]byte(`{"keys":[{"kty":"oct","kid":"k","k":"c2VjcmV0"}]}`)) },
			wantCode: caddymodule.SyncExitSource, wantErr: "no usable key", wantPuts: 2, wantParam: jwttest.JWKS(cliKey1, cliKey2),
		},
		{
			name: "write denied: exit 3, says which permission",
			setup: func() {
				js.Set(jwttest.JWKS(cliKey2))
				s.Fail(ssmtest.OpPut, ssmtest.CodeAccessDenied, "not authorized", -1)
			},
			wantCode: caddymodule.SyncExitSSM, wantErr: "allow ssm:PutParameter on arn:aws:ssm:us-west-2:*:parameter" + param, wantPuts: 3, wantParam: jwttest.JWKS(cliKey1, cliKey2),
		},
		{
			name:     "throttled: exit 3",
			setup:    func() { s.ClearFaults(); s.Fail(ssmtest.OpGet, ssmtest.CodeThrottling, "Rate exceeded", -1) },
			wantCode: caddymodule.SyncExitSSM, wantErr: "throttled", wantPuts: 3, wantParam: jwttest.JWKS(cliKey1, cliKey2),
		},
		{
			name:  "missing --parameter: exit 1",
			setup: func() { s.ClearFaults() }, extra: []string{"--parameter", ""},
			wantCode: caddymodule.SyncExitUsage, wantErr: "--parameter is required", wantPuts: 3, wantParam: jwttest.JWKS(cliKey1, cliKey2),
		},
		{
			name: "bad user pool: exit 1", extra: []string{"--user-pool", "NMATFlcVJ"},
			wantCode: caddymodule.SyncExitUsage, wantErr: "not a Cognito user pool id", wantPuts: 3, wantParam: jwttest.JWKS(cliKey1, cliKey2),
		},
	}
	for _, st := range steps {
		if st.setup != nil {
			st.setup()
		}
		r := runCLI(t, s, append(append([]string{}, base...), st.extra...)...)
		if r.code != st.wantCode {
			t.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", st.name, r.code, st.wantCode, r.stdout, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if st.wantOut != "" && !strings.HasPrefix(lines[0], st.wantOut) {
			t.Errorf("%s: stdout %q, want a line starting %q", st.name, r.stdout, st.wantOut)
		}
		if st.wantOutVal != (len(lines) == 2 && json.Valid([]byte(lines[1]))) {
			t.Errorf("%s: stdout %q: dry run prints the value, other runs one line", st.name, r.stdout)
		}
		if st.wantErr != "" && !strings.Contains(r.stderr, st.wantErr) {
			t.Errorf("%s: stderr %q lacks %q", st.name, r.stderr, st.wantErr)
		}
		if got := s.Calls(ssmtest.OpPut); got != st.wantPuts {
			t.Errorf("%s: %d PutParameter calls, want %d", st.name, got, st.wantPuts)
		}
		p, _ := s.Get(param)
		if !sameKeys(p.Value, st.wantParam) {
			t.Errorf("%s: parameter %s, want %s", st.name, p.Value, st.wantParam)
		}
	}
	if n := s.BadSignatures(); n != 0 {
		t.Fatalf("%d unsigned requests", n)
	}
}

func sameKeys(value string, doc []byte) bool {
	var a, b struct {
		Keys []map[string]any `json:"keys"`
	}
	if json.Unmarshal([]byte(value), &a) != nil || json.Unmarshal(doc, &b) != nil || len(a.Keys) != len(b.Keys) {
		return false
	}
	seen := map[string]bool{}
	for _, k := range a.Keys {
		seen[fmt.Sprint(k["kid"], k["n"])] = true
	}
	for _, k := range b.Keys {
		if !seen[fmt.Sprint(k["kid"], k["n"])] {
			return false
		}
	}
	return true
}

// --interval keeps syncing until SIGTERM, which ends it with status 0.
func TestCLISyncInterval(t *testing.T) {
	cliKeys(t)
	s := ssmtest.New(t)
	js := jwttest.NewServer(t, jwttest.JWKS(cliKey1))
	cmd := caddyCLI(t, s, "cognito-jwks-sync", "--user-pool", "us-west-2_NMATFlcVJ", "--parameter", "/p",
		"--jwks-url", js.JWKSURL(), "--endpoint", s.URL, "--interval", "1s")
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	waitOutput := func(want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(stdout.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in stdout %q (stderr %q)", want, stdout.String(), stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitOutput("unchanged: /p") // a second run, one interval later
	js.Set(jwttest.JWKS(cliKey1, cliKey2))
	waitOutput("updated: /p")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\nstderr: %s", err, stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "created: /p") || !strings.Contains(out, "unchanged: /p") || !strings.Contains(out, "updated: /p") {
		t.Fatalf("stdout %q: want created, unchanged and updated runs", out)
	}
}

// lockedBuffer is a bytes.Buffer safe to read while a process writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
