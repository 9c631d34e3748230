package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkBackupVsPgDumpGzip compares the agent (pg_dump, zstd, SHA-256,
// streamed multipart upload to a real S3 server, manifest) with the plain
// `pg_dump | gzip > file` an administrator would run, on the same database of
// BENCH_AGENT_MB megabytes (default 300). Run with `make bench-agent`.
func BenchmarkBackupVsPgDumpGzip(b *testing.B) {
	if postgres.skipWhy != "" || s3.skipWhy != "" {
		b.Skip(postgres.skipWhy, s3.skipWhy)
	}
	mb := 300
	if v, err := strconv.Atoi(os.Getenv("BENCH_AGENT_MB")); err == nil && v > 0 {
		mb = v
	}
	db := createDatabase(b, postgres, fmt.Sprintf("bench%d", time.Now().UnixNano()%100000))
	// Rows of about 200 bytes of CRM-like text: names, addresses, notes.
	rows := mb * 1024 * 1024 / 200
	sql(b, db, fmt.Sprintf(`CREATE TABLE notes AS SELECT g AS id, 'Customer ' || g AS name,
		md5(g::text) || '@customer.example' AS email,
		repeat(md5((g * 7)::text), 4) || ' called about renewal ' || g AS body
		FROM generate_series(1, %d) g`, rows))
	size := sql(b, db, "SELECT pg_total_relation_size('notes')")
	b.Logf("database: %d rows, %s bytes on disk", rows, size)

	dir := b.TempDir()
	var plain, agentTime time.Duration
	var plainBytes, agentBytes int64
	for i := 0; i < b.N; i++ {
		out := filepath.Join(dir, "dump.sql.gz")
		cmd := exec.Command("/bin/sh", "-c", fmt.Sprintf("%s/pg_dump --host 127.0.0.1 --port %d --username postgres --dbname %s --clean --if-exists --no-owner --no-privileges | gzip > %s",
			postgres.bin, postgres.port, db.Name, out))
		start := time.Now()
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("pg_dump | gzip: %v: %s", err, o)
		}
		plain += time.Since(start)
		st, _ := os.Stat(out)
		plainBytes = st.Size()

		start = time.Now()
		_, res, err := Backup(context.Background(), s3.store(b, "bench"), BackupOptions{Name: fmt.Sprintf("b%d", i), Database: db, Product: "odoo"})
		if err != nil {
			b.Fatal(err)
		}
		agentTime += time.Since(start)
		agentBytes = res.Size
	}
	n := float64(b.N)
	dbMB := float64(mb)
	b.ReportMetric(dbMB/(plain.Seconds()/n), "pgdump-gzip-MB/s")
	b.ReportMetric(dbMB/(agentTime.Seconds()/n), "agent-MB/s")
	b.ReportMetric(agentTime.Seconds()/plain.Seconds(), "agent/pgdump-gzip")
	fmt.Printf("\nbackup of a %d MB database (%d rows):\n", mb, rows)
	fmt.Printf("  pg_dump | gzip > file         %6.1fs  %6.1f MB/s  %d bytes\n", plain.Seconds()/n, dbMB/(plain.Seconds()/n), plainBytes)
	fmt.Printf("  crm-agent -> S3 (zstd, sha256) %6.1fs  %6.1f MB/s  %d bytes\n", agentTime.Seconds()/n, dbMB/(agentTime.Seconds()/n), agentBytes)
	fmt.Printf("  ratio agent / plain: %.2fx (goal: at most 1.2x)\n", agentTime.Seconds()/plain.Seconds())
}
