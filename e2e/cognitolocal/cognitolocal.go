// Package cognitolocal drives cognito-local (the npm package pinned in
// e2e/package.json) for end-to-end tests and the demo: it installs it with
// npm ci when needed, starts it on a free loopback port in its own working
// directory, provisions pools, app clients, groups and users through its
// AWS JSON 1.1 API, and obtains real tokens with InitiateAuth.
//
// Everything listens on and talks to 127.0.0.1 only.
package cognitolocal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Version is the cognito-local version e2e/package.json pins.
const Version = "5.3.0"

// startScript is cognito-local's entry point, relative to the package dir.
var startScript = filepath.Join("node_modules", "cognito-local", "lib", "bin", "start.js")

// ErrNoNode is returned (wrapped) when node or npm is not on PATH.
var ErrNoNode = errors.New("node is not on PATH")

// EnsureInstalled makes sure pkgDir/node_modules holds cognito-local at
// Version, running `npm ci` in pkgDir (which must hold package.json and
// package-lock.json) when it does not. Output of npm goes to log if not nil.
func EnsureInstalled(ctx context.Context, pkgDir string, log io.Writer) error {
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("%w: install Node.js 20+ to run cognito-local", ErrNoNode)
	}
	if installedVersion(pkgDir) == Version {
		return nil
	}
	// Test binaries of several packages may get here at once (go test ./...
	// runs them in parallel): one npm ci at a time per directory.
	abs, err := filepath.Abs(pkgDir)
	if err != nil {
		return err
	}
	unlock, err := lockFile(filepath.Join(os.TempDir(), fmt.Sprintf("cognitolocal-npm-%x.lock", sha256.Sum256([]byte(abs)))))
	if err != nil {
		return fmt.Errorf("lock for npm ci: %w", err)
	}
	defer unlock()
	if installedVersion(pkgDir) == Version {
		return nil // installed by another process meanwhile
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("%w: npm is missing, needed to install cognito-local", ErrNoNode)
	}
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = pkgDir
	var out bytes.Buffer
	var w io.Writer = &out
	if log != nil {
		w = io.MultiWriter(&out, log)
	}
	// The same writer for both: exec then copies through a single pipe and
	// goroutine, so out is never written concurrently.
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm ci in %s: %w\n%s", pkgDir, err, out.String())
	}
	if v := installedVersion(pkgDir); v != Version {
		return fmt.Errorf("after npm ci, %s has cognito-local %q, want %q", pkgDir, v, Version)
	}
	return nil
}

func installedVersion(pkgDir string) string {
	b, err := os.ReadFile(filepath.Join(pkgDir, "node_modules", "cognito-local", "package.json"))
	if err != nil {
		return ""
	}
	var p struct {
		Version string `json:"version"`
	}
	if json.Unmarshal(b, &p) != nil {
		return ""
	}
	if _, err := os.Stat(filepath.Join(pkgDir, startScript)); err != nil {
		return ""
	}
	return p.Version
}

// Options configure Start.
type Options struct {
	// PackageDir holds node_modules/cognito-local (the e2e/ directory).
	PackageDir string
	// WorkDir is cognito-local's working directory (created if missing);
	// its state goes to WorkDir/.cognito. Use a fresh directory per run.
	WorkDir string
	// Port to listen on; 0 picks a free one (retrying if it gets taken).
	Port int
	// Output, if not nil, also receives cognito-local's log.
	Output io.Writer
	// StartTimeout bounds the wait for /health (default 30s).
	StartTimeout time.Duration
}

// Server is a running cognito-local.
type Server struct {
	// URL is the base URL, http://127.0.0.1:<port>; also the issuer prefix.
	URL  string
	Port int
	Proc *Process
}

