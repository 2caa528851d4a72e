package clientapi

import "time"

// SetWebSocketAuthTimeout shortens the wait for the auth frame of the
// servers started afterwards, for tests; restore puts it back.
func SetWebSocketAuthTimeout(d time.Duration) (restore func()) {
	old := wsDefaults.authTimeout
	wsDefaults.authTimeout = d
	return func() { wsDefaults.authTimeout = old }
}

// SetWebSocketPing sets the keep-alive of the servers started afterwards,
// for tests; restore puts it back.
func SetWebSocketPing(interval, timeout time.Duration) (restore func()) {
	oldInterval, oldTimeout := wsDefaults.pingInterval, wsDefaults.pingTimeout
	wsDefaults.pingInterval, wsDefaults.pingTimeout = interval, timeout
	return func() { wsDefaults.pingInterval, wsDefaults.pingTimeout = oldInterval, oldTimeout }
}
