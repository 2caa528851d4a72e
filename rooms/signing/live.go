package signing

import "sync/atomic"

// Live is a server's signing key that can be replaced while the server
// runs (a rotation): the Key it hands out is a value every holder keeps
// (the rooms service, the federation client, the keyring), and each use
// of it signs with, and names, the key Live holds at that moment.
type Live struct {
	cur atomic.Pointer[Key]
}

// NewLive starts a Live with k.
func NewLive(k Key) *Live {
	l := &Live{}
	l.Set(k)
	return l
}

// Key is the Key that follows l.
func (l *Live) Key() Key { return Key{live: l} }

// Set makes k the key from now on.
func (l *Live) Set(k Key) {
	k = k.Current()
	l.cur.Store(&k)
}

// Live is the Live k follows, nil for a fixed key.
func (k Key) Live() *Live { return k.live }
