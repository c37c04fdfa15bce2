package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks/ssmsource"
	"github.com/caddy-cognito/caddy-cognito/config"
)

// ResourceType is the custom resource type this function serves.
const ResourceType = "Custom::CognitoJWKsInSSM"

// Resource properties.
const (
	PropPoolID     = "CognitoUserPoolId"
	PropPoolRegion = "CognitoUserPoolRegion"
	PropPath       = "SSMParameterPath"
)

// The function's environment (set by template.yaml from the stack's
// parameters) pins the one user pool it publishes: an event naming another
// pool is refused, so whoever can invoke the function or edit a template
// that uses it cannot make it publish other keys into the parameter the
// sidecars trust.
const (
	EnvPoolID     = "COGNITO_USER_POOL_ID"
	EnvPoolRegion = "COGNITO_USER_POOL_REGION"
)

// SSMAPI is the part of the SSM client the handler uses.
type SSMAPI interface {
	ssmsource.SyncAPI
	DeleteParameter(ctx context.Context, in *ssm.DeleteParameterInput, optFns ...func(*ssm.Options)) (*ssm.DeleteParameterOutput, error)
}

// Handler serves the CloudFormation custom resource. Whatever happens —
// bad properties, AWS errors, a panic, the Lambda deadline coming close — it
// answers CloudFormation on the ResponseURL, so a stack never waits an hour
// for a resource that will not answer.
type Handler struct {
	// SSM client (in the function's region).
	SSM SSMAPI
	// Region of the SSM client, for messages and the parameter ARN.
	Region string
	// PoolID is the only user pool whose keys this function publishes
	// (EnvPoolID). Create and Update events for another pool are answered
	// FAILED; without it every Create and Update is.
	PoolID string
	// PoolRegion, when set (EnvPoolRegion), must be PoolID's region.
	PoolRegion string
	// InitErr, when set, fails every request with it (the function could
	// not be set up, e.g. no region); CloudFormation still gets an answer.
	InitErr error
	// HTTPClient fetches the JWKS. Default jwks.DefaultHTTPClient().
	HTTPClient *http.Client
	// ResponseClient sends the answer to CloudFormation. Default: a
	// client with a 10s timeout.
	ResponseClient *http.Client
	// JWKSURL maps a user pool id to its JWKS URL. Default: Cognito's
	// https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/jwks.json.
	JWKSURL func(poolID string) (string, error)
	// ResponseRetryDelay is the first wait before sending the answer
	// again after a failure (then 2x, 3x). Default 250ms.
	ResponseRetryDelay time.Duration
	// Margin is the time kept before the Lambda deadline to answer
	// CloudFormation. Default 5s.
	Margin time.Duration
	// Logf logs (to CloudWatch). Default log.Printf.
	Logf func(format string, args ...any)
}

// props are the validated resource properties.
type props struct {
	PoolID, PoolRegion, Path string
}

func parseProps(m map[string]any) (props, error) {
	var p props
	get := func(name string, required bool) (string, error) {
		v, ok := m[name]
		if !ok || v == nil || v == "" {
			if required {
				return "", fmt.Errorf("property %s is required", name)
			}
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("property %s: want a string, got %T", name, v)
		}
		return strings.TrimSpace(s), nil
	}
	var err error
	if p.PoolID, err = get(PropPoolID, true); err != nil {
		return p, err
	}
	if p.PoolRegion, err = get(PropPoolRegion, false); err != nil {
		return p, err
	}
	if p.Path, err = get(PropPath, true); err != nil {
		return p, err
	}
	region, err := config.PoolRegion(p.PoolID)
	if err != nil {
		return p, fmt.Errorf("property %s: %w", PropPoolID, err)
	}
	if p.PoolRegion == "" {
		p.PoolRegion = region
	} else if p.PoolRegion != region {
		return p, fmt.Errorf("property %s %q does not match the region of %s %q (%s)", PropPoolRegion, p.PoolRegion, PropPoolID, p.PoolID, region)
	}
	if !strings.HasPrefix(p.Path, "/") {
		return p, fmt.Errorf("property %s %q: must be a path beginning with /", PropPath, p.Path)
	}
	if err := ssmsource.CheckWritableName(p.Path); err != nil {
		return p, fmt.Errorf("property %s: %w", PropPath, err)
	}
	return p, nil
}

