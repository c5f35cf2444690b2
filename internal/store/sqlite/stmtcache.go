package sqlite

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"

	"modernc.org/sqlite"
)

// stmtCacheSize is how many prepared statements a connection keeps. The
// store runs a few dozen distinct statements; the hot ones (a delivery's,
// a POP3 RETR's, an IMAP FETCH's) stay prepared, rare ones come and go.
const stmtCacheSize = 32

// stmtCacheConnector opens driver connections that prepare each
// statement text once and reuse it. The driver otherwise compiles the SQL
// of every QueryContext and ExecContext call afresh, which was an eighth
// of the server's CPU time under a delivery load (BENCHMARKS.md).
type stmtCacheConnector struct{ driver.Connector }

func newStmtCacheConnector(dsn string) (driver.Connector, error) {
	c, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return stmtCacheConnector{c}, nil
}

// Connect implements driver.Connector.
func (c stmtCacheConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	inner, ok := conn.(innerConn)
	if !ok {
		conn.Close()
		return nil, errors.New("sqlite driver connection lacks the context methods")
	}
	return &cachingConn{innerConn: inner, stmts: map[string]*list.Element{}, lru: list.New()}, nil
}

// innerConn is what the driver's connections implement and cachingConn
// forwards (see sqlite.NewConnector).
type innerConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// cachingConn is a driver connection with a cache of prepared statements.
// database/sql uses a connection from one goroutine at a time, and so
// does every method here, but a query's rows may still be open when the
// next statement runs: a statement whose rows are open is busy, and the
// same text then runs unprepared.
type cachingConn struct {
	innerConn
	stmts map[string]*list.Element // query text -> element of lru
	lru   *list.List               // of *cachedStmt, most recently used first
}

type cachedStmt struct {
	query string
	stmt  stmtContext
	busy  bool // rows of it are open
}

// stmtContext is what the driver's statements implement.
type stmtContext interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

var _ innerConn = (*cachingConn)(nil)

// Unwrap returns the driver's connection (see sqlite.NewConnector).
func (c *cachingConn) Unwrap() driver.Conn { return c.innerConn }

// stmt returns the prepared statement for query, preparing it if needed,
// or nil if it is busy or cannot be prepared alone (the caller then runs
// query unprepared and meets the error there).
func (c *cachingConn) stmt(ctx context.Context, query string) *cachedStmt {
	if e, ok := c.stmts[query]; ok {
		cs := e.Value.(*cachedStmt)
		if cs.busy {
			return nil
		}
		c.lru.MoveToFront(e)
		return cs
	}
	ds, err := c.innerConn.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	s, ok := ds.(stmtContext)
	if !ok {
		ds.Close()
		return nil
	}
	if c.lru.Len() >= stmtCacheSize {
		c.evict()
	}
	cs := &cachedStmt{query: query, stmt: s}
	c.stmts[query] = c.lru.PushFront(cs)
	return cs
}

// evict closes the least recently used statement that is not busy.
func (c *cachingConn) evict() {
	for e := c.lru.Back(); e != nil; e = e.Prev() {
		cs := e.Value.(*cachedStmt)
		if !cs.busy {
			c.lru.Remove(e)
			delete(c.stmts, cs.query)
			cs.stmt.Close()
			return
		}
	}
}

// ExecContext implements driver.ExecerContext.
func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cs := c.stmt(ctx, query)
	if cs == nil {
		return c.innerConn.ExecContext(ctx, query, args)
	}
	return cs.stmt.ExecContext(ctx, args)
}

// QueryContext implements driver.QueryerContext.
func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs := c.stmt(ctx, query)
	if cs == nil {
		return c.innerConn.QueryContext(ctx, query, args)
	}
	rows, err := cs.stmt.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	cs.busy = true
	return &cachedRows{Rows: rows, cs: cs}, nil
}

// Close implements driver.Conn: the statements go first, or the database
// would stay open until they did.
func (c *cachingConn) Close() error {
	var errs []error
	for e := c.lru.Front(); e != nil; e = e.Next() {
		errs = append(errs, e.Value.(*cachedStmt).stmt.Close())
	}
	c.stmts, c.lru = nil, nil
	errs = append(errs, c.innerConn.Close())
	return errors.Join(errs...)
}

// cachedRows are the rows of a cached statement; closing them makes the
// statement available again.
type cachedRows struct {
	driver.Rows
	cs *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.cs.busy = false
	return err
}
