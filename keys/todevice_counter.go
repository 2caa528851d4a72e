package keys

import "github.com/parleyhq/parley/syncer"

var _ syncer.CounterSource = ToDeviceSource{}

// CounterName implements syncer.CounterSource: the to-device stream's
// position is its row of stream_counters, read with the other streams'
// positions in one statement.
func (ToDeviceSource) CounterName() string { return "to_device" }
