package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks/ssmsource"
	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
	"github.com/caddy-cognito/caddy-cognito/internal/ssmtest"
)

const (
	stackID = "arn:aws:cloudformation:us-west-2:123456789012:stack/rootski/5b0bc2f0-1111-2222-3333-444455556666"
	pool    = "us-west-2_NMATFlcVJ"
	pathA   = "/rootski/cognito/jwks.json"
	pathB   = "/rootski/v2/jwks.json"
)

// responder stands in for the pre-signed S3 URL CloudFormation waits on:
// an HTTPS server reached under an S3 host name (the handler only answers
// https URLs on *.amazonaws.com), through a client that dials it and
// trusts its certificate.
type responder struct {
	URL    string
	client *http.Client

	mu      sync.Mutex
	got     []cfn.Response
	fail    int // answer 500 to this many requests first
	badReqs []string
}

func newResponder(t *testing.T) *responder {
	r := &responder{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if req.Method != http.MethodPut || req.Header.Get("Content-Type") != "" || len(body) > 4096 {
			r.badReqs = append(r.badReqs, req.Method+" Content-Type="+req.Header.Get("Content-Type"))
		}
		if r.fail > 0 {
			r.fail--
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		var resp cfn.Response
		if err := json.Unmarshal(body, &resp); err != nil {
			r.badReqs = append(r.badReqs, "body: "+err.Error())
		}
		r.got = append(r.got, resp)
	}))
	t.Cleanup(srv.Close)
	r.URL = "https://cloudformation-custom-resource-response-uswest2.s3-us-west-2.amazonaws.com/arn%3Aaws%3Acloudformation/signed?X-Amz-Signature=x"
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.ServerName = "example.com" // in httptest's certificate
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}
	r.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return r
}

// count returns how many answers arrived (well-formed or not).
func (r *responder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got) + len(r.badReqs)
}

// last returns the only answer received since the previous call.
func (r *responder) take(t *testing.T) cfn.Response {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.badReqs) > 0 {
		t.Fatalf("malformed answers: %v", r.badReqs)
	}
	if len(r.got) != 1 {
		t.Fatalf("CloudFormation got %d answers, want exactly 1", len(r.got))
	}
	resp := r.got[0]
	r.got = nil
	return resp
}

type env struct {
	ssm  *ssmtest.Server
	jwks *jwttest.Server
	resp *responder
	h    *Handler
	a, b *jwttest.Key
}

var (
	keysOnce sync.Once
	keyA     *jwttest.Key
	keyB     *jwttest.Key
)

func newEnv(t *testing.T) *env {
	keysOnce.Do(func() {
		keyA, keyB = jwttest.NewKey(t, "kid-a"), jwttest.NewKey(t, "kid-b")
	})
	e := &env{ssm: ssmtest.New(t), resp: newResponder(t), a: keyA, b: keyB}
	e.jwks = jwttest.NewServer(t, jwttest.JWKS(keyA))
	e.h = &Handler{
		SSM:        e.ssm.Client(),
		Region:     ssmtest.Region,
		PoolID:     pool,
		PoolRegion: "us-west-2",
		JWKSURL: func(p string) (string, error) {
			if p != pool {
				t.Errorf("JWKS URL asked for pool %q", p)
			}
			return e.jwks.JWKSURL(), nil
		},
		Logf:               t.Logf,
		ResponseRetryDelay: time.Millisecond,
		ResponseClient:     e.resp.client,
	}
	return e
}

// event builds a request the way CloudFormation sends it.
func (e *env) event(typ cfn.RequestType, physicalID string, props, old map[string]any) cfn.Event {
	withToken := func(m map[string]any) map[string]any {
		if m == nil {
			return nil
		}
		out := map[string]any{"ServiceToken": "arn:aws:lambda:us-west-2:123456789012:function:jwks-ssm"}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	raw, _ := json.Marshal(map[string]any{
		"RequestType":           typ,
		"ResponseURL":           e.resp.URL,
		"StackId":               stackID,
		"RequestId":             "req-" + strings.ToLower(string(typ)) + "-0001",
		"ResourceType":          ResourceType,
		"LogicalResourceId":     "CognitoJWKsInSSM",
		"PhysicalResourceId":    physicalID,
		"ResourceProperties":    withToken(props),
		"OldResourceProperties": withToken(old),
	})
	var ev cfn.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		panic(err)
	}
	return ev
}

