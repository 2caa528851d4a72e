package config

import (
	"strings"
	"testing"
)

func TestMediaValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Media)
		want   string // a problem the error must name; "" for valid
	}{
		{"defaults", func(*Media) {}, ""},
		{"s3 complete", func(m *Media) {
			m.Backend = MediaS3Backend
			m.S3 = MediaS3{Endpoint: "minio:9000", AccessKey: "a", SecretKey: "s", Bucket: "b"}
		}, ""},
		{"unknown backend", func(m *Media) { m.Backend = "tape" }, "media.backend"},
		{"s3 without bucket", func(m *Media) {
			m.Backend = MediaS3Backend
			m.S3 = MediaS3{Endpoint: "minio:9000", AccessKey: "a", SecretKey: "s"}
		}, "media.s3.bucket"},
		{"s3 without credentials", func(m *Media) {
			m.Backend = MediaS3Backend
			m.S3 = MediaS3{Endpoint: "minio:9000", Bucket: "b"}
		}, "media.s3.secret_key"},
		{"zero upload size", func(m *Media) { m.MaxUploadSize = 0 }, "media.max_upload_size"},
		{"negative quota", func(m *Media) { m.UserQuota = -1 }, "media.user_quota"},
		{"bad thumbnail sizes", func(m *Media) { m.Thumbnails.Sizes = "32x32-stretch" }, "media.thumbnails.sizes"},
		{"no pixel limit", func(m *Media) { m.Thumbnails.MaxPixels = 0 }, "media.thumbnails.max_pixels"},
		{"no preview timeout", func(m *Media) { m.Preview.Timeout = 0 }, "media.preview.timeout"},
		{"no pending uploads", func(m *Media) { m.MaxPendingUploads = 0 }, "media.max_pending_uploads"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			tc.mutate(&c.Media)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Errorf("valid configuration refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
}

func TestMediaEnvironmentOverrides(t *testing.T) {
	cfg, err := Load("", false, []string{
		"PARLEY_MEDIA_BACKEND=s3",
		"PARLEY_MEDIA_S3_ENDPOINT=minio:9000",
		"PARLEY_MEDIA_S3_ACCESS_KEY=ak",
		"PARLEY_MEDIA_S3_SECRET_KEY=sk",
		"PARLEY_MEDIA_S3_BUCKET=media",
		"PARLEY_MEDIA_S3_USE_SSL=true",
		"PARLEY_MEDIA_MAX_UPLOAD_SIZE=5000",
	})
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Media
	if m.Backend != "s3" || m.S3.Endpoint != "minio:9000" || m.S3.SecretKey != "sk" || !m.S3.UseSSL || m.MaxUploadSize != 5000 {
		t.Errorf("got %+v", m)
	}
}
