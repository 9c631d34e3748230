package crm

import (
	"os"
	"testing"
)

// docs/products.md is what the profiles say: a reviewer checks the cited
// facts there, so it may not drift from the code.
func TestProductsDocIsGenerated(t *testing.T) {
	have, err := os.ReadFile("../../docs/products.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(have) != ContractsMarkdown() {
		t.Error("docs/products.md differs from internal/crm: run make generate")
	}
}