// ownsParameter reports whether a physical resource id names a parameter
// this function created. Successful Create and Update answer with the
// parameter path; a failed Create answers with the request id, which never
// begins with "/", so its rollback Delete deletes nothing.
func ownsParameter(physicalID string) bool {
	return strings.HasPrefix(physicalID, "/") && ssmsource.CheckParameterName(physicalID) == nil
}

// Handle is the Lambda entry point: it does the work and answers
// CloudFormation. It returns an error only when the answer could not be
// delivered, so that Lambda retries the invocation (the work is
// idempotent) and CloudFormation gets another chance to hear from it.
func (h *Handler) Handle(ctx context.Context, ev cfn.Event) error {
	// The answer carries the parameter ARN and the account id: it goes to
	// CloudFormation's pre-signed S3 URL or nowhere. An event whose answer
	// could only go elsewhere is not CloudFormation's, and is not acted on.
	if err := checkResponseURL(ev.ResponseURL); err != nil {
		h.logf("%s %s refused: %v", ev.RequestType, ev.LogicalResourceID, err)
		return err
	}
	resp := cfn.NewResponse(&ev)
	start := time.Now()
	physicalID, data, err := h.run(ctx, ev)
	if err != nil {
		resp.Status = cfn.StatusFailed
		resp.Reason = err.Error()
		if lc, ok := lambdacontext.FromContext(ctx); ok && lambdacontext.LogStreamName != "" {
			resp.Reason += " (log stream " + lambdacontext.LogStreamName + ", request " + lc.AwsRequestID + ")"
		}
		if physicalID == "" {
			physicalID = ev.PhysicalResourceID
			if ev.RequestType == cfn.RequestCreate || physicalID == "" {
				physicalID = ev.RequestID
			}
		}
	} else {
		resp.Status = cfn.StatusSuccess
		resp.Data = data
	}
	resp.PhysicalResourceID = physicalID
	h.logf("%s %s %s (%s): %s %s in %s", ev.RequestType, ev.LogicalResourceID, ev.ResourceType, ev.StackID,
		resp.Status, strings.TrimSpace(resp.Reason), time.Since(start).Round(time.Millisecond))
	if err := h.send(ctx, ev.ResponseURL, resp); err != nil {
		h.logf("could not answer CloudFormation: %v", err)
		return err
	}
	return nil
}

// run does the work with a deadline short of the Lambda's and survives a
// panic, so there is always time and a result to answer with.
func (h *Handler) run(ctx context.Context, ev cfn.Event) (physicalID string, data map[string]any, err error) {
	if h.InitErr != nil {
		return "", nil, h.InitErr
	}
	workCtx, cancel := h.workContext(ctx)
	defer cancel()
	type result struct {
		id   string
		data map[string]any
		err  error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				h.logf("panic: %v", r)
				done <- result{err: fmt.Errorf("internal error: %v", r)}
			}
		}()
		id, data, err := h.do(workCtx, ev)
		done <- result{id, data, err}
	}()
	select {
	case r := <-done:
		return r.id, r.data, r.err
	case <-workCtx.Done():
		return "", nil, fmt.Errorf("%s did not finish before the Lambda deadline (%v): check the function's network access to Cognito and SSM", ev.RequestType, workCtx.Err())
	}
}

func (h *Handler) workContext(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithTimeout(ctx, 5*time.Minute)
	}
	margin := h.Margin
	if margin <= 0 {
		margin = 5 * time.Second
	}
	// Keep the margin, but at least half of the time for the work.
	if left := time.Until(deadline); margin > left/2 {
		margin = left / 2
	}
	return context.WithDeadline(ctx, deadline.Add(-margin))
}

func (h *Handler) do(ctx context.Context, ev cfn.Event) (string, map[string]any, error) {
	switch ev.RequestType {
	case cfn.RequestCreate, cfn.RequestUpdate:
		return h.publish(ctx, ev)
	case cfn.RequestDelete:
		return h.delete(ctx, ev)
	default:
		return "", nil, fmt.Errorf("unknown RequestType %q", ev.RequestType)
	}
}

