package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
	"github.com/caddy-cognito/caddy-cognito/authz/jwks/ssmsource"
	"github.com/caddy-cognito/caddy-cognito/config"
)

// Exit codes of `caddy cognito-jwks-sync`.
const (
	// SyncExitOK: the parameter holds the key set (unchanged or written),
	// or a dry run completed.
	SyncExitOK = 0
	// SyncExitUsage: bad flags.
	SyncExitUsage = 1
	// SyncExitSource: the JWKS could not be fetched or failed the key
	// hygiene. Nothing was written; the parameter keeps the last good keys.
	SyncExitSource = 2
	// SyncExitSSM: SSM refused or failed (permissions, throttling,
	// network). Nothing was written.
	SyncExitSSM = 3
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "cognito-jwks-sync",
		Usage: "--user-pool <id> --parameter <name> [--issuer-format original|updated] [--jwks-url <url>] [--region <region>] [--endpoint <url>] [--interval <duration>] [--timeout <duration>] [--dry-run]",
		Short: "Copies a Cognito user pool's JWKS into an SSM parameter",
		Long: `
Fetches the JWKS of a Cognito user pool over HTTPS, checks it with the same
key hygiene as the cognito_auth handler (a key set without a usable key is
never published), and writes it into an AWS SSM Parameter Store parameter
(type String, overwrite) when, and only when, the key set changed. Key sets
are compared as canonical JSON, so reformatting or reordering is no change.

Sidecars that cannot reach Cognito read the parameter with:

	jwks ssm <parameter>

--user-pool <id>       The user pool, e.g. us-west-2_NMATFlcVJ. Its JWKS URL is
                       https://cognito-idp.<region>.amazonaws.com/<id>/.well-known/jwks.json
--issuer-format <f>    Which of the pool's issuers' key set to publish:
                       original (default, served for every pool) or updated,
                       https://issuer-cognito-idp.<region>.amazonaws.com/<id>/.well-known/jwks.json
                       (only for a pool whose IssuerConfiguration is UPDATED;
                       AWS answers 403 for the others).
--parameter <name>     The SSM parameter, e.g. /rootski/cognito/jwks.json.
--jwks-url <url>       Fetch the key set from this URL instead.
--region <region>      Region of the parameter. Default: AWS_REGION or the
                       profile's region, else the user pool's region.
--endpoint <url>       SSM endpoint URL (a VPC endpoint, a local stand-in).
--interval <duration>  Keep running and sync every interval (e.g. 10m).
                       Default: sync once and exit.
--timeout <duration>   Bound on one sync. Default 60s.
--dry-run              Fetch, check and compare, print what would be
                       written, write nothing.

Credentials come from the AWS default chain (environment, profile, web
identity, ECS task role, EC2 instance role). Needed: ssm:GetParameter and
ssm:PutParameter on the parameter.

Each run prints one line to stdout, "cognito-jwks-sync: <action>: ...", where
action is unchanged, created, updated, would-create or would-update.
Exit status: 0 the parameter is in sync (or dry run done); 1 bad usage;
2 the JWKS could not be fetched or has no usable key (nothing written);
3 SSM failed (nothing written). With --interval, failures are printed and
the next interval retries; SIGINT/SIGTERM end it with status 0.
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().String("user-pool", "", "Cognito user pool id, e.g. us-west-2_NMATFlcVJ")
			cmd.Flags().String("parameter", "", "SSM parameter name, e.g. /rootski/cognito/jwks.json")
			cmd.Flags().String("issuer-format", "", "original (default) or updated: whose key set --user-pool names")
			cmd.Flags().String("jwks-url", "", "JWKS URL (default: derived from --user-pool)")
			cmd.Flags().String("region", "", "AWS region of the parameter")
			cmd.Flags().String("endpoint", "", "SSM endpoint URL")
			cmd.Flags().Duration("interval", 0, "keep running, syncing every interval")
			cmd.Flags().Duration("timeout", time.Minute, "bound on one sync")
			cmd.Flags().Bool("dry-run", false, "show what would be written; write nothing")
			cmd.RunE = func(c *cobra.Command, args []string) error {
				return caddycmd.WrapCommandFuncForCobra(func(fl caddycmd.Flags) (int, error) {
					return cmdJWKSSync(fl, c.OutOrStdout(), c.ErrOrStderr())
				})(c, args)
			}
		},
	})
}

// syncFlags are the parsed flags of cognito-jwks-sync.
type syncFlags struct {
	userPool, issuerFormat, parameter, jwksURL, region, endpoint string
	interval, timeout                                            time.Duration
	dryRun                                                       bool
}

func (f *syncFlags) check() error {
	if f.parameter == "" {
		return errors.New("--parameter is required")
	}
	if err := ssmsource.CheckWritableName(f.parameter); err != nil {
		return fmt.Errorf("--parameter: %w", err)
	}
	if f.userPool == "" && f.jwksURL == "" {
		return errors.New("--user-pool (or --jwks-url) is required")
	}
	if f.userPool != "" {
		if _, err := config.PoolRegion(f.userPool); err != nil {
			return fmt.Errorf("--user-pool: %w", err)
		}
	}
	if f.issuerFormat != "" && f.jwksURL != "" {
		return errors.New("--issuer-format chooses the key set of --user-pool; --jwks-url names one itself: give one of them")
	}
	if f.jwksURL == "" {
		format := f.issuerFormat
		if format == "" {
			format = config.IssuerFormatOriginal
		}
		iss, err := config.PoolIssuerURL(f.userPool, format)
		if err != nil {
			return fmt.Errorf("--issuer-format: %w", err)
		}
		f.jwksURL = config.JWKSURL(iss)
	}
	if _, err := jwks.NewHTTPSource(f.jwksURL, nil); err != nil {
		return fmt.Errorf("--jwks-url: %w", err)
	}
	if f.interval < 0 || (f.interval > 0 && f.interval < time.Second) {
		return fmt.Errorf("--interval %s: at least 1s", f.interval)
	}
	if f.timeout <= 0 {
		return fmt.Errorf("--timeout %s: must be positive", f.timeout)
	}
	return nil
}

func cmdJWKSSync(fl caddycmd.Flags, stdout, stderr io.Writer) (int, error) {
	f := syncFlags{
		userPool:     fl.String("user-pool"),
		issuerFormat: fl.String("issuer-format"),
		parameter:    fl.String("parameter"),
		jwksURL:      fl.String("jwks-url"),
		region:       fl.String("region"),
		endpoint:     fl.String("endpoint"),
		interval:     fl.Duration("interval"),
		timeout:      fl.Duration("timeout"),
		dryRun:       fl.Bool("dry-run"),
	}
	if err := f.check(); err != nil {
		return SyncExitUsage, fmt.Errorf("cognito-jwks-sync: %w", err)
	}
	if strings.HasPrefix(f.jwksURL, "http://") && !jwks.IsLoopbackURL(f.jwksURL) {
		fmt.Fprintf(stderr, "cognito-jwks-sync: warning: fetching keys over plain http from %s\n", f.jwksURL)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	initCtx, cancel := context.WithTimeout(ctx, f.timeout)
	client, region, err := ssmsource.NewClient(initCtx, ssmsource.ClientConfig{
		Region:          f.region,
		UserPool:        f.userPool,
		Endpoint:        f.endpoint,
		RetryThrottling: true,
	})
	cancel()
	if err != nil {
		return SyncExitUsage, fmt.Errorf("cognito-jwks-sync: %w", err)
	}

	once := func() (int, error) {
		runCtx, cancel := context.WithTimeout(ctx, f.timeout)
		defer cancel()
		res, err := ssmsource.Sync(runCtx, client, ssmsource.SyncInput{
			JWKSURL:     f.jwksURL,
			Parameter:   f.parameter,
			Region:      region,
			DryRun:      f.dryRun,
			Description: "JWKS of " + f.jwksURL + " (caddy cognito-jwks-sync)",
		})
		if err != nil {
			code := SyncExitSSM
			var se *ssmsource.SyncError
			if errors.As(err, &se) && (se.Stage == ssmsource.StageFetch || se.Stage == ssmsource.StageValidate) {
				code = SyncExitSource
			}
			return code, fmt.Errorf("cognito-jwks-sync: %v; nothing written", err)
		}
		for _, w := range res.Warnings {
			fmt.Fprintf(stderr, "cognito-jwks-sync: warning: sidecars will ignore a key: %s\n", w)
		}
		fmt.Fprintln(stdout, describeSync(res, region))
		if f.dryRun && res.Action != ssmsource.Unchanged {
			fmt.Fprintln(stdout, res.Value)
		}
		return SyncExitOK, nil
	}

	if f.interval == 0 {
		return once()
	}
	for {
		if code, err := once(); code != SyncExitOK {
			if ctx.Err() != nil {
				return SyncExitOK, nil
			}
			fmt.Fprintf(stderr, "%v (exit status %d; retrying in %s)\n", err, code, f.interval)
		}
		select {
		case <-ctx.Done():
			return SyncExitOK, nil
		case <-time.After(f.interval):
		}
	}
}

// describeSync is the one-line report of a sync.
func describeSync(res *ssmsource.SyncResult, region string) string {
	kids := func(ids []string) string {
		if len(ids) == 0 {
			return "none"
		}
		return strings.Join(ids, ",")
	}
	where := fmt.Sprintf("%s (%s)", res.Parameter, region)
	switch res.Action {
	case ssmsource.Unchanged:
		return fmt.Sprintf("cognito-jwks-sync: unchanged: %s version %d already holds kids %s", where, res.Version, kids(res.KeyIDs))
	case ssmsource.Created:
		return fmt.Sprintf("cognito-jwks-sync: created: %s version %d holds kids %s", where, res.Version, kids(res.KeyIDs))
	case ssmsource.WouldCreate:
		return fmt.Sprintf("cognito-jwks-sync: would-create: %s with kids %s (dry run, nothing written)", where, kids(res.KeyIDs))
	case ssmsource.WouldUpdate:
		return fmt.Sprintf("cognito-jwks-sync: would-update: %s version %d from kids %s to %s (dry run, nothing written)", where, res.Version, kids(res.PreviousKeyIDs), kids(res.KeyIDs))
	default:
		return fmt.Sprintf("cognito-jwks-sync: %s: %s version %d holds kids %s (was %s)", res.Action, where, res.Version, kids(res.KeyIDs), kids(res.PreviousKeyIDs))
	}
}
