package caddymodule

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
	"github.com/caddy-cognito/caddy-cognito/authz/jwks/ssmsource"
)

func init() {
	caddy.RegisterModule(SSMSource{})
}

// SSMSource reads the JWKS document from an AWS Systems Manager Parameter
// Store parameter (String or SecureString), for backends in a VPC that reach
// SSM through a VPC endpoint but cannot reach Cognito. The parameter holds
// the JWKS exactly as Cognito serves it; `caddy cognito-jwks-sync` or the
// Custom::CognitoJWKsInSSM CloudFormation resource puts it there.
//
// Credentials come from the AWS default chain: environment variables, the
// shared config/credentials files and profile, web identity (EKS IRSA), the
// ECS task role, the EC2 instance role (IMDSv2). The role needs
// ssm:GetParameter on the parameter (and kms:Decrypt on its key for a
// SecureString).
//
// Each refresh is one GetParameter call; the document is parsed only when the
// parameter's Version changes. Defaults keep a fleet far below SSM's default
// 40 GetParameter calls per second: refresh 1h, cooldown 60s for unknown
// key ids; after throttling the source stays away for 60-90s (doubling while
// it lasts; without keys yet, a random 1-60s so a fleet started at once
// spreads out), and the SDK does not retry throttled calls.
type SSMSource struct {
	// The parameter name, e.g. /rootski/cognito/jwks.json. Required.
	Parameter string `json:"parameter,omitempty"`

	// AWS region of the parameter. Default: the AWS configuration chain
	// (AWS_REGION, AWS_DEFAULT_REGION, the profile), else the region of
	// the handler's user_pool.
	Region string `json:"region,omitempty"`

	// SSM endpoint URL, e.g. an interface VPC endpoint's DNS name
	// (https://vpce-0abc-xyz.ssm.us-west-2.vpce.amazonaws.com) when private
	// DNS is off, or a local stand-in. Default: the regional endpoint (or
	// AWS_ENDPOINT_URL_SSM).
	Endpoint string `json:"endpoint,omitempty"`

	Timing
}

// CaddyModule returns the Caddy module information.
func (SSMSource) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.cognito_auth.jwks.ssm", New: func() caddy.Module { return new(SSMSource) }}
}

// NewKeySource implements KeySource.
func (s *SSMSource) NewKeySource(sc SourceContext) (jwks.Source, jwks.Options, error) {
	if s.Parameter == "" {
		return nil, jwks.Options{}, fmt.Errorf("jwks ssm: parameter is required")
	}
	if err := s.validate(); err != nil {
		return nil, jwks.Options{}, fmt.Errorf("jwks ssm: %w", err)
	}
	ctx, cancel := context.WithTimeout(sc.ctx(), 10*time.Second)
	defer cancel()
	src, err := ssmsource.NewSource(ctx, s.Parameter, ssmsource.ClientConfig{
		Region:   s.Region,
		UserPool: sc.UserPool,
		Endpoint: s.Endpoint,
	})
	if err != nil {
		return nil, jwks.Options{}, fmt.Errorf("jwks ssm %s: %w", s.Parameter, err)
	}
	if s.Endpoint != "" {
		warnPlainHTTP(sc.Logger, s.Endpoint)
	}
	opts := s.Timing.Options(ssmsource.DefaultRefresh, ssmsource.DefaultCooldown)
	opts.Jitter = ssmsource.DefaultJitter
	if sc.Logger != nil && opts.Cooldown < ssmsource.DefaultCooldown {
		sc.Logger.Warn("jwks ssm: cooldown below the 60s default; a large fleet seeing unknown key ids may approach SSM's GetParameter quota",
			zap.String("parameter", s.Parameter), zap.Duration("cooldown", opts.Cooldown))
	}
	return src, opts, nil
}

func (s *SSMSource) validate() error {
	if err := ssmsource.CheckParameterName(s.Parameter); err != nil {
		return err
	}
	if s.Region != "" {
		if err := ssmsource.CheckRegion(s.Region); err != nil {
			return err
		}
	}
	if s.Endpoint != "" {
		if err := ssmsource.CheckEndpoint(s.Endpoint); err != nil {
			return err
		}
	}
	return s.Timing.Validate()
}

// UnmarshalCaddyfile sets up the source from Caddyfile tokens. Syntax:
//
//	jwks ssm <parameter> {
//	    region   <region>
//	    endpoint <url>
//	    refresh  <duration>
//	    cooldown <duration>
//	    timeout  <duration>
//	}
func (s *SSMSource) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // source name
	if !d.NextArg() {
		return d.Errf("jwks ssm: parameter name is required, e.g. jwks ssm /rootski/cognito/jwks.json")
	}
	s.Parameter = d.Val()
	if err := ssmsource.CheckParameterName(s.Parameter); err != nil {
		return d.WrapErr(fmt.Errorf("jwks ssm: %w", err))
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		ok, err := s.Timing.UnmarshalTimingOption(d)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		opt := d.Val()
		var dst *string
		switch opt {
		case "region":
			dst = &s.Region
		case "endpoint":
			dst = &s.Endpoint
		default:
			return d.Errf("jwks ssm: unrecognized option %q (want region, endpoint, refresh, cooldown or timeout)", opt)
		}
		if *dst != "" {
			return d.Errf("jwks ssm: %s already specified", opt)
		}
		if !d.NextArg() {
			return d.ArgErr()
		}
		*dst = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	if err := s.validate(); err != nil {
		return d.WrapErr(fmt.Errorf("jwks ssm: %w", err))
	}
	return nil
}

// Interface guards
var (
	_ KeySource             = (*SSMSource)(nil)
	_ caddyfile.Unmarshaler = (*SSMSource)(nil)
)
