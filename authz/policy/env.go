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

// The largest request facts an expression may read. The compile-time
// worst case of an expression assumes them, so they are enforced when an
// expression reads the fact: a larger one is an evaluation error (which
// denies) rather than an unbounded evaluation. Real requests are far
// smaller: browsers send about twenty headers.
const (
	maxRequestItems  = 256      // request.headers, request.query, request.path_segments entries
	maxRequestString = 32 << 10 // request.method, .host, .path, .remote_ip, each header and query name and value
)

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
	prg    cel.Program
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
	// The bound on every evaluation is proven here, once: the worst case
	// over the largest inputs the policy lets an expression read. (cel-go's
	// run-time cost tracker is not used: its bookkeeping grows with every
	// loop iteration, so metering a loop costs time quadratic in its
	// length, far more than the loop itself.)
	cost, err := env.EstimateCost(ast, est)
	if err != nil {
		return nil, fmt.Errorf("estimating its cost: %w", err)
	}
	if cost.Max > CostLimit {
		return nil, fmt.Errorf("its worst-case cost, %s, exceeds the limit of %d: a loop over a list or map of the "+
			"token or the request runs once per item (up to %d request headers, query parameters or path segments, "+
			"and as many claim items as a %d-byte token can hold); test membership with `in` or an index instead, "+
			"or loop over a shorter list", costString(cost.Max), CostLimit, maxRequestItems, est.tokenBytes)
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, err
	}
	return &program{quoted: quoteExpr(src), prg: prg}, nil
}

func costString(c uint64) string {
	if c > 1<<62 {
		return "unbounded"
	}
	return fmt.Sprint(c)
}

// sizeEstimator bounds the inputs for the compile-time worst case. From
// the token (at most tokenBytes, its payload three quarters of that): a
// string at most the payload, a list at most half of it in items ("[1,1]"),
// a map a fifth (`"":0,`). From the request: maxRequestItems and
// maxRequestString, which evaluation enforces. Paths name the variable and
// then @items, @keys or @values for what is inside.
type sizeEstimator struct {
	tokenBytes uint64
}

func (e sizeEstimator) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	kind := n.Type().Kind()
	switch kind {
	case types.StringKind, types.BytesKind, types.ListKind, types.MapKind, types.DynKind, types.AnyKind, types.OpaqueKind:
	default:
		// Scalars, types, timestamps, durations, null: the run-time
		// size of a value without a length is 1.
		return &checker.SizeEstimate{Min: 1, Max: 1}
	}
	path := n.Path()
	if len(path) == 0 {
		return nil
	}
	switch root := path[0]; {
	case root == varClaims || root == varScopes || root == varGroups || root == varTokenUse || root == varIssuer:
		payload := e.tokenBytes * 3 / 4
		switch kind {
		case types.ListKind:
			return &checker.SizeEstimate{Min: 0, Max: payload / 2}
		case types.MapKind:
			return &checker.SizeEstimate{Min: 0, Max: payload / 5}
		}
		return &checker.SizeEstimate{Min: 0, Max: payload}
	case strings.HasPrefix(root, "request."):
		switch kind {
		case types.ListKind, types.MapKind:
			return &checker.SizeEstimate{Min: 0, Max: maxRequestItems}
		}
		return &checker.SizeEstimate{Min: 0, Max: maxRequestString}
	}
	return nil
}

func (sizeEstimator) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}
