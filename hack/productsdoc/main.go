// Command productsdoc writes docs/products.md from the product contracts
// in internal/crm.
package main

import (
	"fmt"
	"os"

	"github.com/crmops/crm-operator/internal/crm"
)

func main() {
	if err := os.WriteFile("docs/products.md", []byte(crm.ContractsMarkdown()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
