package apiserver

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/trellis-mesh/trellis/api/validate"
	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/store"
)

// stdError is Kuma's std-errors JSON body.
type stdError struct {
	Type              string               `json:"type"`
	Status            int                  `json:"status"`
	Title             string               `json:"title"`
	Detail            string               `json:"detail"`
	InvalidParameters []validate.Violation `json:"invalid_parameters,omitempty"`
}

func writeError(w http.ResponseWriter, status int, title, detail string, params ...validate.Violation) {
	writeJSON(w, status, stdError{Type: "/std-errors", Status: status, Title: title, Detail: detail, InvalidParameters: params})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		slog.Error("encoding API response", "err", err)
		http.Error(w, `{"type":"/std-errors","status":500,"title":"Internal Server Error","detail":"encoding the response failed"}`, http.StatusInternalServerError)
		return
	}
	writeBody(w, status, body)
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// writeErr maps an error from the codec, manager or store to a response.
func writeErr(w http.ResponseWriter, err error) {
	var ve *validate.Error
	switch {
	case errors.As(err, &ve):
		writeError(w, http.StatusBadRequest, "Invalid request", "Resource is not valid", ve.Violations...)
	case errors.Is(err, resource.ErrMalformed):
		writeError(w, http.StatusBadRequest, "Invalid request", err.Error())
	case errors.Is(err, resource.ErrNotSupported):
		writeError(w, http.StatusBadRequest, "Resource type not supported", err.Error())
	case errors.Is(err, resource.ErrUnknownKind):
		writeError(w, http.StatusBadRequest, "Unknown resource type", err.Error())
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "Could not find resource", err.Error())
	case errors.Is(err, store.ErrMeshNotFound):
		writeError(w, http.StatusBadRequest, "Invalid request", "Resource is not valid",
			validate.Violation{Field: "mesh", Reason: "mesh does not exist: " + err.Error()})
	case errors.Is(err, store.ErrAlreadyExists), errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, "Conflict", err.Error())
	default:
		slog.Error("API request failed", "err", err)
		writeError(w, http.StatusInternalServerError, "Internal Server Error", "the control plane could not complete the request; see its log")
	}
}
