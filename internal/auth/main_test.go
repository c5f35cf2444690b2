package auth

import (
	"testing"

	"github.com/buzon-mail/buzon/internal/store/teststore"
)

// TestMain stops the PostgreSQL cluster that tests over teststore may
// have started (BUZON_TEST_STORE=postgres).
func TestMain(m *testing.M) { teststore.Main(m) }