func propsFor(path string) map[string]any {
	return map[string]any{PropPoolID: pool, PropPoolRegion: "us-west-2", PropPath: path}
}

// handle runs one invocation with a Lambda-like deadline.
func (e *env) handle(t *testing.T, ev cfn.Event) cfn.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.h.Handle(ctx, ev); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	resp := e.resp.take(t)
	if resp.RequestID != ev.RequestID || resp.StackID != ev.StackID || resp.LogicalResourceID != ev.LogicalResourceID {
		t.Fatalf("answer does not echo the request: %+v", resp)
	}
	if resp.PhysicalResourceID == "" {
		t.Fatal("answer without PhysicalResourceId")
	}
	return resp
}

func (e *env) value(t *testing.T, path string) (string, bool) {
	t.Helper()
	p, ok := e.ssm.Get(path)
	return p.Value, ok
}

// The lifecycle of one resource, as CloudFormation drives it.
func TestLifecycle(t *testing.T) {
	e := newEnv(t)

	// Create.
	resp := e.handle(t, e.event(cfn.RequestCreate, "", propsFor(pathA), nil))
	if resp.Status != cfn.StatusSuccess || resp.PhysicalResourceID != pathA {
		t.Fatalf("create: %+v", resp)
	}
	if v, ok := e.value(t, pathA); !ok || v != string(jwttest.JWKS(e.a)) {
		t.Fatalf("create: parameter %q %v", v, ok)
	}
	wantData := map[string]any{
		"ParameterName": pathA,
		"ParameterArn":  "arn:aws:ssm:us-west-2:123456789012:parameter" + pathA,
		"Version":       "1",
		"KeyIds":        "kid-a",
		"JwksUrl":       e.jwks.JWKSURL(),
	}
	if !equalMaps(resp.Data, wantData) {
		t.Fatalf("create data %v, want %v", resp.Data, wantData)
	}

	// Update, same path, the pool rotated its keys.
	e.jwks.Set(jwttest.JWKS(e.a, e.b))
	resp = e.handle(t, e.event(cfn.RequestUpdate, pathA, propsFor(pathA), propsFor(pathA)))
	if resp.Status != cfn.StatusSuccess || resp.PhysicalResourceID != pathA || resp.Data["Version"] != "2" || resp.Data["KeyIds"] != "kid-a,kid-b" {
		t.Fatalf("update: %+v", resp)
	}

	// Update to a new path: a replacement. The new parameter is written
	// and the old one kept until CloudFormation's cleanup Delete.
	resp = e.handle(t, e.event(cfn.RequestUpdate, pathA, propsFor(pathB), propsFor(pathA)))
	if resp.Status != cfn.StatusSuccess || resp.PhysicalResourceID != pathB {
		t.Fatalf("update to new path: %+v", resp)
	}
	if _, ok := e.value(t, pathB); !ok {
		t.Fatal("new parameter not written")
	}
	if _, ok := e.value(t, pathA); !ok {
		t.Fatal("old parameter deleted before the update completed (a rollback would find it gone)")
	}
	// UPDATE_COMPLETE_CLEANUP_IN_PROGRESS: Delete of the old physical id.
	resp = e.handle(t, e.event(cfn.RequestDelete, pathA, propsFor(pathA), nil))
	if resp.Status != cfn.StatusSuccess || resp.PhysicalResourceID != pathA {
		t.Fatalf("cleanup delete: %+v", resp)
	}
	if _, ok := e.value(t, pathA); ok {
		t.Fatal("old parameter survived the cleanup")
	}
	if _, ok := e.value(t, pathB); !ok {
		t.Fatal("cleanup deleted the new parameter")
	}

	// Stack delete.
	resp = e.handle(t, e.event(cfn.RequestDelete, pathB, propsFor(pathB), nil))
	if resp.Status != cfn.StatusSuccess {
		t.Fatalf("delete: %+v", resp)
	}
	if _, ok := e.value(t, pathB); ok {
		t.Fatal("parameter not deleted")
	}
	// Deleting again (a retried invocation): not found is success.
	resp = e.handle(t, e.event(cfn.RequestDelete, pathB, propsFor(pathB), nil))
	if resp.Status != cfn.StatusSuccess {
		t.Fatalf("second delete: %+v", resp)
	}
	if e.ssm.BadSignatures() != 0 {
		t.Fatal("unsigned SSM request")
	}
}

