// Package media is the content repository (spec: Client-Server API,
// "Content repository"): uploads, asynchronous uploads, downloads,
// thumbnails and URL previews. Bytes live in a BlobStore, content-addressed
// by SHA-256 so that identical uploads are stored once; metadata lives in a
// Store. Both are interfaces declared here and implemented elsewhere: the
// filesystem BlobStore in this package (it needs only the standard
// library), the MinIO/S3 one in storage/blobs3, the metadata Store in
// storage.
//
// It must not import an edge (clientapi, federation), storage, or a driver
// (minio-go, pgx, chi).
package media
