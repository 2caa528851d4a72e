// Package stateres implements room state resolution (spec "Room Versions":
// state resolution v1 for room version 1, v2 for versions 2–11 and v2.1 for
// version 12; server-server API "Room State Resolution"): given the states
// after several forward extremities of a room, it computes the one state the
// room has where the forks meet.
//
// It is pure: no database, no network. Events come from an EventSource the
// caller implements (backed by Postgres in production, batch lookups), and
// the authorisation rules from rooms/auth. It imports nothing of Parley's but
// id, rooms/roomversion and rooms/auth, and must not import storage or any
// edge package.
//
// Where the spec's words leave room, this package reads them as follows:
//
//   - Auth difference: each state set's full auth chain counts the set's own
//     events (see authDifference for why).
//   - Power events' auth chains: "the events in the auth chain of P which
//     also belong to the full conflicted set" are found by walking P's whole
//     auth chain, through events outside the set too.
//   - Reverse topological power ordering: the DAG is the auth_events edges
//     between the events being sorted.
//   - v1: conflicts of each member's key are resolved in state key order; a
//     key that only some states hold is not a conflict (spec rooms/v1).
//
// Performance: events are numbered densely on load and the walks (auth
// difference, conflicted subgraph, orderings) run on int32 indices; auth
// events are fetched one layer of the auth DAG per EventSource call; each
// event's sender power level and each power levels content are computed once
// per resolution. BenchmarkResolveTwoForks10kMembers resolves two forks of a
// 10,000-member room.
package stateres
