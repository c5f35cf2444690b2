package delivery

import (
	"testing"

	"github.com/buzon-mail/buzon/internal/store/teststore"
)

// TestMain stops the PostgreSQL cluster the tests that run on the test
// store (teststore) started, if BUZON_TEST_STORE=postgres had them start
// one.
func TestMain(m *testing.M) { teststore.Main(m) }
