package config

import (
	"fmt"
	"net"
	"strings"

	"github.com/parleyhq/parley/id"
)

// ValidationError lists every problem of a configuration.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	return "invalid configuration:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// Validate checks the whole configuration and reports every problem at
// once, so that an operator fixes them in one go.
func (c *Config) Validate() error {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	if _, err := id.ParseServerName(string(c.ServerName)); err != nil {
		add("server_name: %v", err)
	}
	if c.DataDir == "" {
		add("data_dir: must not be empty")
	}
	if c.Database.MaxConns < 1 {
		add("database.max_conns: must be at least 1, got %d", c.Database.MaxConns)
	}
	if c.Database.ManagedPort < 0 || c.Database.ManagedPort > 65535 {
		add("database.managed_port: not a port: %d", c.Database.ManagedPort)
	}
	checkAddr := func(key, addr string, required bool) {
		if addr == "" {
			if required {
				add("%s: must not be empty", key)
			}
			return
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			add("%s: not a host:port address: %q", key, addr)
		}
	}
	checkAddr("listen.client", c.Listen.Client, true)
	checkAddr("listen.federation", c.Listen.Federation, false)
	checkAddr("listen.metrics", c.Listen.Metrics, false)
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		add("tls.cert and tls.key: set both or neither (neither generates a self-signed certificate)")
	}
	switch c.Registration.Mode {
	case RegistrationOpen, RegistrationToken, RegistrationClosed:
	default:
		add("registration.mode: must be open, token or closed, got %q", c.Registration.Mode)
	}
	if c.Client.MaxBodyBytes < 1024 {
		add("client.max_body_bytes: must be at least 1024, got %d", c.Client.MaxBodyBytes)
	}
	if c.Client.ShutdownTimeout <= 0 {
		add("client.shutdown_timeout: must be positive")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level: must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		add("log.format: must be text or json, got %q", c.Log.Format)
	}
	c.Media.validate(add)
	c.Presence.validate(add)
	c.E2EE.validate(add)
	c.Auth.validate(add)
	c.Federation.validate(add)
	c.Runtime.validate(add)
	if len(p) > 0 {
		return &ValidationError{Problems: p}
	}
	return nil
}
