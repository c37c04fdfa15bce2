package ssmtest

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
)

// The stand-in must look like SSM to the real client: values, versions,
// ARNs, and the typed errors the SDK derives from the JSON 1.1 error shapes.
func TestRealClientRoundTrip(t *testing.T) {
	s := New(t)
	c := s.Client()
	ctx := context.Background()

	_, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/p"), WithDecryption: aws.Bool(true)})
	if nf := (*types.ParameterNotFound)(nil); !errors.As(err, &nf) {
		t.Fatalf("get missing: err = %v, want *types.ParameterNotFound", err)
	}

	put, err := c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/p"), Value: aws.String(`{"keys":[]}`), Type: types.ParameterTypeString})
	if err != nil || put.Version != 1 {
		t.Fatalf("put: version %v, err %v", put, err)
	}
	_, err = c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/p"), Value: aws.String("x"), Type: types.ParameterTypeString})
	if ae := (*types.ParameterAlreadyExists)(nil); !errors.As(err, &ae) {
		t.Fatalf("put without overwrite: err = %v, want ParameterAlreadyExists", err)
	}
	put, err = c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/p"), Value: aws.String("v2"), Type: types.ParameterTypeString, Overwrite: aws.Bool(true)})
	if err != nil || put.Version != 2 {
		t.Fatalf("overwrite: %v, %v", put, err)
	}

	got, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/p"), WithDecryption: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	p := got.Parameter
	if aws.ToString(p.Value) != "v2" || p.Version != 2 || aws.ToString(p.ARN) != "arn:aws:ssm:us-west-2:123456789012:parameter/p" || p.Type != types.ParameterTypeString || p.LastModifiedDate == nil {
		t.Fatalf("got %+v", p)
	}

	s.PutSecure("/s", "secret")
	enc, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/s")})
	if err != nil || aws.ToString(enc.Parameter.Value) == "secret" {
		t.Fatalf("SecureString without decryption must not be plaintext: %v %v", enc, err)
	}
	dec, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/s"), WithDecryption: aws.Bool(true)})
	if err != nil || aws.ToString(dec.Parameter.Value) != "secret" || dec.Parameter.Type != types.ParameterTypeSecureString {
		t.Fatalf("SecureString with decryption: %v %v", dec, err)
	}

	if _, err := c.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String("/p")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String("/p")})
	if nf := (*types.ParameterNotFound)(nil); !errors.As(err, &nf) {
		t.Fatalf("delete missing: %v", err)
	}
	if s.BadSignatures() != 0 {
		t.Fatalf("%d bad signatures from the real client", s.BadSignatures())
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name      string
		code      string
		wantCalls int // the standard retryer retries throttling and 5xx, 3 attempts
	}{
		{"throttling is retried", CodeThrottling, 3},
		{"5xx is retried", CodeInternal, 3},
		{"access denied is not", CodeAccessDenied, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t)
			s.Put("/p", "v")
			s.Fail(OpGet, tt.code, "injected", -1)
			_, err := s.Client().GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String("/p")})
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tt.code || ae.ErrorMessage() != "injected" {
				t.Fatalf("err = %v, want API error %s", err, tt.code)
			}
			if got := s.Calls(OpGet); got != tt.wantCalls {
				t.Fatalf("calls = %d, want %d", got, tt.wantCalls)
			}
			// Other operations are not affected; clearing restores service.
			if _, err := s.Client().PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String("/q"), Value: aws.String("v")}); err != nil {
				t.Fatalf("put: %v", err)
			}
			s.ClearFaults()
			if _, err := s.Client().GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String("/p")}); err != nil {
				t.Fatalf("after ClearFaults: %v", err)
			}
		})
	}

	t.Run("counted faults are consumed", func(t *testing.T) {
		s := New(t)
		s.Put("/p", "v")
		s.Fail(OpGet, CodeThrottling, "slow down", 2)
		if _, err := s.Client().GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String("/p")}); err != nil {
			t.Fatalf("third attempt should succeed: %v", err)
		}
		if got := s.Calls(OpGet); got != 3 {
			t.Fatalf("calls = %d, want 3", got)
		}
	})
}

// The signature check must reject what real SSM rejects, or the tests that
// rely on it prove nothing.
func TestSignatureVerification(t *testing.T) {
	s := New(t)
	s.Put("/p", "v")
	tests := []struct {
		name     string
		opts     func(*ssm.Options)
		wantCode string
	}{
		{"good", func(*ssm.Options) {}, ""},
		{"wrong secret", func(o *ssm.Options) {
			o.Credentials = credentials.NewStaticCredentialsProvider(AccessKeyID, "not-the-secret", "")
		}, codeBadSignature},
		{"unknown key id", func(o *ssm.Options) {
			o.Credentials = credentials.NewStaticCredentialsProvider("AKIAOTHER", SecretAccessKey, "")
		}, codeUnknownClient},
		{"wrong region", func(o *ssm.Options) { o.Region = "eu-west-1" }, codeBadSignature},
		{"session token is signed", func(o *ssm.Options) {
			o.Credentials = credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, "session-token")
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Client(tt.opts).GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String("/p")})
			if tt.wantCode == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tt.wantCode {
				t.Fatalf("err = %v, want %s", err, tt.wantCode)
			}
		})
	}

	// A request whose body was changed after signing.
	req, _ := http.NewRequest(http.MethodPost, s.URL, strings.NewReader(`{"Name":"/p"}`))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.GetParameter")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unsigned request: status %d, want 400", resp.StatusCode)
	}
}

// Env points config.LoadDefaultConfig at the server, as a sidecar would be
// configured through its environment.
func TestEnv(t *testing.T) {
	s := New(t)
	s.Env(t)
	s.Put("/p", "v")
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got, err := ssm.NewFromConfig(cfg).GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String("/p")})
	if err != nil || aws.ToString(got.Parameter.Value) != "v" {
		t.Fatalf("%v %v", got, err)
	}
	if s.BadSignatures() != 0 {
		t.Fatal("bad signature")
	}
}
