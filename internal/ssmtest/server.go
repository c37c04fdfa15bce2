// Package ssmtest is a local stand-in for AWS Systems Manager Parameter Store,
// for tests only: an HTTP server on 127.0.0.1 that speaks the AWS JSON 1.1
// protocol of GetParameter, PutParameter and DeleteParameter the way the real
// service does, so the real aws-sdk-go-v2 SSM client can be pointed at it.
//
// It keeps parameters in memory with versions and ARNs, verifies that every
// request is SigV4-signed with the test credentials (by signing the request
// again with aws/signer/v4 and comparing), counts calls, and injects faults
// (throttling, access denied, any error code) on demand.
//
// Nothing here talks to AWS.
package ssmtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// The static test identity the server accepts.
const (
	AccessKeyID     = "AKIASSMTEST000000000"
	SecretAccessKey = "ssmtest/secret/key/not/a/real/one/00000"
	Region          = "us-west-2"
	Account         = "123456789012"
)

// Operations.
const (
	OpGet    = "GetParameter"
	OpPut    = "PutParameter"
	OpDelete = "DeleteParameter"
)

// Error codes the real service answers with.
const (
	CodeNotFound       = "ParameterNotFound"
	CodeAlreadyExists  = "ParameterAlreadyExists"
	CodeThrottling     = "ThrottlingException"
	CodeAccessDenied   = "AccessDeniedException"
	CodeInternal       = "InternalServerError"
	CodeValidation     = "ValidationException"
	CodeInvalidKeyID   = "InvalidKeyId"
	codeBadSignature   = "InvalidSignatureException"
	codeUnknownClient  = "UnrecognizedClientException"
	codeUnknownOp      = "UnknownOperationException"
	codeSerialization  = "SerializationException"
	standardTierLimit  = 4096
	advancedTierLimit  = 8192
	maxRequestBodySize = 1 << 20
)

// Parameter is one stored parameter.
type Parameter struct {
	Name         string
	Type         string // String, StringList or SecureString
	Value        string
	Version      int64
	LastModified time.Time
	ARN          string
}

type fault struct {
	op, code, message string
	times             int // < 0: until cleared
}

// Server is the local SSM endpoint. Create it with New.
type Server struct {
	// URL is the endpoint, e.g. http://127.0.0.1:41234.
	URL string
	// Region and Account make the ARNs; requests must be signed for Region.
	Region, Account string

	srv *httptest.Server

	mu      sync.Mutex
	params  map[string]*Parameter
	faults  []*fault
	calls   map[string]int
	badSigs int
	now     func() time.Time
}

// New starts a server on 127.0.0.1 and stops it when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		Region:  Region,
		Account: Account,
		params:  map[string]*Parameter{},
		calls:   map[string]int{},
		now:     time.Now,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("ssmtest: listen: %v", err)
	}
	s.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: s}}
	s.srv.Start()
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Close stops the server (also done at the end of the test).
func (s *Server) Close() { s.srv.Close() }

// SetClock sets the clock that stamps LastModifiedDate (default time.Now).
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// ARN returns the ARN of the parameter name in the server's region and account.
func (s *Server) ARN(name string) string {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	return "arn:aws:ssm:" + s.Region + ":" + s.Account + ":parameter" + name
}

// Put stores a String parameter (overwriting) and returns its new version.
func (s *Server) Put(name, value string) int64 { return s.put(name, value, "String") }

// PutSecure stores a SecureString parameter and returns its new version.
func (s *Server) PutSecure(name, value string) int64 { return s.put(name, value, "SecureString") }

func (s *Server) put(name, value, typ string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.putLocked(name, value, typ).Version
}

func (s *Server) putLocked(name, value, typ string) *Parameter {
	p := s.params[name]
	if p == nil {
		p = &Parameter{Name: name, ARN: s.ARN(name)}
		s.params[name] = p
	}
	p.Type, p.Value = typ, value
	p.Version++
	p.LastModified = s.now()
	return p
}

// Get returns a copy of a stored parameter.
func (s *Server) Get(name string) (Parameter, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.params[name]
	if !ok {
		return Parameter{}, false
	}
	return *p, true
}

// Delete removes a parameter; it reports whether it existed.
func (s *Server) Delete(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.params[name]
	delete(s.params, name)
	return ok
}

// Fail makes the next `times` calls of op (OpGet, OpPut, OpDelete, or "*"
// for any) answer with the error code and message; times < 0 means until
// ClearFaults. Faults are consumed in the order they were added.
func (s *Server) Fail(op, code, message string, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{op: op, code: code, message: message, times: times})
}

