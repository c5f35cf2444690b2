package bytesize_test

import (
	"fmt"

	"github.com/buzon-mail/buzon/internal/bytesize"
)

func Example() {
	fmt.Println(bytesize.Format(1932735283), "|", bytesize.Short(1932735283))
	fmt.Println(bytesize.Format(950<<20), "|", bytesize.Short(950<<20))
	fmt.Println(bytesize.Format(512), "|", bytesize.Short(512))
	// Output:
	// 1.8 GB | 1.8G
	// 950 MB | 950.0M
	// 512 bytes | 512
}