func equalMaps(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Every failure is answered FAILED with a reason that says what to fix.
func TestFailuresAreAnswered(t *testing.T) {
	tests := []struct {
		name       string
		typ        cfn.RequestType
		physical   string
		props      map[string]any
		setup      func(e *env)
		wantReason []string
		wantPhys   string
	}{
		{
			name: "missing path", typ: cfn.RequestCreate,
			props:      map[string]any{PropPoolID: pool},
			wantReason: []string{"SSMParameterPath is required"}, wantPhys: "req-create-0001",
		},
		{
			name: "bad pool id", typ: cfn.RequestCreate,
			props:      map[string]any{PropPoolID: "not-a-pool", PropPath: pathA},
			wantReason: []string{"CognitoUserPoolId", "not-a-pool"}, wantPhys: "req-create-0001",
		},
		{
			name: "region does not match the pool", typ: cfn.RequestCreate,
			props:      map[string]any{PropPoolID: pool, PropPoolRegion: "eu-west-1", PropPath: pathA},
			wantReason: []string{"eu-west-1", "us-west-2"}, wantPhys: "req-create-0001",
		},
		{
			name: "relative path", typ: cfn.RequestCreate,
			props:      map[string]any{PropPoolID: pool, PropPath: "jwks"},
			wantReason: []string{"beginning with /"}, wantPhys: "req-create-0001",
		},
		{
			name: "reserved path", typ: cfn.RequestCreate,
			props:      map[string]any{PropPoolID: pool, PropPath: "/aws/jwks"},
			wantReason: []string{"reserved"}, wantPhys: "req-create-0001",
		},
		{
			name: "JWKS unreachable", typ: cfn.RequestCreate, props: propsFor(pathA),
			setup:      func(e *env) { e.jwks.Fail(http.StatusServiceUnavailable, nil) },
			wantReason: []string{"fetch", "HTTP 503"}, wantPhys: "req-create-0001",
		},
		{
			name: "put denied", typ: cfn.RequestCreate, props: propsFor(pathA),
			setup:      func(e *env) { e.ssm.Fail(ssmtest.OpPut, ssmtest.CodeAccessDenied, "not authorized", -1) },
			wantReason: []string{"allow ssm:PutParameter on arn:aws:ssm:us-west-2:*:parameter" + pathA}, wantPhys: "req-create-0001",
		},
		{
			name: "update failure keeps the physical id", typ: cfn.RequestUpdate, physical: pathA, props: propsFor(pathB),
			setup:      func(e *env) { e.ssm.Fail(ssmtest.OpPut, ssmtest.CodeThrottling, "Rate exceeded", -1) },
			wantReason: []string{"throttled"}, wantPhys: pathA,
		},
		{
			name: "delete denied", typ: cfn.RequestDelete, physical: pathA, props: propsFor(pathA),
			setup:      func(e *env) { e.ssm.Fail(ssmtest.OpDelete, ssmtest.CodeAccessDenied, "not authorized", -1) },
			wantReason: []string{"ssm:DeleteParameter", "arn:aws:ssm:us-west-2:123456789012:parameter" + pathA}, wantPhys: pathA,
		},
		{
			name: "set-up failure", typ: cfn.RequestCreate, props: propsFor(pathA),
			setup:      func(e *env) { e.h.InitErr = errors.New("no AWS region") },
			wantReason: []string{"no AWS region"}, wantPhys: "req-create-0001",
		},
		{
			name: "pool other than the function's", typ: cfn.RequestCreate,
			props:      map[string]any{PropPoolID: "us-west-2_OtherPool", PropPath: pathA},
			wantReason: []string{"us-west-2_OtherPool", pool, "environment"}, wantPhys: "req-create-0001",
		},
		{
			name: "pool other than the function's, on update", typ: cfn.RequestUpdate, physical: pathA,
			props:      map[string]any{PropPoolID: "eu-west-1_OtherPool", PropPath: pathA},
			wantReason: []string{"eu-west-1_OtherPool", pool}, wantPhys: pathA,
		},
		{
			name: "function's environment without a pool", typ: cfn.RequestCreate, props: propsFor(pathA),
			setup:      func(e *env) { e.h.PoolID = "" },
			wantReason: []string{EnvPoolID}, wantPhys: "req-create-0001",
		},
		{
			name: "function's region does not match its pool", typ: cfn.RequestCreate, props: propsFor(pathA),
			setup:      func(e *env) { e.h.PoolRegion = "eu-west-1" },
			wantReason: []string{EnvPoolRegion, "eu-west-1", "us-west-2"}, wantPhys: "req-create-0001",
		},
		{
			name: "unknown request type", typ: "Frobnicate", props: propsFor(pathA),
			wantReason: []string{"Frobnicate"}, wantPhys: "req-frobnicate-0001",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.setup != nil {
				tt.setup(e)
			}
			resp := e.handle(t, e.event(tt.typ, tt.physical, tt.props, nil))
			if resp.Status != cfn.StatusFailed {
				t.Fatalf("status %s, want FAILED", resp.Status)
			}
			for _, w := range tt.wantReason {
				if !strings.Contains(resp.Reason, w) {
					t.Errorf("reason %q does not mention %q", resp.Reason, w)
				}
			}
			if resp.PhysicalResourceID != tt.wantPhys {
				t.Errorf("physical id %q, want %q", resp.PhysicalResourceID, tt.wantPhys)
			}
		})
	}
}

