package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// get walks mapping keys; nil when a key is missing.
func get(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		if n == nil {
			return nil
		}
		if n.Kind == yaml.DocumentNode {
			n = n.Content[0]
		}
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

func scalars(n *yaml.Node) []string {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}
	}
	var out []string
	for _, c := range n.Content {
		out = append(out, scalars(c)...)
	}
	return out
}

// The shipped template must stay least-privilege and match the handler's
// contract (resource type, property names, runtime and handler).
func TestTemplate(t *testing.T) {
	raw, err := os.ReadFile("template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	res := get(&doc, "Resources")
	if res == nil {
		t.Fatal("no Resources")
	}

	fn := get(res, "JWKsToSSMFunction", "Properties")
	for k, want := range map[string]string{"Runtime": "provided.al2023", "Handler": "bootstrap"} {
		if got := get(fn, k); got == nil || got.Value != want {
			t.Errorf("function %s = %v, want %s", k, got, want)
		}
	}
	if n := get(fn, "Timeout"); n == nil || n.Value == "" {
		t.Error("function has no Timeout")
	}

	// The function's environment pins the pool the custom resource names.
	vars := get(fn, "Environment", "Variables")
	if v := get(vars, EnvPoolID); v == nil || v.Tag != "!Ref" || v.Value != "CognitoUserPoolId" {
		t.Errorf("function environment %s = %v, want !Ref CognitoUserPoolId", EnvPoolID, v)
	}
	if v, want := get(vars, EnvPoolRegion), get(res, "CognitoJWKsInSSM", "Properties", PropPoolRegion); v == nil || want == nil ||
		!slices.Equal(scalars(v), scalars(want)) || v.Tag != want.Tag {
		t.Errorf("function environment %s = %v, want the same expression as the resource's %s", EnvPoolRegion, v, PropPoolRegion)
	}
	if v := get(res, "CognitoJWKsInSSM", "Properties", PropPoolID); v == nil || v.Tag != "!Ref" || v.Value != "CognitoUserPoolId" {
		t.Errorf("custom resource %s = %v, want !Ref CognitoUserPoolId", PropPoolID, v)
	}

	// The function may only put and delete the one parameter.
	policies := get(fn, "Policies")
	if policies == nil || len(policies.Content) != 1 {
		t.Fatalf("want exactly one inline policy, got %v", policies)
	}
	stmts := get(policies.Content[0], "Statement")
	if stmts == nil || len(stmts.Content) != 1 {
		t.Fatal("want exactly one statement")
	}
	st := stmts.Content[0]
	actions := scalars(get(st, "Action"))
	slices.Sort(actions)
	if !slices.Equal(actions, []string{"ssm:DeleteParameter", "ssm:PutParameter"}) {
		t.Errorf("actions %v, want ssm:PutParameter and ssm:DeleteParameter only", actions)
	}
	resource := get(st, "Resource")
	if resource == nil || resource.Tag != "!Sub" || !strings.HasSuffix(resource.Value, ":parameter${SSMParameterPath}") || strings.Contains(resource.Value, "*") {
		t.Errorf("resource %v, want the one parameter's ARN", resource)
	}
	if e := get(st, "Effect"); e == nil || e.Value != "Allow" {
		t.Error("effect")
	}

	cr := get(res, "CognitoJWKsInSSM")
	if typ := get(cr, "Type"); typ == nil || typ.Value != ResourceType {
		t.Errorf("custom resource type %v, want %s", typ, ResourceType)
	}
	props := get(cr, "Properties")
	for _, p := range []string{"ServiceToken", PropPoolID, PropPoolRegion, PropPath} {
		if get(props, p) == nil {
			t.Errorf("custom resource property %s missing", p)
		}
	}
	if tok := get(props, "ServiceToken"); tok.Tag != "!GetAtt" || tok.Value != "JWKsToSSMFunction.Arn" {
		t.Errorf("ServiceToken %v", tok)
	}

	// The sidecars' policy: read only.
	read := get(res, "SidecarReadPolicy", "Properties", "PolicyDocument", "Statement")
	if read == nil || len(read.Content) != 1 || get(read.Content[0], "Action").Value != "ssm:GetParameter" {
		t.Errorf("sidecar policy %v", read)
	}
}
