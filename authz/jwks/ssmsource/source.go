// Package ssmsource reads a JWKS document from an AWS Systems Manager
// Parameter Store parameter, and publishes one there.
//
// It serves backends in an isolated VPC: they cannot reach
// cognito-idp.<region>.amazonaws.com but can reach SSM through a VPC
// endpoint. A publisher with internet access (Sync, used by the
// "caddy cognito-jwks-sync" command and the CloudFormation custom resource in
// cmd/jwks-ssm-resource) copies the user pool's JWKS into a parameter; each
// sidecar reads it with a Source, behind the same jwks.Keyring as the HTTPS
// sources.
//
// The parameter value is the JWKS JSON document exactly as Cognito serves it.
// SSM has no conditional GetParameter, so every fetch costs one call, but the
// document is parsed only when the parameter's Version changes.
package ssmsource

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
)

// Defaults for a keyring over an SSM source. They keep a fleet far below
// SSM's default GetParameter quota of 40 transactions per second per account
// and region: 1000 sidecars refreshing hourly make 0.28 TPS, and even if
// every one of them saw an unknown kid all the time, the cooldown caps them
// at 1000/60 = 16.7 TPS (see docs/ssm.md).
const (
	// DefaultRefresh is the period of the background refresh.
	DefaultRefresh = time.Hour
	// DefaultCooldown is the least time between two fetches caused by
	// unknown key ids (the HTTPS sources use 10s).
	DefaultCooldown = 60 * time.Second
	// DefaultJitter spreads refreshes so a fleet started together does not
	// fetch together.
	DefaultJitter = 0.2
	// DefaultThrottleBackoff is how long a source stays away from SSM after
	// it was throttled; it doubles with each throttle in a row, up to
	// MaxThrottleBackoff. With keys in service the wait is 1 to 1.5 times
	// the backoff (there is no hurry); without keys it is drawn from
	// (0, backoff] ("full jitter"), so a fleet started at once and
	// throttled comes back spread over a minute instead of in one burst.
	DefaultThrottleBackoff = 60 * time.Second
	// MaxThrottleBackoff caps the throttle backoff.
	MaxThrottleBackoff = 15 * time.Minute
)

// GetAPI is the part of the SSM client a Source uses; *ssm.Client has it.
type GetAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// Source reads the JWKS document from one SSM parameter. It implements
// jwks.Source. The version it reports is the parameter's Version (with its
// modification time, so a deleted and re-created parameter is never taken
// for an old one); an unchanged version is reported as jwks.ErrNotModified
// and the keyring skips parsing.
//
// After SSM throttles it, a Source answers every Fetch with a
// *jwks.RetryAfterError, without calling SSM, until its backoff has passed:
// neither the refresh loop nor a flood of unknown kids adds load to a
// throttled account.
type Source struct {
	// Client calls SSM. Required.
	Client GetAPI
	// Name of the parameter, e.g. "/rootski/cognito/jwks.json". Required.
	Name string
	// Region of the client, for messages and the parameter ARN.
	Region string
	// Endpoint, when set, is shown in String (it tells two sources for the
	// same parameter apart).
	Endpoint string
	// ThrottleBackoff is the first wait after throttling. Default
	// DefaultThrottleBackoff.
	ThrottleBackoff time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time

	mu             sync.Mutex
	arn            string // from the last successful read
	throttles      int
	throttledUntil time.Time
}

// String names the source in logs and metrics: "ssm:<region>:<name>", with
// "@<endpoint>" when an endpoint is set.
func (s *Source) String() string {
	str := "ssm:" + s.Region + ":" + s.Name
	if s.Endpoint != "" {
		str += "@" + s.Endpoint
	}
	return str
}

func (s *Source) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Fetch implements jwks.Source.
func (s *Source) Fetch(ctx context.Context, prevVersion string) ([]byte, string, error) {
	now := s.now()
	s.mu.Lock()
	if until := s.throttledUntil; now.Before(until) {
		s.mu.Unlock()
		return nil, "", &jwks.RetryAfterError{
			After: until.Sub(now),
			Err: fmt.Errorf("jwks: SSM throttled GetParameter on %q in %s; not calling it again before %s",
				s.Name, s.Region, until.UTC().Format(time.RFC3339)),
		}
	}
	s.mu.Unlock()

	out, err := s.Client.GetParameter(ctx, &ssm.GetParameterInput{
		Name:           aws.String(s.Name),
		WithDecryption: aws.Bool(true),
	})
	if err != nil {
		return nil, "", s.failed(err, prevVersion != "")
	}
	p := out.Parameter
	if p == nil || p.Value == nil {
		return nil, "", fmt.Errorf("jwks: SSM parameter %q in %s: GetParameter returned no value", s.Name, s.Region)
	}
	s.mu.Lock()
	s.throttles = 0
	s.throttledUntil = time.Time{}
	if p.ARN != nil {
		s.arn = *p.ARN
	}
	s.mu.Unlock()

	version := "v" + strconv.FormatInt(p.Version, 10)
	if p.LastModifiedDate != nil {
		version += "@" + p.LastModifiedDate.UTC().Format(time.RFC3339Nano)
	}
	if prevVersion != "" && version == prevVersion {
		return nil, "", jwks.ErrNotModified
	}
	if len(*p.Value) > jwks.MaxDocumentBytes {
		return nil, "", fmt.Errorf("jwks: SSM parameter %q: value of %d bytes exceeds %d", s.Name, len(*p.Value), jwks.MaxDocumentBytes)
	}
	return []byte(*p.Value), version, nil
}

