package fedclient

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/parleyhq/parley/federation/queue"
	"github.com/parleyhq/parley/id"
)

var _ queue.Transport = (*Client)(nil)

// SendTransaction sends PUT /_matrix/federation/v1/send/{txnId} (spec
// server-server-api "Transactions") for the outbound queue. A 400, 403 or
// 413 answer is a queue.PermanentError: the destination refused this
// transaction and will refuse it again, so the queue drops it instead of
// retrying forever; anything else (no answer, 5xx, 401 while the
// destination cannot fetch our key, 429) is retried with backoff, no
// sooner than a 429's Retry-After (a queue.RetryAfterError).
func (c *Client) SendTransaction(ctx context.Context, destination id.ServerName, txnID string, body *queue.TxnBody) (*queue.TxnResponse, error) {
	var resp queue.TxnResponse
	err := c.Do(ctx, destination, http.MethodPut, "/_matrix/federation/v1/send/"+url.PathEscape(txnID), body, &resp)
	var remote *Error
	if errors.As(err, &remote) {
		switch remote.Status {
		case http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge:
			return nil, &queue.PermanentError{Err: err}
		case http.StatusTooManyRequests:
			if remote.RetryAfter > 0 {
				return nil, &queue.RetryAfterError{After: remote.RetryAfter, Err: err}
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return &resp, nil
}
