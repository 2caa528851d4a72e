package app

import (
	"github.com/parleyhq/parley/federation"
	"github.com/parleyhq/parley/federation/fedclient"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/keys"
	"github.com/parleyhq/parley/media"
	"github.com/parleyhq/parley/profiles"
	"github.com/parleyhq/parley/rooms"
)

// wireRemoteReads lets the domain services read other servers through
// the federation client: remote profiles, room directories and aliases,
// media and E2EE keys (issue #7).
func wireRemoteReads(client *fedclient.Client, server id.ServerName, rs *rooms.Service, ps *profiles.Service, ms *media.Service, ks *keys.Service) {
	r := federation.RemoteReads{Client: client}
	rs.SetRemoteDirectory(r)
	// /messages backfills the history of rooms joined over federation,
	// placed by depth (rooms/topological.go) and shown as its history
	// visibility allows.
	rs.SetBackfill(r)
	ps.SetRemote(server, r)
	if ms != nil {
		ms.SetRemote(r)
	}
	if ks != nil {
		ks.SetRemoteKeys(r)
	}
}

// serveDeps are the services behind the federation read endpoints.
func serveDeps(rs *rooms.Service, ps *profiles.Service, ms *media.Service, ks *keys.Service) federation.ServeDeps {
	d := federation.ServeDeps{Graph: rs, Directory: rs, Profiles: ps}
	if ms != nil {
		d.Media = ms
	}
	if ks != nil {
		d.Devices = ks
	}
	return d
}
