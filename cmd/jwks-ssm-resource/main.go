// Command jwks-ssm-resource is an AWS Lambda function serving the
// CloudFormation custom resource Custom::CognitoJWKsInSSM: it copies a
// Cognito user pool's JWKS into an SSM parameter, so that caddy-cognito
// sidecars in a VPC without internet access can read the keys through an SSM
// VPC endpoint (`jwks ssm <path>` in the Caddyfile).
//
// Properties:
//
//	CognitoUserPoolId      us-west-2_NMATFlcVJ       (required)
//	CognitoUserPoolRegion  us-west-2                 (optional; must match the pool id)
//	SSMParameterPath       /rootski/cognito/jwks.json (required; a path beginning with /)
//
// Create and Update fetch
// https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/jwks.json,
// check it with the sidecars' key hygiene and put it into the parameter (type
// String, overwrite). The physical resource id is the parameter path, so a
// changed path is a replacement: CloudFormation deletes the old parameter
// once the update has succeeded. Delete deletes the parameter; a parameter
// that is already gone is success. Fn::GetAtt gives ParameterName,
// ParameterArn, Version, KeyIds and JwksUrl.
//
// The function publishes only the pool its environment names
// (COGNITO_USER_POOL_ID, COGNITO_USER_POOL_REGION, set by template.yaml):
// Create and Update events for another pool are answered FAILED. It
// answers only https ResponseURLs on *.amazonaws.com or *.amazonaws.com.cn
// (CloudFormation's pre-signed S3 URLs); an event with any other
// ResponseURL is not acted on.
//
// The function always answers CloudFormation (SUCCESS, or FAILED with a
// reason), before its own deadline, even after a panic.
//
// Build for the provided.al2023 runtime:
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc \
//	    -o cmd/jwks-ssm-resource/build/bootstrap ./cmd/jwks-ssm-resource
//
// and deploy template.yaml (see README.md next to it).
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/caddy-cognito/caddy-cognito/authz/jwks/ssmsource"
)

func main() {
	lambda.Start(newHandler().Handle)
}

// newHandler builds the SSM client from the function's environment (region
// and role credentials). A failure is kept in InitErr and reported to
// CloudFormation on every request, never left unanswered.
func newHandler() *Handler {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, poolRegion := os.Getenv(EnvPoolID), os.Getenv(EnvPoolRegion)
	client, region, err := ssmsource.NewClient(ctx, ssmsource.ClientConfig{RetryThrottling: true})
	if err != nil {
		return &Handler{InitErr: err}
	}
	return &Handler{SSM: client, Region: region, PoolID: pool, PoolRegion: poolRegion}
}
