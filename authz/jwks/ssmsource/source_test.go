package ssmsource_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
	"github.com/caddy-cognito/caddy-cognito/authz/jwks/ssmsource"
	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
	"github.com/caddy-cognito/caddy-cognito/internal/ssmtest"
)

const param = "/rootski/cognito/jwks.json"

var (
	keysOnce sync.Once
	keyA     *jwttest.Key
	keyB     *jwttest.Key
)

// testKeys returns two RSA keys shared by the package's tests (generating
// keys is the slow part).
func testKeys(t *testing.T) (*jwttest.Key, *jwttest.Key) {
	keysOnce.Do(func() {
		keyA = jwttest.NewKey(t, "kid-a")
		keyB = jwttest.NewKey(t, "kid-b")
	})
	return keyA, keyB
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newSource returns a source over the stand-in with the real SDK client
// (no-delay retries, throttling not retried, as NewSource builds it).
func newSource(t *testing.T, s *ssmtest.Server, clock *fakeClock) *ssmsource.Source {
	t.Helper()
	client, region, err := ssmsource.NewClient(context.Background(), ssmsource.ClientConfig{
		Region:        s.Region,
		Endpoint:      s.URL,
		LoadOptions:   staticCreds(),
		ClientOptions: []func(*ssm.Options){func(o *ssm.Options) { o.Retryer = ssmtest.NoDelayRetryer() }},
	})
	if err != nil {
		t.Fatal(err)
	}
	src := &ssmsource.Source{Client: client, Name: param, Region: region}
	if clock != nil {
		src.Now = clock.Now
	}
	return src
}

func TestFetchVersions(t *testing.T) {
	a, b := testKeys(t)
	s := ssmtest.New(t)
	clock := newClock()
	s.SetClock(clock.Now)
	src := newSource(t, s, nil)
	ctx := context.Background()

	s.Put(param, string(jwttest.JWKS(a)))
	doc, v1, err := src.Fetch(ctx, "")
	if err != nil || string(doc) != string(jwttest.JWKS(a)) {
		t.Fatalf("first fetch: %q, %v", doc, err)
	}
	if !strings.HasPrefix(v1, "v1@") {
		t.Fatalf("version %q, want v1@<time>", v1)
	}

	if _, _, err := src.Fetch(ctx, v1); !errors.Is(err, jwks.ErrNotModified) {
		t.Fatalf("same version: err = %v, want ErrNotModified", err)
	}

	clock.Advance(time.Minute)
	s.Put(param, string(jwttest.JWKS(a, b)))
	doc, v2, err := src.Fetch(ctx, v1)
	if err != nil || !strings.HasPrefix(v2, "v2@") || string(doc) != string(jwttest.JWKS(a, b)) {
		t.Fatalf("new version: %q %q %v", doc, v2, err)
	}

	// Deleted and created again: version 1 again, but not the old one.
	s.Delete(param)
	clock.Advance(time.Minute)
	s.Put(param, string(jwttest.JWKS(b)))
	doc, v3, err := src.Fetch(ctx, v1)
	if err != nil || v3 == v1 || string(doc) != string(jwttest.JWKS(b)) {
		t.Fatalf("re-created parameter taken for the old one: %q %q %v", doc, v3, err)
	}

	// SecureString is decrypted.
	s.PutSecure(param, string(jwttest.JWKS(a)))
	doc, _, err = src.Fetch(ctx, v3)
	if err != nil || string(doc) != string(jwttest.JWKS(a)) {
		t.Fatalf("SecureString: %q %v", doc, err)
	}
	if n := s.BadSignatures(); n != 0 {
		t.Fatalf("%d requests not properly signed", n)
	}
}

func TestFetchErrorsSayWhatToFix(t *testing.T) {
	a, _ := testKeys(t)
	tests := []struct {
		name      string
		code, msg string
		seed      bool // a successful read first (learns the ARN)
		want      []string
		wantAs    func(error) bool
		wantCalls int
	}{
		{
			name: "parameter not found", code: ssmtest.CodeNotFound,
			want:   []string{"ssm:GetParameter", `"` + param + `"`, "us-west-2", "not found", "cognito-jwks-sync"},
			wantAs: func(err error) bool { var nf *types.ParameterNotFound; return errors.As(err, &nf) }, wantCalls: 1,
		},
		{
			name: "access denied before any success", code: ssmtest.CodeAccessDenied,
			msg:  "User: arn:aws:sts::123456789012:assumed-role/sidecar/x is not authorized to perform: ssm:GetParameter",
			want: []string{"access denied", "allow ssm:GetParameter on arn:aws:ssm:us-west-2:*:parameter" + param, "kms:Decrypt", "assumed-role/sidecar"},
			wantAs: func(err error) bool {
				var e *ssmsource.Error
				return errors.As(err, &e) && e.Op == ssmsource.OpGet
			},
			wantCalls: 1,
		},
		{
			name: "access denied after a success names the full ARN", code: ssmtest.CodeAccessDenied, seed: true,
			want:      []string{"arn:aws:ssm:us-west-2:123456789012:parameter" + param, "kms:Decrypt"},
			wantCalls: 2,
		},
		{
			name: "KMS key unusable", code: ssmtest.CodeInvalidKeyID,
			want: []string{"KMS key", "kms:Decrypt"}, wantCalls: 1,
		},
		{
			name: "server errors are retried by the SDK", code: ssmtest.CodeInternal,
			want: []string{"call failed"}, wantCalls: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ssmtest.New(t)
			src := newSource(t, s, nil)
			if tt.seed {
				s.Put(param, string(jwttest.JWKS(a)))
				if _, _, err := src.Fetch(context.Background(), ""); err != nil {
					t.Fatal(err)
				}
			}
			s.Fail(ssmtest.OpGet, tt.code, tt.msg, -1)
			_, _, err := src.Fetch(context.Background(), "")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\n  does not mention %q", err, w)
				}
			}
			if tt.wantAs != nil && !tt.wantAs(err) {
				t.Errorf("error %#v has the wrong type", err)
			}
			var ra *jwks.RetryAfterError
			if errors.As(err, &ra) {
				t.Errorf("%s must not be a RetryAfterError", tt.code)
			}
			if got := s.Calls(ssmtest.OpGet); got != tt.wantCalls {
				t.Errorf("GetParameter calls = %d, want %d", got, tt.wantCalls)
			}
		})
	}
}