// ClearFaults removes all pending faults.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Calls returns how many requests for op were received (all of them,
// including those answered with an injected fault).
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// BadSignatures returns how many requests failed SigV4 verification.
func (s *Server) BadSignatures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.badSigs
}

// WaitCalls polls until at least n requests for op were received, or fails
// the test after timeout.
func (s *Server) WaitCalls(t testing.TB, op string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for s.Calls(op) < n {
		if time.Now().After(deadline) {
			t.Fatalf("ssmtest: waited %s for %d %s calls, got %d", timeout, n, op, s.Calls(op))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Credentials returns a provider of the static test credentials.
func Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, "")
}

// NoDelayRetryer is the standard retryer (3 attempts, same retryable errors)
// without the backoff sleep, so tests of retried errors run in milliseconds.
func NoDelayRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
	})
}

// Client returns a real SSM client for this server: static test
// credentials, the server's region, and a retryer without backoff delays.
func (s *Server) Client(optFns ...func(*ssm.Options)) *ssm.Client {
	opts := ssm.Options{
		Region:       s.Region,
		Credentials:  Credentials(),
		BaseEndpoint: aws.String(s.URL),
		Retryer:      NoDelayRetryer(),
	}
	return ssm.New(opts, optFns...)
}

// Env sets the environment so aws-sdk-go-v2's config.LoadDefaultConfig (and
// any client built from it) uses this server with the test credentials and
// never reads a profile or the instance metadata service. It uses t.Setenv,
// so the test must not be parallel.
func (s *Server) Env(t testing.TB) {
	t.Helper()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_SSM":        s.URL,
		"AWS_REGION":                  s.Region,
		"AWS_ACCESS_KEY_ID":           AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       SecretAccessKey,
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
	} {
		t.Setenv(k, v)
	}
}

// ServeHTTP implements the JSON 1.1 protocol.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBodySize))
	if err != nil {
		writeError(w, http.StatusBadRequest, codeSerialization, err.Error())
		return
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AmazonSSM.")
	if r.Method != http.MethodPost || r.URL.Path != "/" || !ok {
		writeError(w, http.StatusBadRequest, codeUnknownOp, "want POST / with X-Amz-Target: AmazonSSM.<Operation>")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		writeError(w, http.StatusBadRequest, codeSerialization, "Content-Type "+ct+" is not application/x-amz-json-1.1")
		return
	}

	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()

	if status, code, msg := s.verifySignature(r, body); code != "" {
		s.mu.Lock()
		s.badSigs++
		s.mu.Unlock()
		writeError(w, status, code, msg)
		return
	}
	if f := s.takeFault(op); f != nil {
		writeError(w, statusOf(f.code), f.code, f.message)
		return
	}
	switch op {
	case OpGet:
		s.getParameter(w, body)
	case OpPut:
		s.putParameter(w, body)
	case OpDelete:
		s.deleteParameter(w, body)
	default:
		writeError(w, http.StatusBadRequest, codeUnknownOp, "operation "+op+" is not supported by ssmtest")
	}
}

func (s *Server) takeFault(op string) *fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.op != op && f.op != "*" {
			continue
		}
		if f.times > 0 {
			f.times--
			if f.times == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return f
	}
	return nil
}

