package config

import "time"

// E2EE tunes the end-to-end encryption service (client-server API
// "End-to-End Encryption", "Send-to-Device messaging").
type E2EE struct {
	// ToDeviceRetention is how long a to-device message waits for a
	// device that does not sync; older ones are deleted. A device's
	// deletion deletes its messages at once.
	ToDeviceRetention time.Duration `yaml:"to_device_retention"`
}

// DefaultE2EE keeps undelivered to-device messages 30 days.
func DefaultE2EE() E2EE {
	return E2EE{ToDeviceRetention: 30 * 24 * time.Hour}
}

// validate adds the e2ee section's problems.
func (e *E2EE) validate(add func(format string, args ...any)) {
	if e.ToDeviceRetention <= 0 {
		add("e2ee.to_device_retention: must be positive")
	}
}