// Throttling: the SDK does not retry it (the fleet must not pile on), the
// source backs off on its own, answering without calling SSM, and the
// backoff grows while the throttling lasts.
func TestThrottleBackoff(t *testing.T) {
	a, _ := testKeys(t)
	s := ssmtest.New(t)
	s.Put(param, string(jwttest.JWKS(a)))
	clock := newClock()
	src := newSource(t, s, clock)
	ctx := context.Background()
	const d = ssmsource.DefaultThrottleBackoff

	s.Fail(ssmtest.OpGet, ssmtest.CodeThrottling, "Rate exceeded", 2)
	_, _, err := src.Fetch(ctx, "v1") // keys in service
	var ra *jwks.RetryAfterError
	if !errors.As(err, &ra) {
		t.Fatalf("err = %v, want *jwks.RetryAfterError", err)
	}
	if ra.After < d || ra.After > d*3/2 {
		t.Fatalf("After = %s, want within [%s, %s]", ra.After, d, d*3/2)
	}
	if !strings.Contains(err.Error(), "throttled") || !strings.Contains(err.Error(), param) {
		t.Fatalf("message %q", err)
	}
	if got := s.Calls(ssmtest.OpGet); got != 1 {
		t.Fatalf("throttled call was retried by the SDK: %d calls", got)
	}

	// During the backoff: answered at once, SSM not called.
	clock.Advance(ra.After - time.Second)
	_, _, err = src.Fetch(ctx, "v1")
	var ra2 *jwks.RetryAfterError
	if !errors.As(err, &ra2) || ra2.After != time.Second {
		t.Fatalf("during backoff: err = %v (after %v), want RetryAfter 1s", err, ra2)
	}
	if got := s.Calls(ssmtest.OpGet); got != 1 {
		t.Fatalf("SSM called during the backoff: %d calls", got)
	}

	// Throttled again: the backoff doubles.
	clock.Advance(time.Second)
	_, _, err = src.Fetch(ctx, "v1")
	if !errors.As(err, &ra) || ra.After < 2*d || ra.After > 3*d {
		t.Fatalf("second throttle: %v, want a backoff in [%s, %s]", err, 2*d, 3*d)
	}

	// Recovery resets it.
	clock.Advance(ra.After)
	if _, _, err := src.Fetch(ctx, ""); err != nil {
		t.Fatalf("after backoff: %v", err)
	}
	if got := s.Calls(ssmtest.OpGet); got != 3 {
		t.Fatalf("calls = %d, want 3", got)
	}
}

