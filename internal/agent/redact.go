package agent

import "regexp"

// redactions cut row values out of database errors before they reach the
// termination message, and from there a Backup's or Restore's status, its
// Events and the Job's log, which the project's people read: a constraint
// violation quotes the offending row, and rows hold personal data. Each
// keeps the error's shape (which constraint, which line, which column), so
// that it still says what went wrong.
var redactions = []struct {
	re   *regexp.Regexp
	with string
}{
	// PostgreSQL: DETAIL:  Key (email)=(jane@example.com) already exists.
	{regexp.MustCompile(`Key \((.*?)\)=\(.*\)`), "Key ($1)=(…)"},
	// PostgreSQL: DETAIL:  Failing row contains (1, Jane, ...).
	{regexp.MustCompile(`Failing row contains \(.*\)`), "Failing row contains (…)"},
	// PostgreSQL: CONTEXT:  COPY contact, line 3, column email: "jane@..." / line 3: "1\tJane..."
	{regexp.MustCompile(`(COPY [^,\n]+, line \d+(?:, column [^:\n]+)?): .*`), "$1: …"},
	// PostgreSQL: invalid input syntax for type integer: "Jane"
	{regexp.MustCompile(`(invalid input (?:syntax|value) for [^:\n]+): "(?:[^"\\]|\\.)*"`), `$1: "…"`},
	// MariaDB: Duplicate entry 'jane@example.com' for key 'email'
	{regexp.MustCompile(`Duplicate entry '(?:[^'\\]|\\.|'')*' for key`), "Duplicate entry '…' for key"},
	// MariaDB: Incorrect integer value: 'Jane' for column / Truncated incorrect DOUBLE value: 'x'
	{regexp.MustCompile(`(Incorrect [\w ]+ value|incorrect [\w ]+ value): '(?:[^'\\]|\\.|'')*'`), "$1: '…'"},
	// Anything else that looks like an e-mail address.
	{regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}`), "…@…"},
}

// RedactError removes row values from a database error message.
func RedactError(msg string) string {
	for _, r := range redactions {
		msg = r.re.ReplaceAllString(msg, r.with)
	}
	return msg
}
