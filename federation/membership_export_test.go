package federation

// RemoteError exposes remoteError to the package's external tests.
var RemoteError = remoteError
