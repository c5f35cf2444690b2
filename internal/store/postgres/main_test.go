package postgres

import (
	"testing"

	"github.com/buzon-mail/buzon/internal/store/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