// Start launches cognito-local and waits until GET /health answers
// {"ok":true}. Call Stop when done.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.WorkDir == "" {
		return nil, errors.New("cognitolocal: WorkDir is required")
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 30 * time.Second
	}
	if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return nil, err
	}
	script, err := filepath.Abs(filepath.Join(o.PackageDir, startScript))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("cognito-local is not installed (run npm ci in %s): %w", o.PackageDir, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("%w", ErrNoNode)
	}
	attempts := 1
	if o.Port == 0 {
		attempts = 3 // a free port can be taken between choosing and binding
	}
	var lastErr error
	for range attempts {
		port := o.Port
		if port == 0 {
			if port, err = FreePort(); err != nil {
				return nil, err
			}
		}
		s, err := startOnce(ctx, node, script, port, o)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startOnce(ctx context.Context, node, script string, port int, o Options) (*Server, error) {
	cmd := exec.Command(node, script)
	cmd.Dir = o.WorkDir
	cmd.Env = append(os.Environ(), "HOST=127.0.0.1", "PORT="+strconv.Itoa(port))
	proc, err := StartProcess("cognito-local", cmd, o.Output)
	if err != nil {
		return nil, err
	}
	s := &Server{URL: "http://" + Addr(port), Port: port, Proc: proc}
	if err := WaitHTTP(ctx, s.URL+"/health", o.StartTimeout, proc, func(status int, body []byte) bool {
		return status == http.StatusOK && bytes.Contains(body, []byte(`"ok":true`))
	}); err != nil {
		_ = proc.Stop(5 * time.Second)
		return nil, fmt.Errorf("cognito-local on port %d: %w\n%s", port, err, proc.Output())
	}
	return s, nil
}

// Stop ends cognito-local (SIGTERM, then SIGKILL after 10s).
func (s *Server) Stop() error { return s.Proc.Stop(10 * time.Second) }

// Issuer returns the "iss" cognito-local puts in the tokens of poolID.
func (s *Server) Issuer(poolID string) string { return s.URL + "/" + poolID }

// JWKSURL returns the JWKS URL of poolID.
func (s *Server) JWKSURL(poolID string) string { return s.Issuer(poolID) + "/.well-known/jwks.json" }

// Client returns an API client for this server.
func (s *Server) Client() *Client { return NewClient(s.URL) }

// WaitHTTP polls url until ready(status, body) is true, the process (if not
// nil) exits, ctx ends or timeout passes.
func WaitHTTP(ctx context.Context, url string, timeout time.Duration, proc *Process, ready func(status int, body []byte) bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if ready(resp.StatusCode, body) {
				return nil
			}
			last = fmt.Sprintf("status %d: %.200s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		var exited <-chan struct{}
		if proc != nil {
			exited = proc.Done()
		}
		select {
		case <-exited:
			_, werr := proc.Exited()
			return fmt.Errorf("%s %w before %s was ready (%v)", proc.Name, errExited, url, werr)
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %s)", url, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// Client calls cognito-local's AWSCognitoIdentityProviderService API.
type Client struct {
	Endpoint string
	HTTP     *http.Client
}

// NewClient returns a client for the API at endpoint (a base URL).
func NewClient(endpoint string) *Client {
	return &Client{Endpoint: strings.TrimRight(endpoint, "/"), HTTP: &http.Client{Timeout: 15 * time.Second}}
}

// APIError is an error answer of the API.
type APIError struct {
	Op      string
	Status  int
	Type    string // "__type", e.g. NotAuthorizedException
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s: %d %s: %s", e.Op, e.Status, e.Type, e.Message)
}

// Call invokes op with the JSON of in and decodes the answer into out (if not nil).
func (c *Client) Call(ctx context.Context, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AWSCognitoIdentityProviderService."+op)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s: read answer: %w", op, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &APIError{Op: op, Status: resp.StatusCode}
		var eb struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if json.Unmarshal(rb, &eb) == nil {
			e.Type, e.Message = eb.Type, eb.Message
		} else {
			e.Message = fmt.Sprintf("%.300s", rb)
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(rb, out); err != nil {
		return fmt.Errorf("%s: decode %.300s: %w", op, rb, err)
	}
	return nil
}

// CreateUserPool creates a pool whose usernames are email addresses and
// returns its id.
func (c *Client) CreateUserPool(ctx context.Context, name string) (string, error) {
	var out struct{ UserPool struct{ Id string } }
	err := c.Call(ctx, "CreateUserPool", map[string]any{"PoolName": name, "UsernameAttributes": []string{"email"}}, &out)
	if err == nil && out.UserPool.Id == "" {
		err = errors.New("CreateUserPool: no pool id in the answer")
	}
	return out.UserPool.Id, err
}

// CreateAppClient creates an app client (no secret) allowing
// USER_PASSWORD_AUTH and REFRESH_TOKEN_AUTH, and returns its id. A positive
// validity sets the access and ID token lifetime (whole seconds, at least 1);
// zero keeps the default (24 h in cognito-local).
func (c *Client) CreateAppClient(ctx context.Context, poolID, name string, validity time.Duration) (string, error) {
	in := map[string]any{
		"UserPoolId":        poolID,
		"ClientName":        name,
		"ExplicitAuthFlows": []string{"ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"},
	}
	if validity > 0 {
		secs := max(int(validity/time.Second), 1)
		in["AccessTokenValidity"] = secs
		in["IdTokenValidity"] = secs
		in["TokenValidityUnits"] = map[string]string{"AccessToken": "seconds", "IdToken": "seconds"}
	}
	var out struct{ UserPoolClient struct{ ClientId string } }
	err := c.Call(ctx, "CreateUserPoolClient", in, &out)
	if err == nil && out.UserPoolClient.ClientId == "" {
		err = errors.New("CreateUserPoolClient: no client id in the answer")
	}
	return out.UserPoolClient.ClientId, err
}

// CreateGroup creates a group in poolID.
func (c *Client) CreateGroup(ctx context.Context, poolID, group string) error {
	return c.Call(ctx, "CreateGroup", map[string]any{"UserPoolId": poolID, "GroupName": group}, nil)
}

// User is a provisioned user.
type User struct {
	Email    string
	Password string
	// Username is what Cognito calls the user; with email usernames it is
	// the sub (a UUID), as in real Cognito.
	Username string
	Sub      string
}

// CreateUser creates a confirmed user with a permanent password (no
// invitation message) and adds it to groups.
func (c *Client) CreateUser(ctx context.Context, poolID, email, password string, groups ...string) (User, error) {
	var out struct {
		User struct {
			Username   string
			Attributes []struct{ Name, Value string }
		}
	}
	err := c.Call(ctx, "AdminCreateUser", map[string]any{
		"UserPoolId":    poolID,
		"Username":      email,
		"MessageAction": "SUPPRESS",
		"UserAttributes": []map[string]string{
			{"Name": "email", "Value": email},
			{"Name": "email_verified", "Value": "true"},
		},
	}, &out)
	if err != nil {
		return User{}, err
	}
	u := User{Email: email, Password: password, Username: out.User.Username}
	for _, a := range out.User.Attributes {
		if a.Name == "sub" {
			u.Sub = a.Value
		}
	}
	if err := c.Call(ctx, "AdminSetUserPassword", map[string]any{
		"UserPoolId": poolID, "Username": email, "Password": password, "Permanent": true,
	}, nil); err != nil {
		return User{}, err
	}
	for _, g := range groups {
		if err := c.Call(ctx, "AdminAddUserToGroup", map[string]any{
			"UserPoolId": poolID, "Username": email, "GroupName": g,
		}, nil); err != nil {
			return User{}, err
		}
	}
	return u, nil
}

// Tokens is an InitiateAuth AuthenticationResult.
type Tokens struct {
	AccessToken  string
	IDToken      string `json:"IdToken"`
	RefreshToken string // empty after a refresh, as in Cognito
	ExpiresIn    int
	TokenType    string
}

// Login runs InitiateAuth USER_PASSWORD_AUTH.
func (c *Client) Login(ctx context.Context, clientID, username, password string) (Tokens, error) {
	return c.initiateAuth(ctx, clientID, "USER_PASSWORD_AUTH", map[string]string{"USERNAME": username, "PASSWORD": password})
}

// Refresh runs InitiateAuth REFRESH_TOKEN_AUTH.
func (c *Client) Refresh(ctx context.Context, clientID, refreshToken string) (Tokens, error) {
	return c.initiateAuth(ctx, clientID, "REFRESH_TOKEN_AUTH", map[string]string{"REFRESH_TOKEN": refreshToken})
}

func (c *Client) initiateAuth(ctx context.Context, clientID, flow string, params map[string]string) (Tokens, error) {
	var out struct {
		AuthenticationResult *Tokens
		ChallengeName        string
	}
	if err := c.Call(ctx, "InitiateAuth", map[string]any{"ClientId": clientID, "AuthFlow": flow, "AuthParameters": params}, &out); err != nil {
		return Tokens{}, err
	}
	if out.AuthenticationResult == nil || out.AuthenticationResult.AccessToken == "" {
		return Tokens{}, fmt.Errorf("InitiateAuth %s: no tokens (challenge %q)", flow, out.ChallengeName)
	}
	return *out.AuthenticationResult, nil
}

// UnverifiedClaims decodes a JWT's payload WITHOUT checking its signature.
// For tests and the demo's display only; never for authorization.
func UnverifiedClaims(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JWS compact token: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var claims map[string]any
	if err := d.Decode(&claims); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	return claims, nil
}

// Expiry returns a token's "exp" (unverified).
func Expiry(token string) (time.Time, error) {
	claims, err := UnverifiedClaims(token)
	if err != nil {
		return time.Time{}, err
	}
	n, ok := claims["exp"].(json.Number)
	if !ok {
		return time.Time{}, errors.New(`no numeric "exp" claim`)
	}
	secs, err := n.Int64()
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(secs, 0), nil
}
