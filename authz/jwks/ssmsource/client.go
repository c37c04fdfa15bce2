package ssmsource

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/caddy-cognito/caddy-cognito/config"
)

// ClientConfig says how to build an SSM client.
type ClientConfig struct {
	// Region of the parameter. Default: the AWS config chain (AWS_REGION,
	// AWS_DEFAULT_REGION, the profile), else the region of UserPool.
	Region string
	// UserPool is a Cognito user pool id; its region is the last resort.
	UserPool string
	// Endpoint overrides the SSM endpoint URL: a VPC interface endpoint's
	// DNS name, or a local stand-in in tests.
	Endpoint string
	// RetryThrottling lets the SDK retry throttled calls itself. A sidecar
	// leaves it off: its Source backs off on its own, and a fleet that
	// retries a throttled account only deepens the throttling. The
	// publisher turns it on.
	RetryThrottling bool

	// LoadOptions are added to awsconfig.LoadDefaultConfig's (tests use them
	// for static credentials).
	LoadOptions []func(*awsconfig.LoadOptions) error
	// ClientOptions are applied to the client after Endpoint (a test's
	// retryer is still kept from retrying throttling unless
	// RetryThrottling).
	ClientOptions []func(*ssm.Options)
}

// NewClient builds an SSM client from the default AWS configuration chain:
// environment variables, the shared config and credentials files and
// profile, web identity (EKS IRSA / pod identity), the ECS task role and the
// EC2 instance role (IMDSv2). Credentials are resolved on the first call,
// not here. It returns the client and the region it uses.
func NewClient(ctx context.Context, c ClientConfig) (*ssm.Client, string, error) {
	if c.Endpoint != "" {
		if err := CheckEndpoint(c.Endpoint); err != nil {
			return nil, "", err
		}
	}
	if c.Region != "" {
		if err := CheckRegion(c.Region); err != nil {
			return nil, "", err
		}
	}
	opts := append([]func(*awsconfig.LoadOptions) error{}, c.LoadOptions...)
	if c.Region != "" {
		opts = append(opts, awsconfig.WithRegion(c.Region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" && c.UserPool != "" {
		cfg.Region, err = config.PoolRegion(c.UserPool)
		if err != nil {
			return nil, "", err
		}
	}
	if cfg.Region == "" {
		return nil, "", errors.New("no AWS region: set region, or AWS_REGION, or a user pool id")
	}
	optFns := []func(*ssm.Options){func(o *ssm.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
	}}
	optFns = append(optFns, c.ClientOptions...)
	if !c.RetryThrottling {
		optFns = append(optFns, func(o *ssm.Options) { o.Retryer = noThrottleRetry(o.Retryer) })
	}
	client := ssm.NewFromConfig(cfg, optFns...)
	return client, cfg.Region, nil
}

// NewSource builds the client as NewClient does (without throttle retries)
// and returns a Source for the parameter.
func NewSource(ctx context.Context, name string, c ClientConfig) (*Source, error) {
	if err := CheckParameterName(name); err != nil {
		return nil, err
	}
	c.RetryThrottling = false
	client, region, err := NewClient(ctx, c)
	if err != nil {
		return nil, err
	}
	return &Source{Client: client, Name: name, Region: region, Endpoint: c.Endpoint}, nil
}

// noThrottleRetry keeps the retryer's behaviour (connection errors and 5xx
// are retried with backoff) but hands throttling errors straight back.
func noThrottleRetry(r aws.Retryer) aws.Retryer {
	if r == nil {
		r = retry.NewStandard()
	}
	return &throttleFilter{Retryer: r}
}

type throttleFilter struct{ aws.Retryer }

func (f *throttleFilter) IsErrorRetryable(err error) bool {
	if isThrottle(err) {
		return false
	}
	return f.Retryer.IsErrorRetryable(err)
}

// GetAttemptToken keeps the retryer's client-side rate limiting.
func (f *throttleFilter) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	if r, ok := f.Retryer.(aws.RetryerV2); ok {
		return r.GetAttemptToken(ctx)
	}
	return f.Retryer.GetInitialToken(), nil
}

var _ aws.RetryerV2 = (*throttleFilter)(nil)

// CheckEndpoint validates an endpoint URL.
func CheckEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("endpoint %q: must be an absolute http(s) URL, e.g. https://vpce-0abc-xyz.ssm.us-west-2.vpce.amazonaws.com", endpoint)
	}
	return nil
}

var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)

// CheckRegion validates an AWS region name.
func CheckRegion(region string) error {
	if !regionPattern.MatchString(region) {
		return fmt.Errorf("region %q: not an AWS region name (e.g. us-west-2)", region)
	}
	return nil
}

var paramNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_.\-/]+$`)

// CheckParameterName validates an SSM parameter name: letters, digits and
// _.-/ only, at most 1011 characters, at most 15 hierarchy levels.
func CheckParameterName(name string) error {
	switch {
	case name == "":
		return errors.New("parameter name is empty")
	case len(name) > 1011:
		return fmt.Errorf("parameter name of %d characters: at most 1011", len(name))
	case !paramNamePattern.MatchString(name):
		return fmt.Errorf("parameter %q: only letters, digits and _.-/ are allowed", name)
	case strings.Count(name, "/") > 15:
		return fmt.Errorf("parameter %q: at most 15 hierarchy levels", name)
	}
	return nil
}

// CheckWritableName is CheckParameterName plus the rule for names that can
// be created: not in the reserved "aws" and "ssm" namespaces.
func CheckWritableName(name string) error {
	if err := CheckParameterName(name); err != nil {
		return err
	}
	first := strings.ToLower(strings.TrimLeft(name, "/"))
	if strings.HasPrefix(first, "aws") || strings.HasPrefix(first, "ssm") {
		return fmt.Errorf("parameter %q: names beginning with aws or ssm are reserved", name)
	}
	return nil
}
