package ssmsource_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
	"github.com/caddy-cognito/caddy-cognito/authz/jwks/ssmsource"
	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
	"github.com/caddy-cognito/caddy-cognito/internal/ssmtest"
)

// pretty re-indents a document and reverses its keys: same key set,
// different bytes.
func pretty(t *testing.T, doc []byte) []byte {
	t.Helper()
	var d struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	slices.Reverse(d.Keys)
	b, err := json.MarshalIndent(d, "", "    ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSync(t *testing.T) {
	a, b := testKeys(t)
	type step struct {
		serve      []byte // the JWKS server's document
		status     int    // the JWKS server's status, if not 200
		dryRun     bool
		blind      bool
		fault      string // injected on every SSM call
		faultOp    string
		wantAction ssmsource.Action
		wantStage  ssmsource.Stage
		wantErr    string
		wantPuts   int // PutParameter calls so far
		wantValue  []byte
	}
	tests := []struct {
		name  string
		seed  []byte // parameter value before the first step
		steps []step
	}{
		{
			name: "create, then unchanged, then update",
			steps: []step{
				{serve: jwttest.JWKS(a), wantAction: ssmsource.Created, wantPuts: 1, wantValue: jwttest.JWKS(a)},
				{serve: jwttest.JWKS(a), wantAction: ssmsource.Unchanged, wantPuts: 1, wantValue: jwttest.JWKS(a)},
				{serve: jwttest.JWKS(a, b), wantAction: ssmsource.Updated, wantPuts: 2, wantValue: jwttest.JWKS(a, b)},
			},
		},
		{
			name: "reformatted and reordered is not a change",
			seed: jwttest.JWKS(a, b),
			steps: []step{
				{serve: pretty(t, jwttest.JWKS(a, b)), wantAction: ssmsource.Unchanged, wantPuts: 0, wantValue: jwttest.JWKS(a, b)},
			},
		},
		{
			name: "the document is written compact",
			seed: jwttest.JWKS(a),
			steps: []step{
				{serve: pretty(t, jwttest.JWKS(b, a)), wantAction: ssmsource.Updated, wantPuts: 1, wantValue: jwttest.JWKS(a, b)},
			},
		},
		{
			name: "dry run writes nothing",
			seed: jwttest.JWKS(a),
			steps: []step{
				{serve: jwttest.JWKS(b), dryRun: true, wantAction: ssmsource.WouldUpdate, wantValue: jwttest.JWKS(a)},
				{serve: jwttest.JWKS(a), dryRun: true, wantAction: ssmsource.Unchanged, wantValue: jwttest.JWKS(a)},
			},
		},
		{
			name: "dry run of a missing parameter",
			steps: []step{
				{serve: jwttest.JWKS(a), dryRun: true, wantAction: ssmsource.WouldCreate},
			},
		},
		{
			name: "blind writes without reading",
			seed: jwttest.JWKS(a),
			steps: []step{
				{serve: jwttest.JWKS(a), blind: true, fault: ssmtest.CodeAccessDenied, faultOp: ssmtest.OpGet, wantAction: ssmsource.Written, wantPuts: 1, wantValue: jwttest.JWKS(a)},
			},
		},
		{
			name: "JWKS server down",
			seed: jwttest.JWKS(a),
			steps: []step{
				{status: http.StatusBadGateway, wantStage: ssmsource.StageFetch, wantErr: "HTTP 502", wantValue: jwttest.JWKS(a)},
			},
		},
		{
			name: "no usable key is never published",
			seed: jwttest.JWKS(a),
			steps: []step{
				{serve: []byte(`{"keys":[{"kty":"EC","kid":"e","crv":"P-256","x":"x","y":"y"}]}`), wantStage: ssmsource.StageValidate, wantErr: "no usable key", wantValue: jwttest.JWKS(a)},
				{serve: []byte(`<html>captive portal</html>`), wantStage: ssmsource.StageValidate, wantValue: jwttest.JWKS(a)},
			},
		},
		{
			name: "read denied",
			steps: []step{
				{serve: jwttest.JWKS(a), fault: ssmtest.CodeAccessDenied, faultOp: ssmtest.OpGet, wantStage: ssmsource.StageRead, wantErr: "allow ssm:GetParameter on arn:aws:ssm:us-west-2:*:parameter" + param},
			},
		},
		{
			name: "write denied",
			steps: []step{
				{serve: jwttest.JWKS(a), fault: ssmtest.CodeAccessDenied, faultOp: ssmtest.OpPut, wantStage: ssmsource.StageWrite, wantErr: "allow ssm:PutParameter on arn:aws:ssm:us-west-2:*:parameter" + param, wantPuts: 1},
			},
		},
		{
			name: "write throttled past the retries",
			steps: []step{
				{serve: jwttest.JWKS(a), fault: ssmtest.CodeThrottling, faultOp: ssmtest.OpPut, wantStage: ssmsource.StageWrite, wantErr: "throttled", wantPuts: 3},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ssmtest.New(t)
			if tt.seed != nil {
				s.Put(param, string(tt.seed))
			}
			client := s.Client() // the publisher retries throttling
			js := jwttest.NewServer(t, nil)
			for i, st := range tt.steps {
				js.Set(st.serve)
				if st.status != 0 {
					js.Fail(st.status, nil)
				}
				s.ClearFaults()
				if st.fault != "" {
					s.Fail(st.faultOp, st.fault, "injected", -1)
				}
				res, err := ssmsource.Sync(context.Background(), client, ssmsource.SyncInput{
					JWKSURL: js.JWKSURL(), Parameter: param, Region: s.Region, DryRun: st.dryRun, Blind: st.blind,
				})
				if st.wantStage != "" {
					var se *ssmsource.SyncError
					if !errors.As(err, &se) || se.Stage != st.wantStage || !strings.Contains(err.Error(), st.wantErr) {
						t.Fatalf("step %d: err = %v, want stage %s with %q", i, err, st.wantStage, st.wantErr)
					}
				} else {
					if err != nil {
						t.Fatalf("step %d: %v", i, err)
					}
					if res.Action != st.wantAction {
						t.Fatalf("step %d: action %s, want %s", i, res.Action, st.wantAction)
					}
					if res.Value != compact(t, st.serve) {
						t.Fatalf("step %d: value %q, want the served document compacted", i, res.Value)
					}
				}
				if got := s.Calls(ssmtest.OpPut); got != st.wantPuts {
					t.Fatalf("step %d: PutParameter calls %d, want %d", i, got, st.wantPuts)
				}
				p, ok := s.Get(param)
				switch {
				case st.wantValue == nil && ok:
					t.Fatalf("step %d: parameter exists: %q", i, p.Value)
				case st.wantValue != nil:
					if same, _ := ssmsource.SameKeySet([]byte(p.Value), st.wantValue); !ok || !same {
						t.Fatalf("step %d: parameter %q, want %s", i, p.Value, st.wantValue)
					}
					if p.Type != "String" {
						t.Fatalf("step %d: type %s", i, p.Type)
					}
				}
			}
			if s.BadSignatures() != 0 {
				t.Fatal("unsigned SSM request")
			}
		})
	}
}

func compact(t *testing.T, doc []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, doc); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestSyncResultDetails(t *testing.T) {
	a, b := testKeys(t)
	s := ssmtest.New(t)
	s.Put(param, string(jwttest.JWKS(a)))
	doc := jwttest.JWKS(a, b)
	// One key the sidecars will ignore: the hygiene warning is reported,
	// and the document is still published as served.
	withBad := strings.Replace(string(doc), `{"keys":[`, `{"keys":[{"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"},`, 1)
	js := jwttest.NewServer(t, []byte(withBad))
	res, err := ssmsource.Sync(context.Background(), s.Client(), ssmsource.SyncInput{JWKSURL: js.JWKSURL(), Parameter: param, Region: s.Region})
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != ssmsource.Updated || res.Version != 2 || res.Parameter != param {
		t.Fatalf("result %+v", res)
	}
	if !slices.Equal(res.KeyIDs, []string{"kid-a", "kid-b"}) || !slices.Equal(res.PreviousKeyIDs, []string{"kid-a"}) {
		t.Fatalf("kids %v, previous %v", res.KeyIDs, res.PreviousKeyIDs)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "enc") {
		t.Fatalf("warnings %v", res.Warnings)
	}
	if p, _ := s.Get(param); p.Value != withBad {
		t.Fatalf("published %q, want the document as served", p.Value)
	}
}

func TestSyncRefusesReservedNames(t *testing.T) {
	s := ssmtest.New(t)
	_, err := ssmsource.Sync(context.Background(), s.Client(), ssmsource.SyncInput{JWKSURL: "http://127.0.0.1:1/", Parameter: "/aws/x", Region: s.Region})
	var se *ssmsource.SyncError
	if !errors.As(err, &se) || se.Stage != ssmsource.StageValidate {
		t.Fatalf("err = %v", err)
	}
	if s.Calls(ssmtest.OpGet)+s.Calls(ssmtest.OpPut) != 0 {
		t.Fatal("SSM called")
	}
}

func TestCanonical(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"whitespace", `{"keys":[{"kid":"a","n":"x"}]}`, "{ \"keys\" : [ {\n\"kid\":\"a\", \"n\":\"x\"} ] }", true},
		{"member order", `{"keys":[{"kid":"a","n":"x"}]}`, `{"keys":[{"n":"x","kid":"a"}]}`, true},
		{"key order", `{"keys":[{"kid":"a"},{"kid":"b"}]}`, `{"keys":[{"kid":"b"},{"kid":"a"}]}`, true},
		{"escapes", `{"keys":[{"kid":"\u0061"}]}`, `{"keys":[{"kid":"a"}]}`, true},
		{"different modulus", `{"keys":[{"kid":"a","n":"x"}]}`, `{"keys":[{"kid":"a","n":"y"}]}`, false},
		{"added key", `{"keys":[{"kid":"a"}]}`, `{"keys":[{"kid":"a"},{"kid":"b"}]}`, false},
		{"numbers kept as written", `{"keys":[],"v":1.0}`, `{"keys":[],"v":1}`, false},
		{"duplicate key is a change", `{"keys":[{"kid":"a"}]}`, `{"keys":[{"kid":"a"},{"kid":"a"}]}`, false},
		{"other members matter", `{"keys":[]}`, `{"keys":[],"x":true}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			same, err := ssmsource.SameKeySet([]byte(tt.a), []byte(tt.b))
			if err != nil || same != tt.same {
				t.Fatalf("SameKeySet = %v, %v; want %v", same, err, tt.same)
			}
		})
	}
	for _, bad := range []string{``, `{`, `{"keys":[]} x`} {
		if _, err := ssmsource.Canonical([]byte(bad)); err == nil {
			t.Errorf("Canonical(%q) accepted", bad)
		}
	}
	// The hygiene runs on what is published.
	if _, _, err := jwks.ParseSet([]byte(`{"keys":[]}`)); err == nil {
		t.Fatal("empty set parsed")
	}
}
