package store_test

import (
	"fmt"

	"github.com/buzon-mail/buzon/internal/store"
)

func ExampleCount() {
	fmt.Println(store.Count(1, "message"))
	fmt.Println(store.Count(0, "account"))
	fmt.Println(store.Count(int64(20000), "message"))
	// Output:
	// 1 message
	// 0 accounts
	// 20000 messages
}
