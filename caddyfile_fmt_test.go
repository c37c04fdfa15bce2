package caddycognito_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// TestCaddyfilesFormatted checks that `caddy fmt` leaves every Caddyfile of
// the repository unchanged (Caddyfile.example, the image's
// deploy/Caddyfile.env, the demo's): users copy them, and Caddy warns
// "Caddyfile input is not formatted" when it loads one that is not.
func TestCaddyfilesFormatted(t *testing.T) {
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if strings.Contains(d.Name(), "Caddyfile") && filepath.Ext(d.Name()) != ".go" {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Caddyfile.example", filepath.Join("deploy", "Caddyfile.env")} {
		if !slices.Contains(files, want) {
			t.Errorf("%s not found (found %q)", want, files)
		}
	}
	for _, path := range files {
		body, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// The same comparison as `caddy fmt` and caddy adapt's warning.
		if w, differs := caddyfile.FormattingDifference(path, body); differs {
			t.Errorf("%s:%d: not caddy fmt clean; run `caddy fmt --overwrite %s`; formatted:\n%s",
				path, w.Line, path, caddyfile.Format(body))
		}
	}
}