// Without keys, the wait after throttling is drawn from the whole window,
// so a throttled fleet start spreads its retries instead of repeating the
// burst; with keys, it never undercuts the backoff.
func TestThrottleBackoffSpread(t *testing.T) {
	const d = ssmsource.DefaultThrottleBackoff
	for _, tt := range []struct {
		name     string
		prev     string
		min, max time.Duration
	}{
		{"no keys yet: full jitter", "", time.Second, d},
		{"keys in service", "v1", d, d * 3 / 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var waits []time.Duration
			for range 40 {
				src := &ssmsource.Source{Name: param, Region: "us-west-2", Client: getFunc(func(*ssm.GetParameterInput) (*ssm.GetParameterOutput, error) {
					return nil, &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}
				})}
				_, _, err := src.Fetch(context.Background(), tt.prev)
				var ra *jwks.RetryAfterError
				if !errors.As(err, &ra) || ra.After < tt.min || ra.After > tt.max {
					t.Fatalf("err %v: want a RetryAfter within [%s, %s]", err, tt.min, tt.max)
				}
				waits = append(waits, ra.After)
			}
			slices.Sort(waits)
			// 40 draws over the window: the spread must use most of it.
			if spread := waits[len(waits)-1] - waits[0]; spread < (tt.max-tt.min)/2 {
				t.Fatalf("waits spread over %s only: %v", spread, waits)
			}
		})
	}
}

