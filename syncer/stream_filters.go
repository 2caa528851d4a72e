package syncer

// Section filters of the non-timeline streams; nil when absent (a nil
// filter matches everything).

// EphemeralFilter is the filter of the rooms' ephemeral sections.
func (f *Filter) EphemeralFilter() *RoomEventFilter {
	if f == nil || f.Room == nil {
		return nil
	}
	return f.Room.Ephemeral
}

// RoomAccountDataFilter is the filter of the rooms' account_data sections.
func (f *Filter) RoomAccountDataFilter() *RoomEventFilter {
	if f == nil || f.Room == nil {
		return nil
	}
	return f.Room.AccountData
}

// AccountDataFilter is the filter of the top-level account_data section.
func (f *Filter) AccountDataFilter() *EventFilter {
	if f == nil {
		return nil
	}
	return f.AccountData
}

// PresenceFilter is the filter of the presence section.
func (f *Filter) PresenceFilter() *EventFilter {
	if f == nil {
		return nil
	}
	return f.Presence
}