// failed turns a GetParameter error into one that says what to fix, and
// starts the throttle backoff when SSM throttled.
func (s *Source) failed(err error, haveKeys bool) error {
	if isThrottle(err) {
		s.mu.Lock()
		s.throttles++
		base := s.ThrottleBackoff
		if base <= 0 {
			base = DefaultThrottleBackoff
		}
		d := min(base<<min(s.throttles-1, 10), MaxThrottleBackoff)
		if haveKeys {
			d += time.Duration(rand.Float64() * float64(d) / 2)
		} else {
			d = time.Duration(rand.Float64()*float64(d-time.Second)) + time.Second
		}
		s.throttledUntil = s.now().Add(d)
		s.mu.Unlock()
		return &jwks.RetryAfterError{After: d, Err: &Error{
			Op: OpGet, Name: s.Name, Region: s.Region, Err: err,
			Problem: "throttled by SSM",
			Fix:     fmt.Sprintf("backing off for %s; if this persists, raise the refresh period or the account's GetParameter throughput (Parameter Store 'higher throughput' setting)", d.Round(time.Second)),
		}}
	}
	s.mu.Lock()
	arn := s.arn
	s.mu.Unlock()
	return describe(OpGet, s.Name, s.Region, arn, err)
}

// Operations, as named in IAM.
const (
	OpGet    = "ssm:GetParameter"
	OpPut    = "ssm:PutParameter"
	OpDelete = "ssm:DeleteParameter"
)

// Error is an SSM failure with what to do about it. It unwraps to the SDK's
// error, so errors.As finds *types.ParameterNotFound and smithy.APIError.
type Error struct {
	// Op is the IAM action of the failed call, e.g. "ssm:GetParameter".
	Op string
	// Name and Region of the parameter.
	Name, Region string
	// Problem says what went wrong, Fix what to do about it.
	Problem, Fix string
	// Err is the SDK's error.
	Err error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s %q in %s: %s", e.Op, e.Name, e.Region, e.Problem)
	if e.Fix != "" {
		msg += ": " + e.Fix
	}
	var ae smithy.APIError
	if errors.As(e.Err, &ae) {
		if m := ae.ErrorMessage(); m != "" {
			msg += " (AWS: " + ae.ErrorCode() + ": " + m + ")"
		} else {
			msg += " (AWS: " + ae.ErrorCode() + ")"
		}
	} else if e.Err != nil {
		msg += " (" + e.Err.Error() + ")"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// NotFound reports whether err says the parameter does not exist.
func NotFound(err error) bool {
	var nf *types.ParameterNotFound
	return errors.As(err, &nf)
}

func isThrottle(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	_, ok := retry.DefaultThrottleErrorCodes[ae.ErrorCode()]
	return ok
}

func isAccessDenied(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "AccessDeniedException", "AccessDenied", "KMSAccessDeniedException":
		return true
	}
	return false
}

// describe wraps an SSM error of op on the parameter with the fix.
func describe(op, name, region, arn string, err error) error {
	if err == nil {
		return nil
	}
	if arn == "" {
		arn = ParameterARN(region, "*", name)
	}
	e := &Error{Op: op, Name: name, Region: region, Err: err}
	var ae smithy.APIError
	code := ""
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	switch {
	case NotFound(err):
		e.Problem = "parameter not found"
		e.Fix = fmt.Sprintf("publish the key set there (caddy cognito-jwks-sync --user-pool <pool-id> --parameter %s --region %s) or fix the parameter name and region", name, region)
	case isAccessDenied(err):
		e.Problem = "access denied"
		switch op {
		case OpGet:
			e.Fix = fmt.Sprintf("allow ssm:GetParameter on %s to this role (and kms:Decrypt on the parameter's KMS key if it is a SecureString)", arn)
		default:
			e.Fix = fmt.Sprintf("allow %s on %s to this role", op, arn)
		}
	case code == "InvalidKeyId":
		e.Problem = "the KMS key of the SecureString cannot be used"
		e.Fix = fmt.Sprintf("check that the parameter's KMS key exists and is enabled, and allow kms:Decrypt on it (parameter %s)", arn)
	case isThrottle(err):
		e.Problem = "throttled by SSM"
		e.Fix = "retry later; lower the call rate or raise the account's Parameter Store throughput"
	case code == "UnrecognizedClientException" || code == "InvalidSignatureException" ||
		code == "ExpiredTokenException" || code == "InvalidClientTokenId" || code == "SignatureDoesNotMatch":
		e.Problem = "AWS rejected the credentials"
		e.Fix = "check the AWS credentials (environment, profile, IRSA/ECS/EC2 role) and the region"
	case code == "ParameterAlreadyExists":
		e.Problem = "parameter already exists"
	case code == "ValidationException":
		e.Problem = "request rejected as invalid"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		e.Problem = "no answer in time"
		e.Fix = "check the network path to SSM (VPC endpoint com.amazonaws." + region + ".ssm, security groups, endpoint setting)"
	default:
		e.Problem = "call failed"
		if code == "" {
			e.Fix = "check the network path to SSM (VPC endpoint, DNS, proxy) and the AWS credentials"
		}
	}
	return e
}

// ParameterARN returns the ARN of an SSM parameter; account may be "*".
func ParameterARN(region, account, name string) string {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	return "arn:" + Partition(region) + ":ssm:" + region + ":" + account + ":parameter" + name
}

// Partition returns the AWS partition of a region.
func Partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	case strings.HasPrefix(region, "us-iso-"):
		return "aws-iso"
	case strings.HasPrefix(region, "us-isob-"):
		return "aws-iso-b"
	case strings.HasPrefix(region, "eusc-"):
		return "aws-eusc"
	}
	return "aws"
}
