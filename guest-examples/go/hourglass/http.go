package hourglass

// Outbound HTTP through Extism's kernel imports (http_request, http_status_code, http_headers
// in extism:host/env), over go-pdk's pdk.NewHTTPRequest(...).Send(). What the host allows
// (hosts, methods, sizes, timeouts) is in docs/guest-abi.md.
//
// go-pdk v1.1.3 sends {"url","method","headers":{…}} (HTTPRequestMeta; headers is always an
// object), sends a body only when it is non-empty, and reads the headers as a JSON object of
// string values. A failed request has status 0 and the body {"error":{"code","message"}}.

import (
	"encoding/json"
	"fmt"

	"github.com/extism/go-pdk"
)

// HTTPResponse is an answer, or the host's account of why there is none (Status 0).
type HTTPResponse struct {
	Status  int
	Body    []byte
	Headers map[string]string // lowercased names
}

// HTTPError is the host's {"error":{"code","message"}} for a request that got no answer.
type HTTPError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *HTTPError) Error() string { return "http: " + e.Code + ": " + e.Message }

// OK reports a 2xx status.
func (r *HTTPResponse) OK() bool { return r.Status >= 200 && r.Status < 300 }

// Err is nil for a 2xx answer; otherwise the error a run should fail with: an *HTTPError
// ("http: <code>: <message>") when there was no answer, or "http: status <n>".
func (r *HTTPResponse) Err() error {
	if r.Status == 0 {
		var f struct{ Error *HTTPError }
		if json.Unmarshal(r.Body, &f) == nil && f.Error != nil && f.Error.Code != "" {
			return f.Error
		}
		return &HTTPError{Code: "no_response",
			Message: "the host sent no response (is outbound HTTP enabled for this plugin?)"}
	}
	if !r.OK() {
		return fmt.Errorf("http: status %d", r.Status)
	}
	return nil
}

// HTTPSend sends one request (body nil: none) with the given headers.
func HTTPSend(method pdk.HTTPMethod, url string, headers map[string]string, body []byte) *HTTPResponse {
	req := pdk.NewHTTPRequest(method, url)
	for k, v := range headers {
		req.SetHeader(k, v)
	}
	if body != nil {
		req.SetBody(body)
	}
	res := req.Send()
	out := &HTTPResponse{Status: int(res.Status()), Body: res.Body(), Headers: res.Headers()}
	if mem := res.Memory(); mem.Offset() != 0 {
		mem.Free()
	}
	return out
}

// HTTPGet GETs url.
func HTTPGet(url string, headers map[string]string) *HTTPResponse {
	return HTTPSend(pdk.MethodGet, url, headers, nil)
}

// HTTPPost POSTs body to url.
func HTTPPost(url string, headers map[string]string, body []byte) *HTTPResponse {
	return HTTPSend(pdk.MethodPost, url, headers, body)
}

// Config returns the config value for key ("" and false when unset; go-pdk cannot tell an
// empty value from an unset one).
func Config(key string) (string, bool) { return pdk.GetConfig(key) }

// GetVar returns Extism variable key (nil when unset or empty).
func GetVar(key string) []byte { return pdk.GetVar(key) }

// SetVar sets Extism variable key; variables are bounded (docs/guest-abi.md): past the limit
// the host ends the call.
func SetVar(key string, value []byte) { pdk.SetVar(key, value) }