func (h *Handler) publish(ctx context.Context, ev cfn.Event) (string, map[string]any, error) {
	p, err := parseProps(ev.ResourceProperties)
	if err != nil {
		return "", nil, err
	}
	if err := h.checkPool(p); err != nil {
		return "", nil, err
	}
	jwksURL, err := h.jwksURL(p.PoolID)
	if err != nil {
		return "", nil, err
	}
	res, err := ssmsource.Sync(ctx, h.SSM, ssmsource.SyncInput{
		JWKSURL:     jwksURL,
		HTTPClient:  h.HTTPClient,
		Parameter:   p.Path,
		Region:      h.Region,
		Blind:       true,
		Description: truncate("JWKS of Cognito user pool "+p.PoolID+", kept by "+ResourceType+" "+ev.LogicalResourceID+" of "+stackName(ev.StackID), 1024),
	})
	if err != nil {
		return "", nil, err
	}
	if ev.RequestType == cfn.RequestUpdate && ev.PhysicalResourceID != p.Path && ownsParameter(ev.PhysicalResourceID) {
		// A new physical id means replacement: once the stack update
		// succeeds, CloudFormation sends Delete for the old id, which
		// deletes the old parameter; if the update rolls back, the old
		// parameter is still there.
		h.logf("parameter path changed from %s to %s: CloudFormation deletes the old parameter during cleanup", ev.PhysicalResourceID, p.Path)
	}
	for _, w := range res.Warnings {
		h.logf("key ignored by the sidecars: %s", w)
	}
	return p.Path, map[string]any{
		"ParameterName": p.Path,
		"ParameterArn":  ssmsource.ParameterARN(h.Region, stackAccount(ev.StackID), p.Path),
		"Version":       strconv.FormatInt(res.Version, 10),
		"KeyIds":        strings.Join(res.KeyIDs, ","),
		"JwksUrl":       jwksURL,
	}, nil
}

func (h *Handler) delete(ctx context.Context, ev cfn.Event) (string, map[string]any, error) {
	id := ev.PhysicalResourceID
	if !ownsParameter(id) {
		h.logf("physical id %q is not a parameter path (the Create failed): nothing to delete", id)
		return id, nil, nil
	}
	_, err := h.SSM.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(id)})
	if err != nil && !ssmsource.NotFound(err) {
		return id, nil, &ssmsource.Error{Op: ssmsource.OpDelete, Name: id, Region: h.Region, Err: err,
			Problem: "delete failed", Fix: "allow ssm:DeleteParameter on " + ssmsource.ParameterARN(h.Region, stackAccount(ev.StackID), id) + " to the function's role"}
	}
	return id, nil, nil
}

// checkPool refuses an event for a pool other than the function's own.
// Delete is not checked: it only ever deletes the physical id's parameter,
// which the function's role limits to the one parameter, and refusing it
// would leave the stack unable to delete the resource.
func (h *Handler) checkPool(p props) error {
	if h.PoolID == "" {
		return fmt.Errorf("the function's environment does not pin a user pool: set %s (template.yaml sets it from the CognitoUserPoolId parameter)", EnvPoolID)
	}
	region, err := config.PoolRegion(h.PoolID)
	if err != nil {
		return fmt.Errorf("environment %s: %w", EnvPoolID, err)
	}
	if h.PoolRegion != "" && h.PoolRegion != region {
		return fmt.Errorf("environment %s %q does not match the region of %s %q (%s)", EnvPoolRegion, h.PoolRegion, EnvPoolID, h.PoolID, region)
	}
	if p.PoolID != h.PoolID {
		return fmt.Errorf("property %s %q: this function publishes only the keys of %s (%s in its environment); deploy another function for another pool",
			PropPoolID, p.PoolID, h.PoolID, EnvPoolID)
	}
	return nil
}

