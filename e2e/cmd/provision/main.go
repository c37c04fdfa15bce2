// Command provision is the demo's helper around e2e/cognitolocal.
//
//	provision ports N              print N distinct free loopback ports, one per line
//	provision demo -endpoint URL   create the demo pool, app client, group and
//	                               users in the cognito-local at URL, log in, and
//	                               print shell assignments (KEY='value') to eval
//
// The demo pool has one app client, a group "admins", alice (in admins) and
// bob (in no group), both with the password printed as DEMO_PASSWORD.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-cognito/caddy-cognito/e2e/cognitolocal"
)

const demoPassword = "Demo-Passw0rd!"

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "provision:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: provision ports N | provision demo -endpoint URL")
	}
	switch args[0] {
	case "ports":
		if len(args) != 2 {
			return errors.New("usage: provision ports N")
		}
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 || n > 100 {
			return fmt.Errorf("ports: bad count %q", args[1])
		}
		ports, err := cognitolocal.FreePorts(n)
		if err != nil {
			return err
		}
		for _, p := range ports {
			fmt.Fprintln(stdout, p)
		}
		return nil
	case "demo":
		fs := flag.NewFlagSet("demo", flag.ContinueOnError)
		endpoint := fs.String("endpoint", "", "cognito-local base URL, e.g. http://127.0.0.1:9229")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *endpoint == "" {
			return errors.New("demo: -endpoint is required")
		}
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		vars, err := demo(ctx, strings.TrimRight(*endpoint, "/"))
		if err != nil {
			return err
		}
		for _, kv := range vars {
			fmt.Fprintf(stdout, "%s=%s\n", kv[0], shellQuote(kv[1]))
		}
		return nil
	}
	return fmt.Errorf("unknown command %q", args[0])
}

// demo provisions the demo tenant and returns the shell variables, in order.
func demo(ctx context.Context, endpoint string) ([][2]string, error) {
	c := cognitolocal.NewClient(endpoint)
	pool, err := c.CreateUserPool(ctx, "caddy-cognito-demo")
	if err != nil {
		return nil, err
	}
	client, err := c.CreateAppClient(ctx, pool, "demo-web", 0)
	if err != nil {
		return nil, err
	}
	if err := c.CreateGroup(ctx, pool, "admins"); err != nil {
		return nil, err
	}
	alice, err := c.CreateUser(ctx, pool, "alice@example.com", demoPassword, "admins")
	if err != nil {
		return nil, err
	}
	bob, err := c.CreateUser(ctx, pool, "bob@example.com", demoPassword)
	if err != nil {
		return nil, err
	}
	at, err := c.Login(ctx, client, alice.Email, alice.Password)
	if err != nil {
		return nil, err
	}
	bt, err := c.Login(ctx, client, bob.Email, bob.Password)
	if err != nil {
		return nil, err
	}
	issuer := endpoint + "/" + pool
	return [][2]string{
		{"DEMO_POOL_ID", pool},
		{"DEMO_CLIENT_ID", client},
		{"DEMO_ISSUER", issuer},
		{"DEMO_JWKS_URL", issuer + "/.well-known/jwks.json"},
		{"DEMO_PASSWORD", demoPassword},
		{"ALICE_EMAIL", alice.Email},
		{"ALICE_SUB", alice.Sub},
		{"ALICE_ACCESS_TOKEN", at.AccessToken},
		{"ALICE_ID_TOKEN", at.IDToken},
		{"ALICE_REFRESH_TOKEN", at.RefreshToken},
		{"BOB_EMAIL", bob.Email},
		{"BOB_SUB", bob.Sub},
		{"BOB_ACCESS_TOKEN", bt.AccessToken},
	}, nil
}

// shellQuote quotes s for POSIX shells.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
