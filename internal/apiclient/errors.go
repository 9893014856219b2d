package apiclient

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Sentinel errors an *APIError matches with errors.Is, by HTTP status.
var (
	// ErrNotFound matches a 404 answer.
	ErrNotFound = errors.New("resource not found")
	// ErrConflict matches a 409 answer.
	ErrConflict = errors.New("conflict")
	// ErrBadRequest matches a 400 answer (validation errors among others).
	ErrBadRequest = errors.New("bad request")
	// ErrUnauthenticated matches a 401 answer: no token, or a bad one.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden matches a 403 answer: the token's user is not allowed.
	ErrForbidden = errors.New("forbidden")
)

// InvalidParameter is one violation in a std-errors answer: the field path
// (e.g. "spec.to[0].default.connectionTimeout") and what is wrong with it.
type InvalidParameter struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// APIError is a non-2xx answer from the control plane, decoded from Kuma's
// std-errors JSON (or synthesised from the status when the body is not JSON).
type APIError struct {
	// Method and URL name the request that failed.
	Method string `json:"-"`
	URL    string `json:"-"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Type is the std-errors type, usually "/std-errors".
	Type string `json:"type"`
	// Title is the short summary, e.g. "Invalid request".
	Title string `json:"title"`
	// Detail explains the error, e.g. "Resource is not valid".
	Detail string `json:"detail"`
	// InvalidParameters lists field violations, in the server's order.
	InvalidParameters []InvalidParameter `json:"invalid_parameters,omitempty"`
}

// Error renders the error as kumactl does: "Title (Detail)" followed by one
// "* field: reason" line per invalid parameter.
func (e *APIError) Error() string {
	var b strings.Builder
	title := e.Title
	if title == "" {
		title = http.StatusText(e.Status)
	}
	if title == "" {
		title = fmt.Sprintf("HTTP %d", e.Status)
	}
	b.WriteString(title)
	if e.Detail != "" && e.Detail != title {
		fmt.Fprintf(&b, " (%s)", e.Detail)
	}
	for _, p := range e.InvalidParameters {
		b.WriteString("\n* ")
		if p.Field != "" {
			b.WriteString(p.Field)
			b.WriteString(": ")
		}
		b.WriteString(p.Reason)
	}
	return b.String()
}

// Is lets errors.Is match an *APIError against ErrNotFound, ErrConflict,
// ErrBadRequest, ErrUnauthenticated and ErrForbidden by status.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrBadRequest:
		return e.Status == http.StatusBadRequest
	case ErrUnauthenticated:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	}
	return false
}

// TransportError is a request that got no HTTP answer at all: the control
// plane is down, the address is wrong, the connection was reset, or ctx ended.
type TransportError struct {
	Method string
	URL    string
	Err    error
}

// Error names the request and the cause.
func (e *TransportError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Method, e.URL, e.Err)
}

// Unwrap returns the underlying network error, so errors.Is(err,
// syscall.ECONNREFUSED) and errors.Is(err, context.DeadlineExceeded) work.
func (e *TransportError) Unwrap() error { return e.Err }
