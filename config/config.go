// Package config is Parley's configuration: one typed struct, loaded from a
// YAML file, then overridden by PARLEY_* environment variables, then
// validated as a whole. It imports no edge, no storage and no driver.
package config

import (
	"time"

	"github.com/parleyhq/parley/id"
)

// Config is the whole configuration. Every field has a yaml key; the
// environment variable overriding it is PARLEY_ + the key path in upper
// snake case (listen.client → PARLEY_LISTEN_CLIENT).
type Config struct {
	ServerName id.ServerName `yaml:"server_name"`
	DataDir    string        `yaml:"data_dir"`

	Database     Database     `yaml:"database"`
	Listen       Listen       `yaml:"listen"`
	TLS          TLS          `yaml:"tls"`
	WellKnown    WellKnown    `yaml:"well_known"`
	Client       Client       `yaml:"client"`
	Registration Registration `yaml:"registration"`
	RateLimits   RateLimits   `yaml:"rate_limits"`
	Log          Log          `yaml:"log"`
	Media        Media        `yaml:"media"`
	Presence     Presence     `yaml:"presence"`
	E2EE         E2EE         `yaml:"e2ee"`
	Auth         Auth         `yaml:"auth"`
	Federation   Federation   `yaml:"federation"`

	// UserDirectory tunes POST /user_directory/search.
	UserDirectory UserDirectory `yaml:"user_directory"`

	Runtime Runtime `yaml:"runtime"`
}

// Database says where Postgres is.
type Database struct {
	// URL is a libpq/pgx connection string; empty means Parley runs a
	// managed PostgreSQL of its own under data_dir.
	URL string `yaml:"url"`
	// MaxConns bounds the connection pool.
	MaxConns int `yaml:"max_conns"`
	// ManagedPort is the port of the managed PostgreSQL (loopback only).
	ManagedPort int `yaml:"managed_port"`
}

// Listen holds the listening addresses.
type Listen struct {
	Client     string `yaml:"client"`     // plain HTTP Client-Server API
	Federation string `yaml:"federation"` // TLS Server-Server API; empty disables it
	Metrics    string `yaml:"metrics"`    // Prometheus /metrics; empty disables it
}

// TLS holds the certificate of the federation listener.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// WellKnown is what /.well-known/matrix/{client,server} announce.
type WellKnown struct {
	// ClientBaseURL is m.homeserver.base_url; empty derives it from
	// listen.client.
	ClientBaseURL string `yaml:"client_base_url"`
	// Server is m.server (delegation target, host:port); empty means
	// /.well-known/matrix/server answers 404.
	Server string `yaml:"server"`
}

// Client tunes the Client-Server API edge.
type Client struct {
	// MaxBodyBytes bounds a JSON request body (M_TOO_LARGE beyond).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ShutdownTimeout is how long in-flight requests get on SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// Registration says who may create accounts.
type Registration struct {
	Mode         string `yaml:"mode"`          // open | token | closed
	SharedSecret string `yaml:"shared_secret"` // enables /_synapse/admin/v1/register
	AllowGuests  bool   `yaml:"allow_guests"`
}

// Registration modes.
const (
	RegistrationOpen   = "open"
	RegistrationToken  = "token"
	RegistrationClosed = "closed"
)

// RateLimits switches rate limiting of login and registration.
type RateLimits struct {
	Enabled bool `yaml:"enabled"`
}

// UserDirectory tunes the user directory search.
type UserDirectory struct {
	// SearchAllUsers searches every local user, not only those who share
	// a room with the searcher or are in a public room.
	SearchAllUsers bool `yaml:"search_all_users"`
}

// Log configures log/slog.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
}

// Defaults returns the configuration used for every key that the file and
// the environment leave unset. It is what config.yaml documents.
func Defaults() Config {
	return Config{
		ServerName: "localhost",
		DataDir:    "data",
		Database:   Database{MaxConns: 20, ManagedPort: 0},
		Listen: Listen{
			Client:     "127.0.0.1:8008",
			Federation: "0.0.0.0:8448",
			Metrics:    "127.0.0.1:9108",
		},
		Client: Client{
			MaxBodyBytes:    1 << 20,
			ShutdownTimeout: 10 * time.Second,
		},
		Registration: Registration{Mode: RegistrationOpen},
		RateLimits:   RateLimits{Enabled: true},
		Log:          Log{Level: "info", Format: "text"},
		Media:        DefaultMedia(),
		Presence:     DefaultPresence(),
		E2EE:         DefaultE2EE(),
		Auth:         DefaultAuth(),
		Federation:   DefaultFederation(),
		Runtime:      DefaultRuntime(),
	}
}
