package miniotest

import (
	"context"
	"net/http"
	"testing"
	"time"
)

func live(endpoint string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	res, err := c.Get("http://" + endpoint + "/minio/health/live")
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

func TestPrivateServerLivesUntilKilled(t *testing.T) {
	s := Private(t)
	if !live(s.Endpoint) {
		t.Fatalf("started server on %s is not live", s.Endpoint)
	}
	if s.AccessKey == "" || len(s.SecretKey) < 8 {
		t.Errorf("credentials %q/%q are not usable by MinIO", s.AccessKey, s.SecretKey)
	}
	s.Kill()
	if live(s.Endpoint) {
		t.Error("server still answers after Kill")
	}
}

func TestConfigGivesDistinctBuckets(t *testing.T) {
	a, b := Config(t), Config(t)
	if a.Bucket == b.Bucket || a.Endpoint != b.Endpoint {
		t.Errorf("buckets %q, %q on %s, %s: want distinct buckets on one server", a.Bucket, b.Bucket, a.Endpoint, b.Endpoint)
	}
	if !live(a.Endpoint) {
		t.Errorf("shared server %s is not live", a.Endpoint)
	}
}

func TestBinaryIsCached(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p1, err := Binary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p2, err := Binary(ctx)
	if err != nil || p1 != p2 {
		t.Fatalf("second Binary() = %q, %v; want %q", p2, err, p1)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second Binary() took %v: the cached build was not reused", d)
	}
}
