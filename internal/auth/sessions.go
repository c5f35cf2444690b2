package auth

import "sync"

// SessionLimiter bounds how many sessions one account may have open at
// once, across IMAP and POP3, so one account cannot take every
// connection slot. The zero value and a nil *SessionLimiter allow any number.
type SessionLimiter struct {
	max int

	mu   sync.Mutex
	open map[int64]int // guarded by mu; account ID -> sessions
}

// NewSessionLimiter allows up to max sessions per account; 0 means no limit.
func NewSessionLimiter(max int) *SessionLimiter {
	return &SessionLimiter{max: max, open: map[int64]int{}}
}

// Acquire counts a new session for the account. It returns ok false when
// the account is at its limit; otherwise the caller must call release
// exactly once when the session ends.
func (l *SessionLimiter) Acquire(accountID int64) (release func(), ok bool) {
	if l == nil || l.max <= 0 {
		return func() {}, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[accountID] >= l.max {
		return nil, false
	}
	l.open[accountID]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.open[accountID]--; l.open[accountID] <= 0 {
				delete(l.open, accountID)
			}
		})
	}, true
}