// After a failed Create, CloudFormation rolls back with a Delete of the
// physical id the failure answered with: nothing to delete, and it must not
// fail (or the stack is stuck in ROLLBACK_FAILED).
func TestRollbackOfFailedCreate(t *testing.T) {
	e := newEnv(t)
	e.ssm.Put(pathA, "someone else's")
	resp := e.handle(t, e.event(cfn.RequestCreate, "", map[string]any{PropPoolID: "bad", PropPath: pathA}, nil))
	if resp.Status != cfn.StatusFailed {
		t.Fatalf("%+v", resp)
	}
	resp = e.handle(t, e.event(cfn.RequestDelete, resp.PhysicalResourceID, map[string]any{PropPoolID: "bad", PropPath: pathA}, nil))
	if resp.Status != cfn.StatusSuccess {
		t.Fatalf("rollback delete: %+v", resp)
	}
	if e.ssm.Calls(ssmtest.OpDelete) != 0 {
		t.Fatal("rollback of a failed create deleted a parameter")
	}
	if v, _ := e.value(t, pathA); v != "someone else's" {
		t.Fatal("parameter changed")
	}
}

// hangingSSM blocks until the context ends, or panics.
type hangingSSM struct{ panic bool }

func (h hangingSSM) wait(ctx context.Context) error {
	if h.panic {
		panic("boom")
	}
	<-ctx.Done()
	return ctx.Err()
}

func (h hangingSSM) GetParameter(ctx context.Context, _ *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	return nil, h.wait(ctx)
}

func (h hangingSSM) PutParameter(ctx context.Context, _ *ssm.PutParameterInput, _ ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	return nil, h.wait(ctx)
}

func (h hangingSSM) DeleteParameter(ctx context.Context, _ *ssm.DeleteParameterInput, _ ...func(*ssm.Options)) (*ssm.DeleteParameterOutput, error) {
	return nil, h.wait(ctx)
}

// The answer goes out before the Lambda deadline even when the work hangs
// or panics.
func TestDeadlineAndPanic(t *testing.T) {
	for _, tt := range []struct {
		name  string
		ssm   hangingSSM
		want  string
		limit time.Duration
	}{
		{"hang", hangingSSM{}, "did not finish before the Lambda deadline", 900 * time.Millisecond},
		{"panic", hangingSSM{panic: true}, "internal error: boom", 900 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.h.SSM = tt.ssm
			e.h.Margin = 300 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			start := time.Now()
			if err := e.h.Handle(ctx, e.event(cfn.RequestCreate, "", propsFor(pathA), nil)); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > tt.limit {
				t.Fatalf("answered after %s, the Lambda would have been killed", d)
			}
			resp := e.resp.take(t)
			if resp.Status != cfn.StatusFailed || !strings.Contains(resp.Reason, tt.want) {
				t.Fatalf("%+v", resp)
			}
		})
	}
}

