// Command crm-standin stands in for a CRM application on the local cluster's
// real node, where the official CRM images cannot be pulled: it answers
// every HTTP path (the products' probe paths among them) on $PORT (default
// 8080, the custom product's port), and only while the database the
// product's variables name accepts connections: DATABASE_HOST/_PORT (the
// custom product), HOST/PORT (Odoo), ESPOCRM_DATABASE_HOST/_PORT,
// SUITECRM_DATABASE_HOST/_PORT_NUMBER, PG_DATABASE_HOST/_PORT (Twenty). It is
// not a CRM: the tests that use it say so. With arguments it runs them
// instead, as the products' entrypoints run a Job's command (a migration):
// its image has bash and the PostgreSQL and MariaDB clients for that.
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

var databaseVariables = [][2]string{
	{"DATABASE_HOST", "DATABASE_PORT"},
	{"HOST", "PORT"},
	{"ESPOCRM_DATABASE_HOST", "ESPOCRM_DATABASE_PORT"},
	{"SUITECRM_DATABASE_HOST", "SUITECRM_DATABASE_PORT_NUMBER"},
	{"PG_DATABASE_HOST", "PG_DATABASE_PORT"},
}

// database is the host:port the product's variables name, or "".
func database() string {
	for _, v := range databaseVariables {
		host, port := os.Getenv(v[0]), os.Getenv(v[1])
		if host != "" && port != "" {
			return net.JoinHostPort(host, port)
		}
	}
	return ""
}

func main() {
	if len(os.Args) > 1 {
		path, err := exec.LookPath(os.Args[1])
		if err != nil {
			log.Fatal(err)
		}
		log.Fatal(syscall.Exec(path, os.Args[1:], os.Environ())) //nolint:gosec // the Job's own command, as an entrypoint runs it
	}
	addr := ":" + envOr("CRM_STANDIN_PORT", "8080")
	db := database()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if db != "" {
			conn, err := net.DialTimeout("tcp", db, 2*time.Second)
			if err != nil {
				http.Error(w, "database "+db+": "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			_ = conn.Close()
		}
		fmt.Fprintf(w, "crm-standin: a stand-in CRM application (database %s)\n", db)
	})
	log.Printf("crm-standin listening on %s, database %q", addr, db)
	srv := &http.Server{Addr: addr, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
