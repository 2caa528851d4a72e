package roomversion

import "testing"

// The flags follow the spec's room version pages (content/rooms/v1.md …
// v12.md); each row is what a version introduced.
func TestVersionsIntroduceTheirFeatures(t *testing.T) {
	first := func(pred func(Version) bool) ID {
		for _, v := range All() {
			if pred(v) {
				return v.ID
			}
		}
		return ""
	}
	cases := []struct {
		feature string
		want    ID
		pred    func(Version) bool
	}{
		{"state resolution v2", "2", func(v Version) bool { return v.StateRes == StateResV2 }},
		{"hash event ids", "3", func(v Version) bool { return v.EventFormat == FormatV3 }},
		{"url-safe event ids", "4", func(v Version) bool { return v.EventFormat == FormatV4 }},
		{"signing key validity", "5", func(v Version) bool { return v.EnforceKeyValidity }},
		{"strict canonical JSON", "6", func(v Version) bool { return v.StrictCanonicalJSON }},
		{"no m.room.aliases rule", "6", func(v Version) bool { return !v.SpecialCaseAliases }},
		{"knocking", "7", func(v Version) bool { return v.Knocking }},
		{"restricted joins", "8", func(v Version) bool { return v.RestrictedJoins }},
		{"v9 redaction", "9", func(v Version) bool { return v.Redaction == RedactionV9 }},
		{"integer power levels", "10", func(v Version) bool { return v.IntegerPowerLevels }},
		{"knock_restricted", "10", func(v Version) bool { return v.KnockRestricted }},
		{"v11 semantics", "11", func(v Version) bool { return v.V11Semantics }},
		{"room id from the create event", "12", func(v Version) bool { return v.CreateEventDefinesRoomID }},
		{"state resolution v2.1", "12", func(v Version) bool { return v.StateRes == StateResV2_1 }},
	}
	for _, c := range cases {
		if got := first(c.pred); got != c.want {
			t.Errorf("%s first in version %q, want %q", c.feature, got, c.want)
		}
	}
}

func TestFeaturesAreNeverDropped(t *testing.T) {
	all := All()
	for i := 1; i < len(all); i++ {
		prev, cur := all[i-1], all[i]
		for name, pair := range map[string][2]bool{
			"EnforceKeyValidity":  {prev.EnforceKeyValidity, cur.EnforceKeyValidity},
			"StrictCanonicalJSON": {prev.StrictCanonicalJSON, cur.StrictCanonicalJSON},
			"Knocking":            {prev.Knocking, cur.Knocking},
			"RestrictedJoins":     {prev.RestrictedJoins, cur.RestrictedJoins},
			"IntegerPowerLevels":  {prev.IntegerPowerLevels, cur.IntegerPowerLevels},
			"V11Semantics":        {prev.V11Semantics, cur.V11Semantics},
		} {
			if pair[0] && !pair[1] {
				t.Errorf("version %s drops %s that %s had", cur.ID, name, prev.ID)
			}
		}
	}
}

func TestLookup(t *testing.T) {
	if v, ok := Lookup(Default); !ok || !v.Stable {
		t.Errorf("the default version %s is not a known stable version", Default)
	}
	if _, ok := Lookup("13"); ok {
		t.Error("an unknown version was found")
	}
	if len(All()) != 12 {
		t.Errorf("%d versions, want 12", len(All()))
	}
}
