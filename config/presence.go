package config

import "time"

// Presence configures presence (client-server API "Presence").
type Presence struct {
	// Enabled tracks and shows presence; off, every user reads offline.
	Enabled bool `yaml:"enabled"`
	// IdleTimeout turns an online user unavailable after no activity.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// OfflineTimeout turns a user offline this long after their last sync
	// connection ended.
	OfflineTimeout time.Duration `yaml:"offline_timeout"`
}

// DefaultPresence is presence on, unavailable after 5 minutes idle,
// offline 30 seconds after the last sync.
func DefaultPresence() Presence {
	return Presence{Enabled: true, IdleTimeout: 5 * time.Minute, OfflineTimeout: 30 * time.Second}
}

// validate adds the presence section's problems.
func (p *Presence) validate(add func(format string, args ...any)) {
	if p.IdleTimeout <= 0 {
		add("presence.idle_timeout: must be positive")
	}
	if p.OfflineTimeout <= 0 {
		add("presence.offline_timeout: must be positive")
	}
}
