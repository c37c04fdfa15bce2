package ssmsource_test

import (
	"context"
	"strings"
	"testing"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks/ssmsource"
	"github.com/caddy-cognito/caddy-cognito/internal/jwttest"
	"github.com/caddy-cognito/caddy-cognito/internal/ssmtest"
)

func staticCreds() []func(*awsconfig.LoadOptions) error {
	return []func(*awsconfig.LoadOptions) error{awsconfig.WithCredentialsProvider(ssmtest.Credentials())}
}

// isolateAWSEnv keeps the developer's AWS setup out of the test.
func isolateAWSEnv(t *testing.T) {
	for k, v := range map[string]string{
		"AWS_REGION": "", "AWS_DEFAULT_REGION": "", "AWS_PROFILE": "", "AWS_ENDPOINT_URL": "",
		"AWS_ENDPOINT_URL_SSM": "", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
	} {
		t.Setenv(k, v)
	}
}

// Region: explicit > AWS config chain > the user pool's region.
func TestRegionResolution(t *testing.T) {
	tests := []struct {
		name    string
		env     string // AWS_REGION
		cfg     ssmsource.ClientConfig
		want    string
		wantErr string
	}{
		{name: "explicit wins", env: "eu-west-1", cfg: ssmsource.ClientConfig{Region: "ap-south-1", UserPool: "us-east-1_abc"}, want: "ap-south-1"},
		{name: "config chain before pool", env: "eu-west-1", cfg: ssmsource.ClientConfig{UserPool: "us-east-1_abc"}, want: "eu-west-1"},
		{name: "pool as last resort", cfg: ssmsource.ClientConfig{UserPool: "us-east-1_abc"}, want: "us-east-1"},
		{name: "nothing", wantErr: "no AWS region"},
		{name: "bad pool", cfg: ssmsource.ClientConfig{UserPool: "nope"}, wantErr: "not a Cognito user pool id"},
		{name: "bad region", cfg: ssmsource.ClientConfig{Region: "US West"}, wantErr: "not an AWS region"},
		{name: "bad endpoint", cfg: ssmsource.ClientConfig{Region: "us-west-2", Endpoint: "vpce-123.ssm"}, wantErr: "absolute http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateAWSEnv(t)
			t.Setenv("AWS_REGION", tt.env)
			tt.cfg.LoadOptions = staticCreds()
			client, region, err := ssmsource.NewClient(context.Background(), tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if region != tt.want || client.Options().Region != tt.want {
				t.Fatalf("region %q (client %q), want %q", region, client.Options().Region, tt.want)
			}
		})
	}
}

// NewSource with nothing but the environment, as a sidecar is configured:
// AWS_ENDPOINT_URL_SSM, AWS_REGION and static keys.
func TestNewSourceFromEnvironment(t *testing.T) {
	s := ssmtest.New(t)
	s.Env(t)
	a, _ := testKeys(t)
	s.Put(param, string(jwttest.JWKS(a)))
	src, err := ssmsource.NewSource(context.Background(), param, ssmsource.ClientConfig{UserPool: "eu-west-1_abc"})
	if err != nil {
		t.Fatal(err)
	}
	if src.Region != ssmtest.Region {
		t.Fatalf("region %q: AWS_REGION must win over the pool's", src.Region)
	}
	doc, _, err := src.Fetch(context.Background(), "")
	if err != nil || string(doc) != string(jwttest.JWKS(a)) {
		t.Fatalf("%q %v", doc, err)
	}
	if s.BadSignatures() != 0 {
		t.Fatal("unsigned request")
	}
	if _, err := ssmsource.NewSource(context.Background(), "bad name!", ssmsource.ClientConfig{}); err == nil {
		t.Fatal("bad parameter name accepted")
	}
}

func TestParameterNames(t *testing.T) {
	tests := []struct {
		name             string
		readable, create bool
	}{
		{"/rootski/cognito/jwks.json", true, true},
		{"jwks", true, true},
		{"/a_b-c.d/e", true, true},
		{"", false, false},
		{"/with space", false, false},
		{"/x?y", false, false},
		{strings.Repeat("a", 1012), false, false},
		{strings.Repeat("/a", 16), false, false},
		{"/aws/service/x", true, false},
		{"SSM-thing", true, false},
		{"/awsome", true, false}, // SSM's rule is a prefix rule
		{"/myaws", true, true},
	}
	for _, tt := range tests {
		if got := ssmsource.CheckParameterName(tt.name) == nil; got != tt.readable {
			t.Errorf("CheckParameterName(%q) ok = %v, want %v", tt.name, got, tt.readable)
		}
		if got := ssmsource.CheckWritableName(tt.name) == nil; got != tt.create {
			t.Errorf("CheckWritableName(%q) ok = %v, want %v", tt.name, got, tt.create)
		}
	}
}

func TestParameterARN(t *testing.T) {
	tests := []struct{ region, account, name, want string }{
		{"us-west-2", "*", "/a/b", "arn:aws:ssm:us-west-2:*:parameter/a/b"},
		{"us-west-2", "123", "plain", "arn:aws:ssm:us-west-2:123:parameter/plain"},
		{"cn-north-1", "1", "/p", "arn:aws-cn:ssm:cn-north-1:1:parameter/p"},
		{"us-gov-west-1", "1", "/p", "arn:aws-us-gov:ssm:us-gov-west-1:1:parameter/p"},
	}
	for _, tt := range tests {
		if got := ssmsource.ParameterARN(tt.region, tt.account, tt.name); got != tt.want {
			t.Errorf("ParameterARN(%q, %q, %q) = %q, want %q", tt.region, tt.account, tt.name, got, tt.want)
		}
	}
}