// Real SSM answers 400 for client errors, including throttling and denied
// access, and 500 for its own failures.
func statusOf(code string) int {
	switch code {
	case CodeInternal, "InternalFailure", "ServiceUnavailable":
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

var authPattern = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$`)

// verifySignature signs the request again with the known secret and compares.
func (s *Server) verifySignature(r *http.Request, body []byte) (status int, code, msg string) {
	m := authPattern.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return http.StatusBadRequest, "MissingAuthenticationTokenException", "request is not SigV4-signed: Authorization = " + r.Header.Get("Authorization")
	}
	akid, date, region, service, signedHeaders := m[1], m[2], m[3], m[4], m[5]
	switch {
	case akid != AccessKeyID:
		return http.StatusBadRequest, codeUnknownClient, "The security token included in the request is invalid."
	case service != "ssm":
		return http.StatusBadRequest, codeBadSignature, "Credential should be scoped to correct service: 'ssm'."
	case region != s.Region:
		return http.StatusBadRequest, codeBadSignature, fmt.Sprintf("Credential should be scoped to a valid region, not %q (want %q).", region, s.Region)
	}
	signingTime, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || signingTime.Format("20060102") != date {
		return http.StatusBadRequest, codeBadSignature, "X-Amz-Date is missing or does not match the credential scope"
	}
	if skew := time.Since(signingTime); skew > 15*time.Minute || skew < -15*time.Minute {
		return http.StatusBadRequest, codeBadSignature, "Signature expired: request time too skewed"
	}
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payloadHash {
		return http.StatusBadRequest, codeBadSignature, "X-Amz-Content-Sha256 does not match the body"
	}

	again, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	again.Host = r.Host
	again.ContentLength = int64(len(body))
	for _, h := range strings.Split(signedHeaders, ";") {
		switch h {
		case "host", "content-length":
			continue // taken from Host and ContentLength
		}
		vals := r.Header.Values(h)
		if len(vals) == 0 {
			return http.StatusBadRequest, codeBadSignature, "signed header " + h + " is missing"
		}
		again.Header[http.CanonicalHeaderKey(h)] = vals
	}
	if !strings.Contains(";"+signedHeaders+";", ";x-amz-target;") {
		return http.StatusBadRequest, codeBadSignature, "X-Amz-Target is not signed"
	}
	creds := aws.Credentials{AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, again, payloadHash, "ssm", s.Region, signingTime); err != nil {
		return http.StatusInternalServerError, CodeInternal, "ssmtest: re-signing: " + err.Error()
	}
	if got, want := r.Header.Get("Authorization"), again.Header.Get("Authorization"); got != want {
		return http.StatusBadRequest, codeBadSignature, "The request signature we calculated does not match the signature you provided."
	}
	return 0, "", ""
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", "00000000-0000-4000-8000-000000000000")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", "00000000-0000-4000-8000-000000000001")
	_ = json.NewEncoder(w).Encode(v)
}

func decode(w http.ResponseWriter, body []byte, v any) bool {
	if err := json.Unmarshal(body, v); err != nil {
		writeError(w, http.StatusBadRequest, codeSerialization, err.Error())
		return false
	}
	return true
}

var namePattern = regexp.MustCompile(`^[a-zA-Z0-9_.\-/]+$`)

func (s *Server) getParameter(w http.ResponseWriter, body []byte) {
	var in struct {
		Name           string
		WithDecryption bool
	}
	if !decode(w, body, &in) {
		return
	}
	s.mu.Lock()
	p, ok := s.params[in.Name]
	var cp Parameter
	if ok {
		cp = *p
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusBadRequest, CodeNotFound, "")
		return
	}
	value := cp.Value
	if cp.Type == "SecureString" && !in.WithDecryption {
		value = base64.StdEncoding.EncodeToString([]byte("kms-ciphertext:" + value))
	}
	writeJSON(w, map[string]any{"Parameter": map[string]any{
		"ARN":              cp.ARN,
		"DataType":         "text",
		"LastModifiedDate": float64(cp.LastModified.UnixMilli()) / 1000,
		"Name":             cp.Name,
		"Type":             cp.Type,
		"Value":            value,
		"Version":          cp.Version,
	}})
}

func (s *Server) putParameter(w http.ResponseWriter, body []byte) {
	var in struct {
		Name      string
		Value     *string
		Type      string
		Overwrite bool
		Tier      string
	}
	if !decode(w, body, &in) {
		return
	}
	if !namePattern.MatchString(in.Name) || len(in.Name) > 1011 {
		writeError(w, http.StatusBadRequest, CodeValidation, "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive) and must match [a-zA-Z0-9_.\\-/]+")
		return
	}
	if in.Value == nil || *in.Value == "" {
		writeError(w, http.StatusBadRequest, CodeValidation, "1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1")
		return
	}
	limit, tier := standardTierLimit, "Standard"
	if in.Tier == "Advanced" || in.Tier == "Intelligent-Tiering" && len(*in.Value) > standardTierLimit {
		limit, tier = advancedTierLimit, "Advanced"
	}
	if len(*in.Value) > limit {
		writeError(w, http.StatusBadRequest, CodeValidation, fmt.Sprintf("Standard tier parameters support a maximum parameter value of %d characters.", limit))
		return
	}
	switch in.Type {
	case "":
		in.Type = "String"
	case "String", "StringList", "SecureString":
	default:
		writeError(w, http.StatusBadRequest, CodeValidation, "invalid Type "+in.Type)
		return
	}
	s.mu.Lock()
	_, exists := s.params[in.Name]
	if exists && !in.Overwrite {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, CodeAlreadyExists, "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")
		return
	}
	p := s.putLocked(in.Name, *in.Value, in.Type)
	version := p.Version
	s.mu.Unlock()
	writeJSON(w, map[string]any{"Tier": tier, "Version": version})
}

func (s *Server) deleteParameter(w http.ResponseWriter, body []byte) {
	var in struct{ Name string }
	if !decode(w, body, &in) {
		return
	}
	if !s.Delete(in.Name) {
		writeError(w, http.StatusBadRequest, CodeNotFound, "")
		return
	}
	writeJSON(w, struct{}{})
}
