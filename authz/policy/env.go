package policy

import (
	"errors"
	"fmt"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/checker"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
)

// The variables. The request facts are declared as qualified names
// (request.method, ...), so each is typed on its own and resolved only
// when an expression reads it; `request` itself is a namespace, not a value.
const (
	varClaims       = "claims"
	varScopes       = "scopes"
	varGroups       = "groups"
	varTokenUse     = "token_use"
	varIssuer       = "issuer"
	varNow          = "now"
	varMethod       = "request.method"
	varHost         = "request.host"
	varPath         = "request.path"
	varPathSegments = "request.path_segments"
	varQuery        = "request.query"
	varHeaders      = "request.headers"
	varRemoteIP     = "request.remote_ip"
)

// maxRequestBytes is the size assumed for the request facts when an
// expression's worst case is computed: Go's (and so Caddy's) default limit
// on the request line and headers, plus its slack. A request larger than
// that (a server with a larger max_header_size) runs the tracked program.
const maxRequestBytes = 1<<20 + 4096

func newEnv() (*cel.Env, error) {
	stringMap := cel.MapType(cel.StringType, cel.StringType)
	strings := cel.ListType(cel.StringType)
	return cel.NewEnv(
		cel.Variable(varClaims, cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable(varScopes, strings),
		cel.Variable(varGroups, strings),
		cel.Variable(varTokenUse, cel.StringType),
		cel.Variable(varIssuer, cel.StringType),
		cel.Variable(varNow, cel.TimestampType),
		cel.Variable(varMethod, cel.StringType),
		cel.Variable(varHost, cel.StringType),
		cel.Variable(varPath, cel.StringType),
		cel.Variable(varPathSegments, strings),
		cel.Variable(varQuery, stringMap),
		cel.Variable(varHeaders, stringMap),
		cel.Variable(varRemoteIP, cel.StringType),
		// The extension libraries Caddy's expression matcher offers, plus
		// sets (sets.contains(scopes, [...]) is "all of") and optionals
		// (claims.?tenant.orValue("")).
		ext.Strings(),
		ext.Lists(),
		ext.Sets(),
		ext.Bindings(),
		cel.OptionalTypes(),
	)
}

// program is one compiled expression.
type program struct {
	index  int
	quoted string // for logs
	// fast runs without cost tracking: its worst case is within
	// CostLimit for inputs up to maxRequestBytes. Nil if it is not.
	fast cel.Program
	// tracked counts the cost as it runs and stops at CostLimit.
	tracked cel.Program
	// usesHeaders: the request.headers map counts towards the input size.
	usesHeaders bool
}

func compile(env *cel.Env, est sizeEstimator, src string) (*program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("empty expression")
	}
	if len(src) > maxExpressionBytes {
		return nil, fmt.Errorf("expression is %d bytes; at most %d", len(src), maxExpressionBytes)
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		msg := iss.Err().Error()
		if strings.Contains(msg, "undeclared reference to 'request'") {
			msg += "\n(request has the fields method, host, path, path_segments, query, headers and remote_ip)"
		}
		return nil, errors.New(msg)
	}
	if t := ast.OutputType(); !t.IsExactType(types.BoolType) {
		hint := ""
		if t.IsExactType(types.DynType) {
			hint = ` (compare it: e.g. claims.email_verified == true)`
		}
		return nil, fmt.Errorf("must be a bool expression, not %s%s", t, hint)
	}
	prg := &program{quoted: quoteExpr(src)}
	var err error
	prg.tracked, err = env.Program(ast, cel.EvalOptions(cel.OptOptimize, cel.OptTrackCost), cel.CostLimit(CostLimit))
	if err != nil {
		return nil, err
	}
	cost, err := env.EstimateCost(ast, est)
	if err == nil && cost.Max <= CostLimit {
		if prg.fast, err = env.Program(ast, cel.EvalOptions(cel.OptOptimize)); err != nil {
			return nil, err
		}
	}
	prg.usesHeaders = references(ast, varHeaders)
	return prg, nil
}

// references reports whether the checked ast reads the variable name.
func references(ast *cel.Ast, name string) bool {
	for _, ref := range ast.NativeRep().ReferenceMap() {
		if ref.Name == name {
			return true
		}
	}
	return false
}

// sizeEstimator bounds the inputs for the compile-time worst case: every
// string, list and map that comes from the token is at most the largest
// accepted token; from the request, at most maxRequestBytes.
type sizeEstimator struct {
	tokenBytes, requestBytes uint64
}

func (e sizeEstimator) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	path := n.Path()
	if len(path) == 0 {
		return nil
	}
	switch root := path[0]; {
	case root == varClaims || root == varScopes || root == varGroups || root == varTokenUse || root == varIssuer:
		return &checker.SizeEstimate{Min: 0, Max: e.tokenBytes}
	case strings.HasPrefix(root, "request."):
		return &checker.SizeEstimate{Min: 0, Max: e.requestBytes}
	}
	return nil
}

func (sizeEstimator) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}