// The source behind the real keyring: parse only on a new version, rotation
// picked up, last good keys kept through every failure.
func TestKeyring(t *testing.T) {
	a, b := testKeys(t)
	s := ssmtest.New(t)
	clock := newClock()
	s.SetClock(clock.Now)
	src := newSource(t, s, clock)
	ring := jwks.NewKeyring(src, jwks.Options{Cooldown: ssmsource.DefaultCooldown, Refresh: ssmsource.DefaultRefresh, Now: clock.Now})
	ctx := context.Background()

	s.Put(param, string(jwttest.JWKS(a)))
	if err := ring.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ring.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if st := ring.Stats(); st.FetchOK != 1 || st.FetchNotModified != 1 {
		t.Fatalf("stats %+v: want 1 parse and 1 not-modified", st)
	}

	// Rotation: a token with the new kid makes one shared refetch.
	clock.Advance(time.Second)
	s.Put(param, string(jwttest.JWKS(a, b)))
	if k, err := ring.Key(ctx, "kid-b"); err != nil || k.ID != "kid-b" {
		t.Fatalf("rotated key: %v %v", k, err)
	}
	// Within the cooldown an unknown kid costs SSM nothing.
	calls := s.Calls(ssmtest.OpGet)
	for range 5 {
		if _, err := ring.Key(ctx, "kid-invented"); !errors.Is(err, jwks.ErrUnknownKID) {
			t.Fatalf("invented kid: %v", err)
		}
	}
	if got := s.Calls(ssmtest.OpGet); got != calls {
		t.Fatalf("invented kids during the cooldown made %d calls", got-calls)
	}

	for _, f := range []struct{ code, msg string }{
		{ssmtest.CodeAccessDenied, "not authorized"},
		{ssmtest.CodeNotFound, ""},
		{ssmtest.CodeInternal, "boom"},
		{ssmtest.CodeThrottling, "Rate exceeded"}, // last: it starts the source's backoff
	} {
		s.ClearFaults()
		s.Fail(ssmtest.OpGet, f.code, f.msg, -1)
		calls := s.Calls(ssmtest.OpGet)
		if err := ring.Refresh(ctx); err == nil {
			t.Fatalf("%s: refresh succeeded", f.code)
		}
		for _, kid := range []string{"kid-a", "kid-b"} {
			if k, err := ring.Key(ctx, kid); err != nil || k.ID != kid {
				t.Fatalf("%s dropped the last good key %s: %v", f.code, kid, err)
			}
		}
		if st := ring.Stats(); st.Keys != 2 || !strings.Contains(st.LastError, param) {
			t.Fatalf("%s: stats %+v", f.code, st)
		}
		if s.Calls(ssmtest.OpGet) == calls {
			t.Fatalf("%s: SSM was not called", f.code)
		}
	}
	// A broken publish (no usable key) never replaces good keys.
	s.ClearFaults()
	clock.Advance(time.Hour) // past the throttle backoff
	s.Put(param, `{"keys":[{"kty":"EC","kid":"x"}]}`)
	if err := ring.Refresh(ctx); !errors.Is(err, jwks.ErrNoUsableKey) {
		t.Fatalf("broken publish: %v", err)
	}
	if ring.Snapshot().Len() != 2 {
		t.Fatal("broken publish replaced the keys")
	}
}

// Requests a keyring would send must arrive with the right shape: the
// stand-in checks the signature, this checks decryption is asked for.
func TestGetParameterInput(t *testing.T) {
	var got *ssm.GetParameterInput
	src := &ssmsource.Source{Name: param, Region: "eu-central-1", Client: getFunc(func(in *ssm.GetParameterInput) (*ssm.GetParameterOutput, error) {
		got = in
		return &ssm.GetParameterOutput{Parameter: &types.Parameter{Value: aws.String(`{"keys":[]}`), Version: 7}}, nil
	})}
	_, v, err := src.Fetch(context.Background(), "")
	if err != nil || v != "v7" {
		t.Fatalf("%q %v", v, err)
	}
	if aws.ToString(got.Name) != param || !aws.ToBool(got.WithDecryption) {
		t.Fatalf("input %+v: want the name and WithDecryption", got)
	}
	if s := src.String(); s != "ssm:eu-central-1:"+param {
		t.Fatalf("String() = %q", s)
	}
	src.Endpoint = "http://127.0.0.1:1"
	if s := src.String(); s != "ssm:eu-central-1:"+param+"@http://127.0.0.1:1" {
		t.Fatalf("String() = %q", s)
	}
}

type getFunc func(*ssm.GetParameterInput) (*ssm.GetParameterOutput, error)

func (f getFunc) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	return f(in)
}

// Oversized and empty values are refused.
func TestFetchLimits(t *testing.T) {
	tests := []struct {
		name string
		out  *ssm.GetParameterOutput
	}{
		{"no parameter", &ssm.GetParameterOutput{}},
		{"no value", &ssm.GetParameterOutput{Parameter: &types.Parameter{Version: 1}}},
		{"too large", &ssm.GetParameterOutput{Parameter: &types.Parameter{Version: 1, Value: aws.String(strings.Repeat(" ", jwks.MaxDocumentBytes+1))}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &ssmsource.Source{Name: param, Region: "us-west-2", Client: getFunc(func(*ssm.GetParameterInput) (*ssm.GetParameterOutput, error) { return tt.out, nil })}
			if _, _, err := src.Fetch(context.Background(), ""); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
