package agent

import (
	"strings"
	"testing"
)

func TestRedactErrorKeepsRowValuesOut(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"postgres unique key",
			`psql: exit status 3: ERROR:  duplicate key value violates unique constraint "contact_email_key"` + "\n" + `DETAIL:  Key (email)=(jane.doe@kunde.example) already exists.`,
			`psql: exit status 3: ERROR:  duplicate key value violates unique constraint "contact_email_key"` + "\n" + `DETAIL:  Key (email)=(…) already exists.`},
		{"postgres composite key with a function",
			`DETAIL:  Key (lower(name), city)=(jane doe, Kyiv) already exists.`,
			`DETAIL:  Key (lower(name), city)=(…) already exists.`},
		{"postgres check constraint",
			`ERROR:  new row for relation "contact" violates check constraint "phone_format"` + "\n" + `DETAIL:  Failing row contains (7, Jane, Doe, +380 44 123 4567).`,
			`ERROR:  new row for relation "contact" violates check constraint "phone_format"` + "\n" + `DETAIL:  Failing row contains (…).`},
		{"postgres COPY context",
			`CONTEXT:  COPY contact, line 3: "7	Jane	Doe	jane@kunde.example"`,
			`CONTEXT:  COPY contact, line 3: …`},
		{"postgres COPY context with a column",
			`CONTEXT:  COPY contact, line 3, column phone: "+380 44 123 4567"`,
			`CONTEXT:  COPY contact, line 3, column phone: …`},
		{"postgres bad input",
			`ERROR:  invalid input syntax for type integer: "Jane Doe"`,
			`ERROR:  invalid input syntax for type integer: "…"`},
		{"mariadb duplicate",
			`mariadb: exit status 1: ERROR 1062 (23000) at line 88: Duplicate entry 'jane@kunde.example' for key 'email'`,
			`mariadb: exit status 1: ERROR 1062 (23000) at line 88: Duplicate entry '…' for key 'email'`},
		{"mariadb duplicate with a quote in the value",
			`Duplicate entry 'O\'Brien-Kyiv' for key 'name_city'`,
			`Duplicate entry '…' for key 'name_city'`},
		{"mariadb bad value",
			`ERROR 1366 (22007): Incorrect integer value: 'Jane' for column 'age' at row 1`,
			`ERROR 1366 (22007): Incorrect integer value: '…' for column 'age' at row 1`},
		{"an address elsewhere", `no user jane.doe@kunde.example`, `no user …@…`},
		{"nothing personal stays as it was",
			`pg_dump: error: connection to server at "prod-db" (10.0.0.4), port 5432 failed: FATAL:  password authentication failed for user "crm"`,
			`pg_dump: error: connection to server at "prod-db" (10.0.0.4), port 5432 failed: FATAL:  password authentication failed for user "crm"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := RedactError(tc.in); got != tc.want {
				t.Errorf("RedactError:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// The termination message, which becomes status.message and an Event, and
// what the operator reads back, carry no row values.
func TestResultsCarryNoRowValues(t *testing.T) {
	raw := `ERROR 1062 (23000) at line 88: Duplicate entry 'jane@kunde.example' for key 'email'`
	encoded := string(EncodeResult(Result{Error: raw}))
	if want := `"error":"ERROR 1062 (23000) at line 88: Duplicate entry '…' for key 'email'"`; !strings.Contains(encoded, want) {
		t.Errorf("EncodeResult = %s, want it to contain %s", encoded, want)
	}
	// An older agent's message, as the operator reads it.
	r, err := ParseResult(`{"error":"DETAIL:  Key (email)=(jane@kunde.example) already exists."}`)
	if err != nil {
		t.Fatal(err)
	}
	if want := "DETAIL:  Key (email)=(…) already exists."; r.Error != want {
		t.Errorf("ParseResult error = %q, want %q", r.Error, want)
	}
}
