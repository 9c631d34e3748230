package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// docs/reference/api.md is what the CRDs say: it may not drift from them.
func TestAPIReferenceIsGenerated(t *testing.T) {
	have, err := os.ReadFile("../../docs/reference/api.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := render("../../config/crd/bases")
	if err != nil {
		t.Fatal(err)
	}
	if string(have) != want {
		t.Error("docs/reference/api.md differs from config/crd/bases: run make generate")
	}
}

const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, shortNames: [wdg], categories: [demo]}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Color, type: string, jsonPath: .spec.color, priority: 1, description: What it looks like}
    schema:
      openAPIV3Schema:
        description: Widget is a thing. It has parts.
        type: object
        required: [spec]
        x-kubernetes-validations:
        - {rule: "self.metadata.name.size() <= 20", message: name too long}
        properties:
          spec:
            type: object
            required: [size]
            x-kubernetes-validations:
            - {rule: "self.size > 1 || !has(self.color)", message: small widgets have no color, fieldPath: .color}
            properties:
              size: {type: integer, format: int32, minimum: 1, maximum: 10, description: "Size in <units> | parts."}
              color: {type: string, enum: [red, blue], default: red}
              name: {type: string, pattern: "^[a-z]+$", minLength: 1, maxLength: 63}
              parts:
                type: array
                maxItems: 5
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [id]
                items:
                  type: object
                  properties:
                    id: {type: string, x-kubernetes-validations: [{rule: "self == oldSelf", message: id is immutable}]}
              limits:
                type: object
                additionalProperties:
                  anyOf: [{type: integer}, {type: string}]
                  pattern: '^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$'
                  x-kubernetes-int-or-string: true
          status:
            type: object
            properties:
              conditions:
                type: array
                items:
                  type: object
                  properties:
                    lastTransitionTime: {type: string}
                    message: {type: string}
                    observedGeneration: {type: integer}
                    reason: {type: string}
                    status: {type: string}
                    type: {type: string}
`

func TestRenderShowsWhatTheAPIServerChecks(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "widgets.yaml"), []byte(widgetCRD), 0o644); err != nil {
		t.Fatal(err)
	}
	md, err := render(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| [Widget](#widget) | namespaced | `wdg` | Widget is a thing. |",
		"`example.com/v1`, namespaced: `kubectl get widgets` (short name `wdg`), categories `demo`; status subresource.",
		"| Color (wide) | string | `.spec.color` | What it looks like |",
		"### Widget spec",
		"| `spec.size` | integer (int32) | Size in &lt;units&gt; \\| parts. | required; ≥ 1; ≤ 10 |",
		"| `spec.color` | string |  | default `\"red\"`; one of `red`, `blue` |",
		"| `spec.name` | string |  | pattern `^[a-z]+$`; 1-63 characters |",
		"| `spec.parts` | []object |  | at most 5 items; items unique by `id` |",
		"| `spec.parts[].id` | string |  | CEL: “id is immutable” |",
		"| `spec.limits` | map[string]quantity |  |  |",
		"| `status.conditions` | []Condition |  |  |",
		"CEL rules of Widget:\n\n- the object: `self.metadata.name.size() <= 20`: “name too long”",
		"- `spec.color`: `self.size > 1 || !has(self.color)`: “small widgets have no color”",
		"- `spec.parts[].id`: `self == oldSelf`: “id is immutable”",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the reference lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "lastTransitionTime") {
		t.Error("a Condition's own fields are listed: they are the same on every kind")
	}
}

func TestRenderRefusesWhatIsNoCRD(t *testing.T) {
	for name, content := range map[string]string{
		"empty directory": "",
		"another kind":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
		"unknown field":   "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec: {nonsense: 1}\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if content != "" {
				if err := os.WriteFile(filepath.Join(dir, "x.yaml"), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := render(dir); err == nil {
				t.Error("rendered without an error")
			}
		})
	}
}
