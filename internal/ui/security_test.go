//go:build linux

package ui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const testToken = "0123456789abcdef0123456789abcdef"

func newServer(t *testing.T, listen string) *Server {
	t.Helper()
	t.Setenv("DSRLAB_STATE_DIR", t.TempDir())
	s, err := New(Config{Lab: "dsr", Listen: listen, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// do sends one request to the handler as a browser at host would.
func do(s *Server, method, target, host string, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(`{}`))
	r.Host = host
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func TestServerWithoutTokenIsRefused(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:7007", ":7007", "192.0.2.1:7007", "127.0.0.1:7007"} {
		if _, err := New(Config{Lab: "dsr", Listen: listen}); err == nil || !strings.Contains(err.Error(), "token") {
			t.Errorf("listen %s without a token: %v, want a refusal naming the token", listen, err)
		}
	}
	if _, err := New(Config{Lab: "../etc", Listen: "127.0.0.1:7007", Token: testToken}); err == nil {
		t.Error("a lab name that is a path was accepted")
	}
	if _, err := New(Config{Lab: "dsr", Listen: "7007", Token: testToken}); err == nil {
		t.Error("a listen address without a host was accepted")
	}
}

func TestLoopbackIsOnlyForLoopbackAddresses(t *testing.T) {
	for listen, want := range map[string]bool{"127.0.0.1:7007": true, "[::1]:7007": true, "localhost:7007": true,
		"0.0.0.0:7007": false, ":7007": false, "[::]:7007": false, "10.0.0.1:7007": false} {
		if got := newServer(t, listen).loopback; got != want {
			t.Errorf("%s: loopback %v, want %v", listen, got, want)
		}
	}
}

// TestOffLoopbackEveryRequestNeedsTheToken: without it, 401 on every
// route; with it in the URL the page gets a cookie for the requests the
// browser makes by itself.
func TestOffLoopbackEveryRequestNeedsTheToken(t *testing.T) {
	s := newServer(t, "0.0.0.0:7007")
	host := "lab.example:7007"
	for _, target := range []string{"/", "/assets/app.js", "/api/state", "/api/events", "/api/scene", "/?token=wrong"} {
		if w := do(s, "GET", target, host, nil); w.Code != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d, want 401", target, w.Code)
		}
	}
	if w := do(s, "GET", "/", host, map[string]string{"Cookie": tokenCookie + "=nope"}); w.Code != http.StatusUnauthorized {
		t.Errorf("a wrong cookie: %d, want 401", w.Code)
	}
	w := do(s, "GET", "/?token="+testToken, host, nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "/assets/app.js") {
		t.Fatalf("GET / with the token: %d", w.Code)
	}
	cookie := w.Result().Cookies()
	if len(cookie) != 1 || cookie[0].Value != testToken || !cookie[0].HttpOnly || cookie[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie %+v: want the token, HttpOnly, SameSite=Strict", cookie)
	}
	if w := do(s, "GET", "/assets/app.js", host, map[string]string{"Cookie": tokenCookie + "=" + testToken}); w.Code != http.StatusOK {
		t.Errorf("asset with the cookie: %d", w.Code)
	}
	if w := do(s, "GET", "/assets/style.css", host, map[string]string{TokenHeader: testToken}); w.Code != http.StatusOK ||
		!strings.HasPrefix(w.Header().Get("Content-Type"), "text/css") {
		t.Errorf("asset with the header: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	if got := w.Header().Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("Referrer-Policy %q: the token in the URL would leak", got)
	}
}

// TestLoopbackReadsNeedALoopbackHost: a page of another site whose name
// was rebound to 127.0.0.1 sends its own name as Host.
func TestLoopbackReadsNeedALoopbackHost(t *testing.T) {
	s := newServer(t, "127.0.0.1:7007")
	for host, want := range map[string]int{"127.0.0.1:7007": 200, "localhost:7007": 200, "[::1]:7007": 200, "evil.example:7007": 403, "evil.example": 403} {
		if w := do(s, "GET", "/", host, nil); w.Code != want {
			t.Errorf("Host %s: %d, want %d", host, w.Code, want)
		}
	}
}

// TestStaticRoutesServeOnlyTheEmbeddedFiles: traversal, encoded or not,
// and names that are not embedded files get 404, never a file of the disk.
func TestStaticRoutesServeOnlyTheEmbeddedFiles(t *testing.T) {
	s := newServer(t, "127.0.0.1:7007")
	for _, target := range []string{
		"/assets/../server.go", "/assets/..%2fserver.go", "/assets/%2e%2e%2fserver.go", "/assets/%2e%2e/server.go",
		"/../../etc/passwd", "/assets/../../../../etc/passwd", "/assets/..%2f..%2f..%2fetc%2fpasswd",
		"/assets/", "/assets/nothing.js", "/server.go", "/index.html/..", "/assets/.", "/assets/%2fetc%2fpasswd",
		"/assets/assets%2fapp.js", "/etc/passwd",
	} {
		w := do(s, "GET", target, "127.0.0.1:7007", nil)
		if w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", target, w.Code)
		}
		if strings.Contains(w.Body.String(), "package ui") || strings.Contains(w.Body.String(), "root:") {
			t.Errorf("GET %s served a file of the disk", target)
		}
	}
	for _, target := range []string{"/", "/assets/app.js", "/assets/style.css", "/assets/index.html"} {
		if w := do(s, "GET", target, "127.0.0.1:7007", nil); w.Code != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", target, w.Code)
		}
	}
}

// TestActionsNeedTheTokenHeaderAndTheSameOrigin: on loopback too; the
// token in a cookie or the URL is not enough (another site's form sends
// those), and another origin is refused.
func TestActionsNeedTheTokenHeaderAndTheSameOrigin(t *testing.T) {
	s := newServer(t, "127.0.0.1:7007")
	host := "127.0.0.1:7007"
	for _, path := range []string{"/api/trace", "/api/capture"} {
		for name, tc := range map[string]struct {
			target string
			header map[string]string
			want   int
		}{
			"nothing":      {path, nil, 401},
			"cookie only":  {path, map[string]string{"Cookie": tokenCookie + "=" + testToken}, 401},
			"query only":   {path + "?token=" + testToken, nil, 401},
			"wrong header": {path, map[string]string{TokenHeader: "x"}, 401},
			"other origin": {path, map[string]string{TokenHeader: testToken, "Origin": "http://evil.example"}, 403},
			// The lab is not up in this test: the action is let through
			// and says so.
			"same origin": {path, map[string]string{TokenHeader: testToken, "Origin": "http://" + host}, 409},
			"no origin":   {path, map[string]string{TokenHeader: testToken}, 409},
		} {
			if w := do(s, "POST", tc.target, host, tc.header); w.Code != tc.want {
				t.Errorf("POST %s, %s: %d, want %d (%s)", path, name, w.Code, tc.want, strings.TrimSpace(w.Body.String()))
			}
		}
		if w := do(s, "GET", path, host, map[string]string{TokenHeader: testToken}); w.Code != http.StatusMethodNotAllowed {
			t.Errorf("GET %s: %d, want 405", path, w.Code)
		}
	}
}