func TestResponseDelivery(t *testing.T) {
	t.Run("retried after a server error", func(t *testing.T) {
		e := newEnv(t)
		e.resp.fail = 2
		resp := e.handle(t, e.event(cfn.RequestDelete, "req-x", propsFor(pathA), nil))
		if resp.Status != cfn.StatusSuccess {
			t.Fatalf("%+v", resp)
		}
	})
	t.Run("undeliverable is an invocation error", func(t *testing.T) {
		e := newEnv(t)
		e.resp.fail = 100
		err := e.h.Handle(context.Background(), e.event(cfn.RequestDelete, "req-x", propsFor(pathA), nil))
		if err == nil || !strings.Contains(err.Error(), "HTTP 500") {
			t.Fatalf("err = %v: Lambda must retry the invocation", err)
		}
	})
	t.Run("a long reason is cut to CloudFormation's 4 KB", func(t *testing.T) {
		e := newEnv(t)
		e.h.InitErr = errors.New(strings.Repeat("é\"", 5000))
		resp := e.handle(t, e.event(cfn.RequestCreate, "", propsFor(pathA), nil))
		if resp.Status != cfn.StatusFailed || !strings.HasSuffix(resp.Reason, "...") {
			t.Fatalf("reason %q", resp.Reason)
		}
	})
}

func TestDefaultJWKSURL(t *testing.T) {
	h := &Handler{}
	tests := map[string]string{
		"us-west-2_NMATFlcVJ":  "https://cognito-idp.us-west-2.amazonaws.com/us-west-2_NMATFlcVJ/.well-known/jwks.json",
		"cn-north-1_abcdefghi": "https://cognito-idp.cn-north-1.amazonaws.com.cn/cn-north-1_abcdefghi/.well-known/jwks.json",
	}
	for p, want := range tests {
		if got, err := h.jwksURL(p); err != nil || got != want {
			t.Errorf("jwksURL(%q) = %q, %v; want %q", p, got, err, want)
		}
	}
}

var _ ssmsource.SyncAPI = hangingSSM{}

// A mismatching event is refused before anything is fetched or written.
func TestForeignPoolWritesNothing(t *testing.T) {
	e := newEnv(t)
	e.h.JWKSURL = func(p string) (string, error) {
		t.Errorf("JWKS URL asked for pool %q", p)
		return e.jwks.JWKSURL(), nil
	}
	resp := e.handle(t, e.event(cfn.RequestCreate, "", map[string]any{PropPoolID: "us-east-1_Attacker1", PropPath: pathA}, nil))
	if resp.Status != cfn.StatusFailed {
		t.Fatalf("%+v", resp)
	}
	if e.ssm.Calls(ssmtest.OpPut) != 0 || e.jwks.Hits() != 0 {
		t.Fatalf("a foreign pool's event wrote %d parameters and fetched %d key sets", e.ssm.Calls(ssmtest.OpPut), e.jwks.Hits())
	}
}

// The answer goes only to an https URL on an AWS pre-signed S3 host; any
// other ResponseURL is refused before any work, and nothing is sent.
func TestResponseURLMustBeAWS(t *testing.T) {
	for _, u := range []string{
		"http://cloudformation-custom-resource-response-uswest2.s3-us-west-2.amazonaws.com/x",
		"https://attacker.example/x",
		"https://amazonaws.com.attacker.example/x",
		"https://s3.amazonaws.com.evil/x",
		"https://evilamazonaws.com/x",
		"https://amazonaws.com/x",
		"https://user:pw@bucket.s3.amazonaws.com/x",
		"https://bucket.s3.amazonaws.com:8443/x",
		"https://169.254.169.254/latest/meta-data/",
		"https://bucket.s3.amazonaws.com./x",
		"file:///etc/passwd",
		"",
		"://bad",
	} {
		t.Run(u, func(t *testing.T) {
			e := newEnv(t)
			ev := e.event(cfn.RequestCreate, "", propsFor(pathA), nil)
			ev.ResponseURL = u
			err := e.h.Handle(context.Background(), ev)
			if err == nil || !strings.Contains(err.Error(), "ResponseURL") {
				t.Fatalf("Handle = %v, want a ResponseURL error", err)
			}
			if n := e.resp.count(); n != 0 {
				t.Fatalf("%d answers sent", n)
			}
			if e.ssm.Calls(ssmtest.OpPut) != 0 || e.jwks.Hits() != 0 {
				t.Fatal("work done for an event whose answer cannot be delivered")
			}
		})
	}
	for _, u := range []string{
		"https://cloudformation-custom-resource-response-uswest2.s3-us-west-2.amazonaws.com/a?X-Amz-Signature=x",
		"https://cloudformation-custom-resource-response-cnnorth1.s3.cn-north-1.amazonaws.com.cn/a",
		"https://bucket.s3.amazonaws.com:443/a",
		"https://Bucket.S3.AmazonAWS.com/a",
	} {
		if err := checkResponseURL(u); err != nil {
			t.Errorf("checkResponseURL(%q) = %v, want nil", u, err)
		}
	}
}
