package auth

import "testing"

func TestSessionLimiter(t *testing.T) {
	l := NewSessionLimiter(2)
	r1, ok1 := l.Acquire(1)
	r2, ok2 := l.Acquire(1)
	_, ok3 := l.Acquire(1)
	_, okOther := l.Acquire(2)
	if !ok1 || !ok2 || ok3 || !okOther {
		t.Fatalf("acquire: %v %v %v %v; want true true false true", ok1, ok2, ok3, okOther)
	}
	r1()
	r1() // a second release must not free a second slot
	if _, ok := l.Acquire(1); !ok {
		t.Fatal("slot not freed by release")
	}
	if _, ok := l.Acquire(1); ok {
		t.Fatal("double release freed two slots")
	}
	r2()
	var none *SessionLimiter
	if _, ok := none.Acquire(1); !ok {
		t.Error("nil limiter refused")
	}
}
