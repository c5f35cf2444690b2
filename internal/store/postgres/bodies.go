package postgres

import (
	"context"
	"fmt"

	"github.com/buzon-mail/buzon/internal/store"
)

var _ store.BodyBatcher = (*session)(nil)

// OpenBodies implements store.BodyBatcher in one query. Only bodies of one
// chunk (so most mail) are read, as OpenBody reads them, each with its
// message's row; the budget is a running sum in the order asked, so the
// bodies opened are those of the first uids that fit.
func (ss *session) OpenBodies(ctx context.Context, mailboxID int64, uids []store.UID, maxBytes int64) ([]store.Body, error) {
	bodies := make([]store.Body, len(uids))
	if len(uids) == 0 {
		return bodies, nil
	}
	want := make([]int64, len(uids))
	for i, u := range uids {
		want[i] = int64(u)
	}
	rows, err := ss.s.pool.Query(ctx, `SELECT f.i, f.body_id, f.size,
			(SELECT data FROM body_chunks c WHERE c.body_id = f.body_id AND c.seq = 0)
		FROM (
			SELECT u.i, m.body_id, m.size,
				sum(m.size) FILTER (WHERE m.size <= $4) OVER (ORDER BY u.i) AS total
			FROM unnest($2::bigint[]) WITH ORDINALITY AS u(uid, i)
			JOIN messages m ON m.mailbox_id = $1 AND m.uid = u.uid
			JOIN mailboxes b ON b.id = m.mailbox_id
			WHERE b.account_id = $3) AS f
		WHERE f.size <= $4 AND f.total <= $5`,
		mailboxID, want, ss.id, chunkSize, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("open bodies in mailbox %d: %w", mailboxID, mapErr(err))
	}
	defer rows.Close()
	bctx := context.WithoutCancel(ctx)
	for rows.Next() {
		var i int64
		b := &body{s: ss.s, ctx: bctx}
		if err := rows.Scan(&i, &b.id, &b.size, &b.data); err != nil {
			return nil, fmt.Errorf("open bodies in mailbox %d: %w", mailboxID, mapErr(err))
		}
		if b.data == nil {
			b.data = []byte{} // an empty body has no chunk
		}
		bodies[i-1] = b
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("open bodies in mailbox %d: %w", mailboxID, mapErr(err))
	}
	return bodies, nil
}
