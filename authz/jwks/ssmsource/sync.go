package ssmsource

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
)

// PutAPI is the part of the SSM client that writes; *ssm.Client has it.
type PutAPI interface {
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
}

// SyncAPI is the part of the SSM client Sync uses.
type SyncAPI interface {
	GetAPI
	PutAPI
}

// SyncInput says what to publish where.
type SyncInput struct {
	// JWKSURL is the key set to publish, e.g.
	// https://cognito-idp.us-west-2.amazonaws.com/us-west-2_NMATFlcVJ/.well-known/jwks.json.
	JWKSURL string
	// HTTPClient fetches it. Default jwks.DefaultHTTPClient().
	HTTPClient *http.Client
	// Parameter is the SSM parameter name.
	Parameter string
	// Region of the SSM client, for messages.
	Region string
	// DryRun reads and compares but does not write.
	DryRun bool
	// Blind writes without reading the parameter first (no comparison,
	// so no ssm:GetParameter permission is needed). The custom resource
	// uses it: it runs only when the stack changes.
	Blind bool
	// Description is stored with the parameter.
	Description string
}

// Action is what Sync did.
type Action string

// Actions.
const (
	Unchanged   Action = "unchanged"    // the parameter already holds this key set
	Created     Action = "created"      // the parameter did not exist
	Updated     Action = "updated"      // the key set changed
	Written     Action = "written"      // Blind: written without comparing
	WouldCreate Action = "would-create" // DryRun
	WouldUpdate Action = "would-update" // DryRun
)

// SyncResult reports what Sync found and did.
type SyncResult struct {
	Action Action
	// Parameter name and the version it holds now (0 if it does not exist).
	Parameter string
	Version   int64
	// Value is the document written (or that would be written).
	Value string
	// KeyIDs of the published key set, PreviousKeyIDs of the one it
	// replaces (nil if none or Blind).
	KeyIDs, PreviousKeyIDs []string
	// Warnings from the key hygiene: keys that sidecars will ignore.
	Warnings []string
}

// Stage names the step of Sync that failed.
type Stage string

// Stages.
const (
	StageFetch    Stage = "fetch"    // the JWKS could not be downloaded
	StageValidate Stage = "validate" // the JWKS failed the key hygiene
	StageRead     Stage = "read"     // the parameter could not be read
	StageWrite    Stage = "write"    // the parameter could not be written
)

// SyncError is a failure of Sync at one stage. Nothing was written.
type SyncError struct {
	Stage Stage
	Err   error
}

func (e *SyncError) Error() string { return string(e.Stage) + ": " + e.Err.Error() }
func (e *SyncError) Unwrap() error { return e.Err }

// standardTierMax is the largest value of a Standard-tier parameter.
const standardTierMax = 4096

// Sync publishes the JWKS at in.JWKSURL into the parameter: it downloads it,
// applies the same key hygiene as the sidecars (a document with no usable
// key is never published), reads the parameter and writes it (type String,
// overwrite) only when the key set differs, comparing canonical JSON so a
// reformatted or reordered document does not count as a change.
func Sync(ctx context.Context, client SyncAPI, in SyncInput) (*SyncResult, error) {
	if err := CheckWritableName(in.Parameter); err != nil {
		return nil, &SyncError{StageValidate, err}
	}
	hc := in.HTTPClient
	if hc == nil {
		hc = jwks.DefaultHTTPClient()
	}
	src, err := jwks.NewHTTPSource(in.JWKSURL, hc)
	if err != nil {
		return nil, &SyncError{StageFetch, err}
	}
	doc, _, err := src.Fetch(ctx, "")
	if err != nil {
		return nil, &SyncError{StageFetch, err}
	}
	set, warnings, err := jwks.ParseSet(doc)
	if err != nil {
		return nil, &SyncError{StageValidate, fmt.Errorf("%s: %w", in.JWKSURL, err)}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, doc); err != nil {
		return nil, &SyncError{StageValidate, err}
	}
	res := &SyncResult{
		Parameter: in.Parameter,
		Value:     compact.String(),
		KeyIDs:    set.KeyIDs(),
		Warnings:  warnings,
	}

	exists := false
	if !in.Blind {
		out, err := client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(in.Parameter), WithDecryption: aws.Bool(true)})
		switch {
		case NotFound(err):
		case err != nil:
			return nil, &SyncError{StageRead, describe(OpGet, in.Parameter, in.Region, "", err)}
		case out.Parameter != nil:
			exists = true
			res.Version = out.Parameter.Version
			cur := aws.ToString(out.Parameter.Value)
			res.PreviousKeyIDs = keyIDs([]byte(cur))
			if same, _ := SameKeySet([]byte(cur), doc); same {
				res.Action = Unchanged
				return res, nil
			}
		}
	}
	if in.DryRun {
		res.Action = WouldCreate
		if exists {
			res.Action = WouldUpdate
		}
		return res, nil
	}

	put := &ssm.PutParameterInput{
		Name:      aws.String(in.Parameter),
		Value:     aws.String(res.Value),
		Type:      types.ParameterTypeString,
		Overwrite: aws.Bool(true),
		DataType:  aws.String("text"),
	}
	if in.Description != "" {
		put.Description = aws.String(in.Description)
	}
	if len(res.Value) > standardTierMax {
		// Cognito's two keys fit in 4 KB many times over; a bigger set
		// needs the Advanced tier, which Intelligent-Tiering picks only
		// when it must.
		put.Tier = types.ParameterTierIntelligentTiering
	}
	out, err := client.PutParameter(ctx, put)
	if err != nil {
		return nil, &SyncError{StageWrite, describe(OpPut, in.Parameter, in.Region, "", err)}
	}
	res.Version = out.Version
	switch {
	case in.Blind:
		res.Action = Written
	case exists:
		res.Action = Updated
	default:
		res.Action = Created
	}
	return res, nil
}

// SameKeySet reports whether two JWKS documents hold the same keys: equal
// canonical JSON (see Canonical).
func SameKeySet(a, b []byte) (bool, error) {
	ca, err := Canonical(a)
	if err != nil {
		return false, err
	}
	cb, err := Canonical(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(ca, cb), nil
}

// Canonical returns a canonical form of a JSON document: no insignificant
// whitespace, object members sorted by name, numbers as written, and the
// top-level "keys" array (a set, RFC 7517 §5) sorted, so the same key set
// always has the same bytes whatever the formatting and order.
func Canonical(doc []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON document")
	}
	if top, ok := v.(map[string]any); ok {
		if keys, ok := top["keys"].([]any); ok {
			enc := make([][]byte, len(keys))
			for i, k := range keys {
				b, err := json.Marshal(k) // map members come out sorted
				if err != nil {
					return nil, err
				}
				enc[i] = b
			}
			slices.SortFunc(enc, bytes.Compare)
			raw := make([]json.RawMessage, len(enc))
			for i, b := range enc {
				raw[i] = b
			}
			top["keys"] = raw
		}
	}
	return json.Marshal(v)
}

// keyIDs lists the kids of a document, best effort (nil when unreadable).
func keyIDs(doc []byte) []string {
	var d struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if json.Unmarshal(doc, &d) != nil {
		return nil
	}
	ids := make([]string, 0, len(d.Keys))
	for _, k := range d.Keys {
		ids = append(ids, k.Kid)
	}
	slices.SortFunc(ids, cmp.Compare)
	return ids
}
