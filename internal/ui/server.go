//go:build linux

// Package ui serves `dsrlab ui`: a page that draws a running lab as graph
// lays it out and keeps it live, every link's packets and bits per second
// each way, read from the nodes' interface counters, the balancers' VIPs,
// reals and counters, the programs on each node, and a log of what
// changed; with a trace and a capture at a click. Every asset is embedded:
// labs often run without internet.
//
// Security: on loopback, reading needs nothing but a loopback Host (a
// page of another site cannot rebind a name to 127.0.0.1 and read it);
// anywhere else every request needs the token. Actions are POST requests
// that carry the token in a header, which another site's page cannot set
// without a CORS preflight this server never answers, and an Origin, when
// the browser sends one, of this server's own.
package ui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

//go:embed assets
var assets embed.FS

// TokenHeader carries the token on the page's own requests.
const TokenHeader = "X-Dsrlab-Token"

// tokenCookie carries it on the requests the browser makes by itself
// (stylesheet, script, event stream), once a page was opened with it.
const tokenCookie = "dsrlab_token"

// Config is what a server shows and how it is reached.
type Config struct {
	Lab     string
	Engines runtime.Set
	// Listen is the address served; only a loopback one may serve
	// readers without the token.
	Listen string
	// Token is required by actions, and by every request off loopback.
	Token string
	// Interval between two readings of the lab (default one second).
	Interval time.Duration
	// Capture writes a pcap of count packets from node:iface to w, as
	// `dsrlab capture -w -` does, until ctx ends.
	Capture func(ctx context.Context, rts runtime.Set, topo *topology.Topology, node, iface string, count int, w io.Writer) error
}

// Server is one lab's page and its API.
type Server struct {
	cfg      Config
	loopback bool
	w        *watcher
	mux      *http.ServeMux
}

// NewToken returns a random token for a server that listens beyond
// loopback without one given.
func NewToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// New checks cfg and returns its server. A server without a token is
// refused: actions need one on loopback too, and off loopback every request.
func New(cfg Config) (*Server, error) {
	if err := topology.ValidLabName(cfg.Lab); err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %q: want HOST:PORT: %w", cfg.Listen, err)
	}
	s := &Server{cfg: cfg, loopback: isLoopback(host)}
	if cfg.Token == "" {
		return nil, fmt.Errorf("listen %s: a server needs a token (actions always need it, and every request off loopback)", cfg.Listen)
	}
	if cfg.Interval <= 0 {
		s.cfg.Interval = time.Second
	}
	s.w = newWatcher(&s.cfg)
	s.routes()
	return s, nil
}

// URL is the address to open the page at (hostport: where it is
// reached), with the token.
func (s *Server) URL(hostport string) string {
	return fmt.Sprintf("http://%s/?token=%s", hostport, s.cfg.Token)
}

// isLoopback: "localhost", or a loopback IP. An empty host (":7007") is
// every address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Serve watches the lab and serves l until ctx ends.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	go s.w.run(ctx)
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Watch reads the lab every interval until ctx ends, for a caller that
// serves Handler itself (tests).
func (s *Server) Watch(ctx context.Context) { s.w.run(ctx) }

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { s.asset(w, r, "index.html") })
	m.HandleFunc("GET /assets/{name}", func(w http.ResponseWriter, r *http.Request) { s.asset(w, r, r.PathValue("name")) })
	m.HandleFunc("GET /api/scene", s.getScene)
	m.HandleFunc("GET /api/state", s.getState)
	m.HandleFunc("GET /api/events", s.events)
	m.HandleFunc("POST /api/trace", s.action(s.trace))
	m.HandleFunc("POST /api/capture", s.action(s.capture))
	s.mux = m
}

// ServeHTTP checks every request before it reaches a route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// The token travels in the URL: no page this one links to may see it.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	// No path leaves the embedded files: one that is not clean ("..",
	// ".", "//") is refused outright rather than cleaned and redirected.
	if path.Clean(r.URL.Path) != r.URL.Path || strings.Contains(r.URL.RawPath, "..") {
		http.NotFound(w, r)
		return
	}
	if s.loopback && !isLoopback(hostOnly(r.Host)) {
		http.Error(w, "this server answers to a loopback host name only", http.StatusForbidden)
		return
	}
	if !s.loopback && !s.tokenOK(r) {
		http.Error(w, "token required: open the URL dsrlab ui printed", http.StatusUnauthorized)
		return
	}
	// A page opened with the token keeps it for the requests the
	// browser makes by itself.
	if q := r.URL.Query().Get("token"); q != "" && s.equal(q) {
		http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: q, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	}
	s.mux.ServeHTTP(w, r)
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

func (s *Server) equal(tok string) bool {
	return subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.Token)) == 1
}

// tokenOK: the token in the header, the query or the cookie.
func (s *Server) tokenOK(r *http.Request) bool {
	if s.equal(r.Header.Get(TokenHeader)) || s.equal(r.URL.Query().Get("token")) {
		return true
	}
	c, err := r.Cookie(tokenCookie)
	return err == nil && s.equal(c.Value)
}

// action guards a route that acts: the token in the header (a cookie or
// the query is not enough, another site's form could send those), and an
// Origin, if any, of this very server.
func (s *Server) action(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.equal(r.Header.Get(TokenHeader)) {
			http.Error(w, "actions need the token in the "+TokenHeader+" header", http.StatusUnauthorized)
			return
		}
		if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
			return
		}
		h(w, r)
	}
}

// asset serves one embedded file by name; anything else is not found.
func (s *Server) asset(w http.ResponseWriter, r *http.Request, name string) {
	if !fs.ValidPath(name) || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	data, err := assets.ReadFile(path.Join("assets", name))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		w.Header().Set("Content-Type", t)
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(data)
}
