package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/parleyhq/parley/storage/pgtest"
)

// call sends a JSON request to the client API and decodes the answer.
func call(t *testing.T, client, method, path, token string, body any) (int, map[string]any, error) {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, err := http.NewRequest(method, "http://"+client+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out, nil
}

// A message acknowledged to the client survives kill -9 of the server at
// any moment: the answer is only written after COMMIT (DESIGN.md, storage
// principles). Messages are sent back to back while the process is killed.
func TestAcknowledgedMessagesSurviveKill9(t *testing.T) {
	bin := buildBinary(t)
	env := []string{
		"PARLEY_SERVER_NAME=kill.test",
		"PARLEY_DATA_DIR=" + t.TempDir(),
		"PARLEY_DATABASE_URL=" + pgtest.NewDatabase(t),
	}
	p, client := startServe(t, bin, env)
	reg := map[string]any{"username": "alice", "password": "pw", "auth": map[string]any{"type": "m.login.dummy"}}
	status, body, err := call(t, client, http.MethodPost, "/_matrix/client/v3/register", "", reg)
	if err != nil || status != http.StatusOK {
		t.Fatalf("register: %d %v %v", status, body, err)
	}
	token := body["access_token"].(string)
	status, body, err = call(t, client, http.MethodPost, "/_matrix/client/v3/createRoom", token, map[string]any{})
	if err != nil || status != http.StatusOK {
		t.Fatalf("createRoom: %d %v %v", status, body, err)
	}
	room := body["room_id"].(string)

	acked := make(chan string, 1000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			path := fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/m.room.message/k%d", url.PathEscape(room), i)
			status, body, err := call(t, client, http.MethodPut, path, token, map[string]any{"msgtype": "m.text", "body": fmt.Sprint(i)})
			if err != nil || status != http.StatusOK {
				return // the server is gone
			}
			acked <- body["event_id"].(string)
		}
	}()
	var ids []string
	for len(ids) < 30 {
		ids = append(ids, <-acked)
	}
	if err := p.cmd.Process.Kill(); err != nil { // SIGKILL: no shutdown at all
		t.Fatal(err)
	}
	<-done
	close(acked)
	for id := range acked {
		ids = append(ids, id)
	}

	_, client = startServe(t, bin, env)
	login := map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "alice"}, "password": "pw"}
	status, body, err = call(t, client, http.MethodPost, "/_matrix/client/v3/login", "", login)
	if err != nil || status != http.StatusOK {
		t.Fatalf("login after kill: %d %v %v", status, body, err)
	}
	token = body["access_token"].(string)
	for i, id := range ids {
		path := fmt.Sprintf("/_matrix/client/v3/rooms/%s/event/%s", url.PathEscape(room), url.PathEscape(id))
		status, body, err := call(t, client, http.MethodGet, path, token, nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("acknowledged message %d (%s) lost after kill -9: %d %v %v", i, id, status, body, err)
		}
	}
	// The room still takes messages: its head reloads from the database.
	path := fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/m.room.message/after", url.PathEscape(room))
	if status, body, err := call(t, client, http.MethodPut, path, token, map[string]any{"body": "after"}); err != nil || status != http.StatusOK {
		t.Fatalf("send after restart: %d %v %v", status, body, err)
	}
}
