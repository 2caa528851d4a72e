package storage

import (
	"context"
	"fmt"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
)

const (
	insertAlias = `
INSERT INTO room_aliases (alias, room_id, creator, created_ts) VALUES ($1, $2, $3, $4)`
	selectAlias          = `SELECT room_id, creator FROM room_aliases WHERE alias = $1`
	deleteAlias          = `DELETE FROM room_aliases WHERE alias = $1 RETURNING room_id, creator`
	selectRoomAliases    = `SELECT alias FROM room_aliases WHERE room_id = $1 ORDER BY alias`
	updatePublished      = `UPDATE rooms SET published = $2 WHERE room_id = $1`
	selectPublished      = `SELECT published FROM rooms WHERE room_id = $1`
	selectPublishedRooms = `
SELECT room_id FROM rooms WHERE published AND room_id > $1 ORDER BY room_id LIMIT $2`
)

// CreateAlias implements rooms.AliasStore.
func (r *Rooms) CreateAlias(ctx context.Context, alias id.RoomAlias, room id.RoomID, creator id.UserID) error {
	_, err := r.pool.Exec(ctx, insertAlias, alias, room, creator, nowMS())
	if isUniqueViolation(err) {
		return rooms.ErrAliasExists
	}
	if err != nil {
		return fmt.Errorf("create alias %s: %w", alias, err)
	}
	return nil
}

func (r *Rooms) alias(ctx context.Context, sql string, alias id.RoomAlias) (id.RoomID, id.UserID, error) {
	var room id.RoomID
	var creator id.UserID
	err := r.pool.QueryRow(ctx, sql, alias).Scan(&room, &creator)
	if isNoRows(err) {
		return "", "", rooms.ErrAliasNotFound
	}
	if err != nil {
		return "", "", fmt.Errorf("alias %s: %w", alias, err)
	}
	return room, creator, nil
}

// ResolveAlias implements rooms.AliasStore.
func (r *Rooms) ResolveAlias(ctx context.Context, alias id.RoomAlias) (id.RoomID, error) {
	room, _, err := r.alias(ctx, selectAlias, alias)
	return room, err
}

// AliasCreator implements rooms.AliasStore.
func (r *Rooms) AliasCreator(ctx context.Context, alias id.RoomAlias) (id.UserID, error) {
	_, creator, err := r.alias(ctx, selectAlias, alias)
	return creator, err
}

// DeleteAlias implements rooms.AliasStore.
func (r *Rooms) DeleteAlias(ctx context.Context, alias id.RoomAlias) (id.RoomID, id.UserID, error) {
	return r.alias(ctx, deleteAlias, alias)
}

// RoomAliases implements rooms.AliasStore.
func (r *Rooms) RoomAliases(ctx context.Context, room id.RoomID) ([]id.RoomAlias, error) {
	rows, err := r.pool.Query(ctx, selectRoomAliases, room)
	if err != nil {
		return nil, fmt.Errorf("aliases of %s: %w", room, err)
	}
	defer rows.Close()
	var out []id.RoomAlias
	for rows.Next() {
		var a id.RoomAlias
		if err := rows.Scan(&a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// SetPublished implements rooms.DirectoryStore.
func (r *Rooms) SetPublished(ctx context.Context, room id.RoomID, published bool) error {
	tag, err := r.pool.Exec(ctx, updatePublished, room, published)
	if err != nil {
		return fmt.Errorf("publish %s: %w", room, err)
	}
	if tag.RowsAffected() == 0 {
		return rooms.ErrRoomNotFound
	}
	return nil
}

// Published implements rooms.DirectoryStore.
func (r *Rooms) Published(ctx context.Context, room id.RoomID) (bool, error) {
	var p bool
	err := r.pool.QueryRow(ctx, selectPublished, room).Scan(&p)
	if isNoRows(err) {
		return false, rooms.ErrRoomNotFound
	}
	if err != nil {
		return false, fmt.Errorf("published %s: %w", room, err)
	}
	return p, nil
}

// PublishedRooms implements rooms.DirectoryStore.
func (r *Rooms) PublishedRooms(ctx context.Context, since id.RoomID, limit int) ([]id.RoomID, error) {
	rows, err := r.pool.Query(ctx, selectPublishedRooms, since, limit)
	if err != nil {
		return nil, fmt.Errorf("published rooms: %w", err)
	}
	defer rows.Close()
	var out []id.RoomID
	for rows.Next() {
		var room id.RoomID
		if err := rows.Scan(&room); err != nil {
			return nil, err
		}
		out = append(out, room)
	}
	return out, rows.Err()
}

const updateAliasesRoom = `UPDATE room_aliases SET room_id = $2 WHERE room_id = $1`

// MoveAliases implements rooms.AliasStore.
func (r *Rooms) MoveAliases(ctx context.Context, from, to id.RoomID) error {
	if _, err := r.pool.Exec(ctx, updateAliasesRoom, from, to); err != nil {
		return fmt.Errorf("move aliases of %s to %s: %w", from, to, err)
	}
	return nil
}
