# syntax=docker/dockerfile:1
#
# Caddy with the cognito_auth handler built in.
#
#   docker build -t caddy-cognito .
#   docker run --rm -p 8080:8080 \
#     -e COGNITO_USER_POOL=eu-west-1_AbCdEf123 -e COGNITO_CLIENT_IDS="client-id-1 client-id-2" \
#     -e BACKEND_URL=http://backend:8081 caddy-cognito
#
# The default /etc/caddy/Caddyfile is deploy/Caddyfile.env, configured by
# environment variables (documented there). Mount your own Caddyfile at
# /etc/caddy/Caddyfile to replace it.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/caddy ./cmd/caddy

FROM alpine:3.22
# No root at run time: port 8080, and Caddy's config/data dirs owned by the user.
RUN addgroup -S -g 10001 caddy \
 && adduser -S -D -H -u 10001 -G caddy -h /data caddy \
 && mkdir -p /etc/caddy /config /data \
 && chown 10001:10001 /config /data
COPY --from=build /out/caddy /usr/bin/caddy
COPY deploy/Caddyfile.env /etc/caddy/Caddyfile
ENV XDG_CONFIG_HOME=/config \
    XDG_DATA_HOME=/data \
    HTTP_PORT=8080
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD wget -q -O /dev/null "http://127.0.0.1:${HTTP_PORT}/healthz" || exit 1
ENTRYPOINT ["caddy"]
CMD ["run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
