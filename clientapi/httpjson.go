package clientapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/syncer"
)

// decodeJSON reads the request body, at most client.max_body_bytes of it,
// into v. It answers the spec's errcodes: M_TOO_LARGE for an oversize body,
// M_NOT_JSON for a body that is not a JSON object, M_BAD_JSON naming the
// field when a value has the wrong type.
func (a *API) decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	return decodeBody(w, r, a.Config.Client.MaxBodyBytes, v, false)
}

// decodeOptionalJSON is decodeJSON for endpoints whose body may be empty,
// as many clients send none to POST /join or /logout; empty means {}.
func (a *API) decodeOptionalJSON(w http.ResponseWriter, r *http.Request, v any) error {
	return decodeBody(w, r, a.Config.Client.MaxBodyBytes, v, true)
}

func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any, allowEmpty bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return mxerr.TooLarge.Msgf("request body is larger than %d bytes", limit)
		}
		return mxerr.NotJSON.Msg("could not read the request body")
	}
	return DecodeJSONObject(body, v, allowEmpty)
}

// DecodeJSONObject decodes a request body that must be one JSON object into
// v, with the errcodes of decodeJSON. It is exported for the fuzz targets
// and for the WebSocket transport, which decodes the same bodies.
func DecodeJSONObject(body []byte, v any, allowEmpty bool) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		if allowEmpty {
			trimmed = []byte("{}")
		} else {
			return mxerr.NotJSON.Msg("request body is empty; a JSON object is required")
		}
	}
	if trimmed[0] != '{' {
		if json.Valid(trimmed) {
			return mxerr.BadJSON.Msg("request body must be a JSON object")
		}
		return mxerr.NotJSON.Msg("request body is not valid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return mxerr.NotJSON.Msg("request body has data after the JSON object")
	}
	return nil
}

// jsonError turns an encoding/json error into the Matrix error a client
// can act on.
func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		field := typeErr.Field
		if field == "" {
			return mxerr.BadJSON.Msgf("expected %s, got JSON %s", typeName(typeErr), typeErr.Value)
		}
		return mxerr.BadJSON.Msgf("field %q: expected %s, got JSON %s", field, typeName(typeErr), typeErr.Value)
	}
	var fieldErr interface{ BadField() string }
	if errors.As(err, &fieldErr) {
		return mxerr.BadJSON.Msgf("field %q: %v", fieldErr.BadField(), err)
	}
	return mxerr.NotJSON.Msg("request body is not valid JSON")
}

func typeName(e *json.UnmarshalTypeError) string {
	if e.Type == nil {
		return "another type"
	}
	switch k := e.Type.Kind().String(); {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"), strings.HasPrefix(k, "float"):
		return "a number"
	case k == "string":
		return "a string"
	case k == "bool":
		return "a boolean"
	case k == "slice", k == "array":
		return "an array"
	case k == "map", k == "struct":
		return "an object"
	default:
		return fmt.Sprintf("a %s", k)
	}
}

// writeJSON encodes v as the response body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	writeJSONBody(w, status, body, err)
}

// writeSyncAnswer writes a /sync answer, whose MarshalJSON writes
// compact JSON by hand (syncer/response_json.go, tested byte for byte
// against encoding/json): taken as it is, not validated and compacted
// again by json.Marshal, a copy of every answer of a fan-out (issue #9).
func writeSyncAnswer(w http.ResponseWriter, resp *syncer.Response) {
	body, err := resp.MarshalJSON()
	writeJSONBody(w, http.StatusOK, body, err)
}

func writeJSONBody(w http.ResponseWriter, status int, body []byte, err error) {
	if err != nil {
		// Only a programming error (an unencodable type) gets here.
		status = http.StatusInternalServerError
		body = []byte(`{"errcode":"M_UNKNOWN","error":"Internal server error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// emptyObject is the {} body many endpoints answer with.
var emptyObject = struct{}{}
