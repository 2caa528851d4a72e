package sso

import (
	"fmt"
	"strconv"
	"strings"
	"text/template"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parleyhq/parley/config"
)

// mapping turns an ID token's claims into a subject, a localpart and a
// display name with the provider's templates.
type mapping struct {
	subjectClaim string
	localpart    *template.Template
	displayName  *template.Template
	required     [][2]string // claim → value every token must carry
}

// allowed reports whether claims meet every requirement: the claim equals
// the value (strings, and booleans and numbers by their JSON spelling) or,
// as a list, contains it.
func (m *mapping) allowed(claims jwt.MapClaims) bool {
	for _, req := range m.required {
		if !claimHas(claims[req[0]], req[1]) {
			return false
		}
	}
	return true
}

func claimHas(v any, want string) bool {
	switch v := v.(type) {
	case string:
		return v == want
	case bool:
		return strconv.FormatBool(v) == want
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64) == want
	case []any:
		for _, item := range v {
			if claimHas(item, want) {
				return true
			}
		}
	}
	return false
}

func newMapping(subjectClaim, localpart, displayName string) (*mapping, error) {
	lp, err := template.New("localpart").Funcs(config.ClaimTemplateFuncs).Option("missingkey=error").Parse(localpart)
	if err != nil {
		return nil, fmt.Errorf("localpart_template: %w", err)
	}
	dn, err := template.New("display_name").Funcs(config.ClaimTemplateFuncs).Option("missingkey=error").Parse(displayName)
	if err != nil {
		return nil, fmt.Errorf("display_name_template: %w", err)
	}
	return &mapping{subjectClaim: subjectClaim, localpart: lp, displayName: dn}, nil
}

// apply returns the identity's subject at the provider, the localpart
// asked for (not yet checked for collisions) and the display name. A
// template that names a claim the token lacks yields "": the localpart then
// falls back to the subject, the display name to the localpart.
func (m *mapping) apply(claims jwt.MapClaims) (subject, localpart, displayName string, ok bool) {
	switch v := claims[m.subjectClaim].(type) {
	case string:
		subject = v
	case float64:
		subject = strconv.FormatFloat(v, 'f', -1, 64)
	}
	if subject == "" {
		return "", "", "", false
	}
	localpart = MapLocalpart(execute(m.localpart, claims))
	if localpart == "" {
		localpart = MapLocalpart(subject)
	}
	return subject, localpart, execute(m.displayName, claims), true
}

func execute(t *template.Template, claims jwt.MapClaims) string {
	var sb strings.Builder
	if err := t.Execute(&sb, map[string]any(claims)); err != nil {
		return ""
	}
	return strings.TrimSpace(sb.String())
}

// MapLocalpart maps a name from the identity provider onto the user id
// grammar, as the spec's appendix "Mapping from other character sets"
// suggests: A-Z become lower-case, a-z 0-9 . _ - / + stay, every other
// byte of the UTF-8 encoding (and "=") becomes =xx. The mapping is not
// bijective (Alice and alice meet); collisions are resolved by the caller.
func MapLocalpart(s string) string {
	var sb strings.Builder
	for _, b := range []byte(s) {
		switch {
		case b >= 'A' && b <= 'Z':
			sb.WriteByte(b + 'a' - 'A')
		case b >= 'a' && b <= 'z', b >= '0' && b <= '9', strings.IndexByte("._-/+", b) >= 0:
			sb.WriteByte(b)
		default:
			fmt.Fprintf(&sb, "=%02x", b)
		}
	}
	return sb.String()
}
