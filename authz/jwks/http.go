package jwks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HTTPSource fetches a JWKS document over HTTP(S), with conditional
// requests (ETag) so an unchanged key set costs one small response.
type HTTPSource struct {
	// URL of the JWKS document.
	URL string
	// Client does the requests. Default: a client with sane timeouts that
	// never follows a redirect to another host's key set silently.
	Client *http.Client
}

// NewHTTPSource checks the URL and returns a source for it.
func NewHTTPSource(rawURL string, client *http.Client) (*HTTPSource, error) {
	if err := checkFetchURL(rawURL); err != nil {
		return nil, err
	}
	if client == nil {
		client = DefaultHTTPClient()
	}
	return &HTTPSource{URL: rawURL, Client: client}, nil
}

// DefaultHTTPClient returns the client used for key fetches: bounded dial,
// TLS and header timeouts, and no proxy environment surprises beyond the
// standard ones.
func DefaultHTTPClient() *http.Client {
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("jwks: too many redirects")
			}
			if req.URL.Scheme != "https" && via[0].URL.Scheme == "https" {
				return errors.New("jwks: refusing redirect from https to " + req.URL.Scheme)
			}
			return nil
		},
	}
}

func checkFetchURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("jwks url %q: %w", rawURL, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("jwks url %q: must be an absolute http(s) URL", rawURL)
	}
	return nil
}

// IsLoopbackURL reports whether the URL's host is a loopback address or
// "localhost"; plain http to anything else deserves a warning.
func IsLoopbackURL(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *HTTPSource) String() string { return s.URL }

// CloseIdleConnections releases kept-alive connections (and their
// goroutines) when the keyring stops.
func (s *HTTPSource) CloseIdleConnections() { s.Client.CloseIdleConnections() }

// Fetch implements Source.
func (s *HTTPSource) Fetch(ctx context.Context, prevVersion string) ([]byte, string, error) {
	extra := http.Header{}
	etag, conditional := strings.CutPrefix(prevVersion, "etag:")
	if conditional {
		extra.Set("If-None-Match", etag)
	}
	body, hdr, err := get(ctx, s.Client, s.URL, extra)
	if err != nil {
		return nil, "", err
	}
	if body == nil {
		if !conditional {
			// Nothing was asked to be compared: a server answering 304
			// forever would otherwise pass for healthy while the keys
			// silently freeze.
			return nil, "", fmt.Errorf("jwks: %s answered 304 Not Modified to a request without If-None-Match", s.URL)
		}
		return nil, "", ErrNotModified
	}
	if etag := hdr.Get("ETag"); etag != "" {
		return body, "etag:" + etag, nil
	}
	sum := sha256.Sum256(body)
	return body, "sha256:" + hex.EncodeToString(sum[:]), nil
}

// get performs one GET. A 304 returns a nil body. Non-2xx statuses are
// errors; 429 and 503 carry the server's Retry-After.
func get(ctx context.Context, client *http.Client, rawURL string, extra http.Header) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("jwks: building request for %s: %w", rawURL, err)
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "caddy-cognito")
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("jwks: fetching %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return nil, resp.Header, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		err := fmt.Errorf("jwks: fetching %s: HTTP %d", rawURL, resp.StatusCode)
		return nil, nil, &RetryAfterError{After: retryAfter(resp.Header.Get("Retry-After")), Err: err}
	case resp.StatusCode != http.StatusOK:
		return nil, nil, fmt.Errorf("jwks: fetching %s: HTTP %d", rawURL, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("jwks: reading %s: %w", rawURL, err)
	}
	if len(body) > MaxDocumentBytes {
		return nil, nil, fmt.Errorf("jwks: %s: body exceeds %d bytes", rawURL, MaxDocumentBytes)
	}
	return body, resp.Header, nil
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

// DiscoverySource finds the JWKS through the issuer's OpenID Connect
// discovery document (its "jwks_uri"), as API Gateway does, then fetches it.
// The discovered URL is remembered and looked up again after a failure.
type DiscoverySource struct {
	// Issuer whose /.well-known/openid-configuration is read. The
	// document's "issuer" must equal it.
	Issuer string
	Client *http.Client

	mu      sync.Mutex
	jwksURL string
}

// NewDiscoverySource returns a discovery source for issuer.
func NewDiscoverySource(issuer string, client *http.Client) (*DiscoverySource, error) {
	if err := checkFetchURL(issuer); err != nil {
		return nil, err
	}
	if client == nil {
		client = DefaultHTTPClient()
	}
	return &DiscoverySource{Issuer: issuer, Client: client}, nil
}

// CloseIdleConnections releases kept-alive connections.
func (s *DiscoverySource) CloseIdleConnections() { s.Client.CloseIdleConnections() }

func (s *DiscoverySource) String() string {
	return strings.TrimSuffix(s.Issuer, "/") + "/.well-known/openid-configuration"
}

// Fetch implements Source.
func (s *DiscoverySource) Fetch(ctx context.Context, prevVersion string) ([]byte, string, error) {
	s.mu.Lock()
	jwksURL := s.jwksURL
	s.mu.Unlock()
	if jwksURL == "" {
		var err error
		if jwksURL, err = s.discover(ctx); err != nil {
			return nil, "", err
		}
	}
	doc, version, err := (&HTTPSource{URL: jwksURL, Client: s.Client}).Fetch(ctx, prevVersion)
	if err != nil && !errors.Is(err, ErrNotModified) {
		// The issuer may have moved its keys: discover again next time.
		s.mu.Lock()
		s.jwksURL = ""
		s.mu.Unlock()
	}
	return doc, version, err
}

func (s *DiscoverySource) discover(ctx context.Context) (string, error) {
	body, _, err := get(ctx, s.Client, s.String(), nil)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	if body == nil {
		return "", fmt.Errorf("discovery: %s answered 304 to an unconditional request", s)
	}
	var meta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &meta); err != nil {
		return "", fmt.Errorf("discovery: %s: %w", s, err)
	}
	if meta.Issuer != s.Issuer {
		// OpenID Connect Discovery §4.3: the issuer in the document must
		// be the one it was retrieved for.
		return "", fmt.Errorf("discovery: %s names issuer %q, want %q", s, meta.Issuer, s.Issuer)
	}
	if err := checkFetchURL(meta.JWKSURI); err != nil {
		return "", fmt.Errorf("discovery: %s: %w", s, err)
	}
	if strings.HasPrefix(s.Issuer, "https://") && !strings.HasPrefix(meta.JWKSURI, "https://") {
		return "", fmt.Errorf("discovery: %s: jwks_uri %q is not https", s, meta.JWKSURI)
	}
	s.mu.Lock()
	s.jwksURL = meta.JWKSURI
	s.mu.Unlock()
	return meta.JWKSURI, nil
}
