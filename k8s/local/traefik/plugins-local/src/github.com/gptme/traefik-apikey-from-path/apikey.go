// Package traefik_apikey_from_path is a Traefik middleware plugin (run by Yaegi from source)
// that turns the public path /api/v1/{apiKey}/rest into /rest with the key in a header.
// Built-in middlewares cannot copy a path segment into a header; this one does, and it
// always discards a header of that name sent by the client, so the key comes from the path
// or not at all.
package traefik_apikey_from_path

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Config is the middleware's configuration.
type Config struct {
	// Header receives the key (default X-API-Key).
	Header string `json:"header,omitempty"`
	// Prefix is the part of the path before the key (default /api/v1/).
	Prefix string `json:"prefix,omitempty"`
}

// CreateConfig returns the default configuration.
func CreateConfig() *Config {
	return &Config{Header: "X-API-Key", Prefix: "/api/v1/"}
}

// APIKeyFromPath is the middleware.
type APIKeyFromPath struct {
	next   http.Handler
	header string
	prefix string
}

// New creates the middleware.
func New(_ context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	if config.Header == "" || !strings.HasPrefix(config.Prefix, "/") || !strings.HasSuffix(config.Prefix, "/") {
		return nil, fmt.Errorf("%s: header must be set and prefix must start and end with /", name)
	}
	return &APIKeyFromPath{next: next, header: config.Header, prefix: config.Prefix}, nil
}

func (a *APIKeyFromPath) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	// Never trust a client-supplied key header.
	req.Header.Del(a.header)

	// The escaped path keeps an encoded "/" (%2F) inside the key instead of splitting on it.
	path := req.URL.EscapedPath()
	if strings.HasPrefix(path, a.prefix) {
		rest := path[len(a.prefix):]
		if end := strings.Index(rest, "/"); end > 0 {
			if key, err := url.PathUnescape(rest[:end]); err == nil {
				req.Header.Set(a.header, key)
				a.setPath(req, rest[end:])
			}
		}
	}
	a.next.ServeHTTP(rw, req)
}

// setPath replaces the request's path, so the key travels no further than this middleware.
func (a *APIKeyFromPath) setPath(req *http.Request, escaped string) {
	decoded, err := url.PathUnescape(escaped)
	if err != nil {
		return
	}
	req.URL.Path = decoded
	req.URL.RawPath = ""
	if decoded != escaped {
		req.URL.RawPath = escaped
	}
	req.RequestURI = req.URL.RequestURI()
}
