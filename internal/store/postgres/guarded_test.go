package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/buzon-mail/buzon/internal/store"
)

// The halves of StoreFlags's and Expunge's guarded writes, apart, so
// that tests can put another write between the read and the write.

// planFlags is one read of StoreFlags and what it decides, with no lock.
func (ss *session) planFlags(ctx context.Context, mailboxID int64, uids store.UIDSet, op store.FlagOp, flags store.Flags, unchangedSince store.ModSeq) (store.FlagsResult, flagChange, error) {
	var res store.FlagsResult
	var ch flagChange
	g := ss.flagsWrite(mailboxID, uids, op, flags, unchangedSince, &res)
	g.decide = func(rows pgx.Rows) (bool, error) {
		var err error
		res, ch, err = decideFlags(rows, mailboxID, op, flags, unchangedSince)
		return len(ch.uids) > 0, err
	}
	_, err := g.read(ctx, ss.s.pool)
	return res, ch, err
}

// applyFlags makes the change planFlags decided, as StoreFlags's
// optimistic write, if the mailbox is still at res.Prior, and then gives
// res the MODSEQs it took. It reports whether it did.
func (ss *session) applyFlags(ctx context.Context, mailboxID int64, res *store.FlagsResult, ch flagChange) (bool, error) {
	base, wrote, err := ss.writeIf(ctx, nil, applyFlags, ss.applyFlagsArgs(mailboxID, res, ch)...)
	if wrote {
		flagsWritten(res, base)
	}
	return wrote, err
}

// planExpunge is one read of Expunge and what it decides, with no lock.
func (ss *session) planExpunge(ctx context.Context, mailboxID int64, uids store.UIDSet, onlyDeleted bool) (store.ExpungeResult, error) {
	var res store.ExpungeResult
	_, err := ss.expungeWrite(mailboxID, uids, onlyDeleted, &res).read(ctx, ss.s.pool)
	return res, err
}