// checkResponseURL accepts only what CloudFormation sends: an https URL on
// an AWS host (the pre-signed S3 URLs are on *.amazonaws.com, or
// *.amazonaws.com.cn in the China regions), on the default port, without
// user information.
func checkResponseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("ResponseURL is not a URL: %w", err)
	}
	host := strings.ToLower(u.Hostname())
	switch {
	case u.Scheme != "https":
		return fmt.Errorf("ResponseURL %q: not https", u.Redacted())
	case u.User != nil:
		return fmt.Errorf("ResponseURL %q: has user information", u.Redacted())
	case u.Port() != "" && u.Port() != "443":
		return fmt.Errorf("ResponseURL %q: not the https port", u.Redacted())
	case !strings.HasSuffix(host, ".amazonaws.com") && !strings.HasSuffix(host, ".amazonaws.com.cn"):
		return fmt.Errorf("ResponseURL host %q: not an AWS pre-signed S3 host (*.amazonaws.com, *.amazonaws.com.cn)", host)
	}
	return nil
}

func (h *Handler) jwksURL(pool string) (string, error) {
	if h.JWKSURL != nil {
		return h.JWKSURL(pool)
	}
	iss, err := config.PoolIssuer(pool)
	if err != nil {
		return "", err
	}
	return config.JWKSURL(iss), nil
}

// maxResponseBytes is CloudFormation's limit on a custom resource answer.
const maxResponseBytes = 4096

// send PUTs the answer to the pre-signed ResponseURL, retrying briefly.
func (h *Handler) send(ctx context.Context, url string, resp *cfn.Response) error {
	body, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	if len(body) > maxResponseBytes {
		reason := resp.Reason
		resp.Reason = ""
		base, err := json.Marshal(resp)
		if err != nil {
			return err
		}
		// Reason is omitempty: its member is not in base.
		resp.Reason = fitJSON(reason, maxResponseBytes-len(base)-len(`,"Reason":""`))
		if body, err = json.Marshal(resp); err != nil {
			return err
		}
	}
	client := h.ResponseClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	delay := h.ResponseRetryDelay
	if delay <= 0 {
		delay = 250 * time.Millisecond
	}
	var last error
	for attempt := range 4 {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * delay):
			case <-ctx.Done():
				return fmt.Errorf("answering CloudFormation: %w (last error: %v)", ctx.Err(), last)
			}
		}
		// Not bound to ctx: an answer late by a moment is better than none.
		req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("answering CloudFormation: %w", err)
		}
		// The pre-signed S3 URL is signed for an empty Content-Type.
		req.Header["Content-Type"] = nil
		res, err := client.Do(req)
		if err != nil {
			last = err
			continue
		}
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
		res.Body.Close()
		if res.StatusCode/100 == 2 {
			return nil
		}
		last = fmt.Errorf("HTTP %d: %s", res.StatusCode, bytes.TrimSpace(msg))
		if res.StatusCode/100 == 4 && res.StatusCode != http.StatusTooManyRequests {
			break // an expired or wrong URL does not get better
		}
	}
	return fmt.Errorf("answering CloudFormation: %w", last)
}

func (h *Handler) logf(format string, args ...any) {
	if h.Logf != nil {
		h.Logf(format, args...)
		return
	}
	log.Printf(format, args...)
}

// stackAccount returns the account of a stack ARN
// (arn:aws:cloudformation:us-west-2:123456789012:stack/name/guid), or "*".
func stackAccount(stackID string) string {
	if parts := strings.SplitN(stackID, ":", 6); len(parts) == 6 && parts[4] != "" {
		return parts[4]
	}
	return "*"
}

// stackName returns the name of a stack ARN, or the ARN.
func stackName(stackID string) string {
	if parts := strings.SplitN(stackID, ":", 6); len(parts) == 6 {
		if f := strings.Split(parts[5], "/"); len(f) >= 2 {
			return f[1]
		}
	}
	return stackID
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 3 {
		return s[:runeStart(s, n)]
	}
	return s[:runeStart(s, n-3)] + "..."
}

// runeStart moves i back to the start of a UTF-8 sequence.
func runeStart(s string, i int) int {
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return i
}

// fitJSON returns the longest prefix of s, marked "..." when cut, whose
// JSON string encoding (escapes included, quotes not) fits in budget bytes.
func fitJSON(s string, budget int) string {
	budget -= len("...")
	used, end := 0, 0
	for i, r := range s {
		enc, _ := json.Marshal(string(r))
		if used+len(enc)-2 > budget {
			break
		}
		used += len(enc) - 2
		end = i + utf8.RuneLen(r)
	}
	if end == len(s) {
		return s
	}
	return s[:end] + "..."
}
