package caddymodule

import (
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// A denial handed to the server's error routes (handle_errors) runs them
// with the original request: its method, headers and unread body. If one
// of them can proxy — reverse_proxy, php_fastcgi and forward_auth are all
// reverse_proxy — a denied request would reach a backend after all. So the
// handler hands denials over only to error routes that cannot proxy, and
// answers the others itself.
//
// Which server a handler runs in is only known at request time
// (caddyhttp.ServerCtxKey): a Caddyfile site's handlers are provisioned
// before its server's error routes, and the same handler could serve more
// than one server. The answer is computed once per server and kept on the
// handler, which a config reload replaces together with the servers.

// errorRoutesSafe reports whether denials may be handed to srv's error
// routes: there are some, and none of them (nor any subroute's own error
// routes, nor a named route they invoke) contains a handler that can
// forward the request.
func (h *Handler) errorRoutesSafe(srv *caddyhttp.Server) bool {
	if srv.Errors == nil || len(srv.Errors.Routes) == 0 {
		return false
	}
	if h.errRoutes == nil { // not provisioned (benchmarks): no cache, no warning
		return errorRouteProxy(srv) == ""
	}
	if v, ok := h.errRoutes.Load(srv); ok {
		return v.(bool)
	}
	proxy := errorRouteProxy(srv)
	if _, loaded := h.errRoutes.LoadOrStore(srv, proxy == ""); !loaded && proxy != "" {
		h.logger.Warn("handle_errors of this server can proxy the request ("+proxy+"): cognito_auth answers its denials itself, "+
			"so that a denied request never reaches a backend; to restyle denials, use handle_errors routes without reverse_proxy, php_fastcgi or forward_auth",
			zap.String("handler", proxy))
	}
	return proxy == ""
}

// maxRouteDepth bounds the walk through subroutes and invoked named
// routes (which may invoke each other).
const maxRouteDepth = 16

// errorRouteProxy returns the module id of a proxying handler that a
// denial could reach through srv's error routes, or "".
func errorRouteProxy(srv *caddyhttp.Server) string {
	if p := routesProxy(srv, srv.Errors.Routes, 0); p != "" {
		return p
	}
	// A subroute's own error routes take an error before the server's.
	return subrouteErrorsProxy(srv, srv.Routes, 0)
}

func routesProxy(srv *caddyhttp.Server, routes caddyhttp.RouteList, depth int) string {
	if depth > maxRouteDepth {
		return "routes nested too deep to inspect"
	}
	for _, rt := range routes {
		for _, hd := range rt.Handlers {
			if p := handlerProxy(srv, hd, depth); p != "" {
				return p
			}
		}
	}
	return ""
}

// handlerProxy returns the module id of hd if it can forward the request
// (any module whose name says proxy: reverse_proxy and third-party
// proxies), or of such a handler inside it; else "".
func handlerProxy(srv *caddyhttp.Server, hd caddyhttp.MiddlewareHandler, depth int) string {
	switch v := hd.(type) {
	case *caddyhttp.Subroute:
		if p := routesProxy(srv, v.Routes, depth+1); p != "" {
			return p
		}
		if v.Errors != nil {
			return routesProxy(srv, v.Errors.Routes, depth+1)
		}
		return ""
	case *caddyhttp.Invoke:
		if rt, ok := srv.NamedRoutes[v.Name]; ok && rt != nil {
			return routesProxy(srv, caddyhttp.RouteList{*rt}, depth+1)
		}
		return ""
	}
	if m, ok := hd.(caddy.Module); ok {
		if id := string(m.CaddyModule().ID); strings.Contains(id, "proxy") {
			return id
		}
	}
	return ""
}

// subrouteErrorsProxy looks for subroutes with their own error routes in
// routes and returns a proxying handler among those error routes.
func subrouteErrorsProxy(srv *caddyhttp.Server, routes caddyhttp.RouteList, depth int) string {
	if depth > maxRouteDepth {
		return ""
	}
	for _, rt := range routes {
		for _, hd := range rt.Handlers {
			sr, ok := hd.(*caddyhttp.Subroute)
			if !ok {
				continue
			}
			if sr.Errors != nil {
				if p := routesProxy(srv, sr.Errors.Routes, depth+1); p != "" {
					return p
				}
			}
			if p := subrouteErrorsProxy(srv, sr.Routes, depth+1); p != "" {
				return p
			}
		}
	}
	return ""
}
