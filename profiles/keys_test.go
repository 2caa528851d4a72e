package profiles

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/parleyhq/parley/mxerr"
)

func TestCheckKey(t *testing.T) {
	tests := []struct {
		key  string
		want error // nil: valid
	}{
		{"displayname", nil},
		{"avatar_url", nil},
		{"m.tz", nil},
		{"com.example.field", nil},
		{"org.x-y.a_b2", nil},
		{"field", mxerr.InvalidParam},
		{"", mxerr.InvalidParam},
		{"Com.example", mxerr.InvalidParam},
		{"1com.example", mxerr.InvalidParam},
		{"com.exa mple", mxerr.InvalidParam},
		{"m.other", mxerr.InvalidParam},
		{"com." + strings.Repeat("a", 252), mxerr.KeyTooLarge},
		{"com." + strings.Repeat("a", 251), nil},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			err := CheckKey(tc.key)
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("CheckKey(%q) = %v, want %v", tc.key, err, tc.want)
			}
		})
	}
}

func TestCheckValue(t *testing.T) {
	tests := []struct {
		name      string
		key       string
		value     string
		wantClear bool
		want      error
	}{
		{"display name string", KeyDisplayName, `"Alice"`, false, nil},
		{"empty display name clears", KeyDisplayName, `""`, true, nil},
		{"display name number", KeyDisplayName, `1`, false, mxerr.BadJSON},
		{"display name null", KeyDisplayName, `null`, false, mxerr.BadJSON},
		{"mxc avatar", KeyAvatarURL, `"mxc://hs/abc"`, false, nil},
		{"http avatar", KeyAvatarURL, `"https://hs/abc"`, false, mxerr.InvalidParam},
		{"time zone", KeyTimeZone, `"Europe/Paris"`, false, nil},
		{"custom object", "com.example.x", `{"a":[1,2]}`, false, nil},
		{"custom null", "com.example.x", `null`, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clear, err := checkValue(tc.key, json.RawMessage(tc.value))
			if clear != tc.wantClear || (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("checkValue(%s, %s) = %v, %v", tc.key, tc.value, clear, err)
			}
		})
	}
}

func TestSearchWords(t *testing.T) {
	tests := []struct {
		term string
		want []string
	}{
		{"Alice", []string{"alice"}},
		{"@bob:parley.test", []string{"bob", "parley", "test"}},
		{"  Jean-Luc  Picard ", []string{"jean", "luc", "picard"}},
		{"Ünïcode", []string{"ünïcode"}},
		{"!!", nil},
	}
	for _, tc := range tests {
		t.Run(tc.term, func(t *testing.T) {
			if got := SearchWords(tc.term); !slices.Equal(got, tc.want) {
				t.Fatalf("SearchWords(%q) = %q, want %q", tc.term, got, tc.want)
			}
		})
	}
}
