// Command bench_reader drives an importer plugin the way plakar does (the
// same grpc-go client, integration-grpc's importer adapter, the plugin on the
// other end of its stdin/stdout) and reads every file as fast as possible into
// io.Discard. It prints one JSON line: bytes read, seconds, and the plugin's
// peak RSS and CPU seconds read from /proc just before Close.
//
// Usage: bench_reader -plugin PATH -proto postgres key=value...
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	grpcimporter "github.com/PlakarKorp/integration-grpc/importer"
	"github.com/PlakarKorp/kloset/connectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

type pipeConn struct {
	r   *os.File
	w   *os.File
	cmd *exec.Cmd
}

type addr struct{}

func (addr) Network() string { return "stdio" }
func (addr) String() string  { return "stdio" }

func (c *pipeConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c *pipeConn) Write(b []byte) (int, error)      { return c.w.Write(b) }
func (c *pipeConn) LocalAddr() net.Addr              { return addr{} }
func (c *pipeConn) RemoteAddr() net.Addr             { return addr{} }
func (c *pipeConn) SetDeadline(time.Time) error      { return nil }
func (c *pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *pipeConn) SetWriteDeadline(time.Time) error { return nil }
func (c *pipeConn) Close() error {
	c.w.Close()
	c.r.Close()
	return c.cmd.Wait()
}

// meter reads the plugin's peak RSS (bytes) and CPU seconds from /proc.
func meter(pid int) (int64, float64) {
	var hwm int64
	if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "VmHWM:") {
				f := strings.Fields(line)
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				hwm = kb * 1024
			}
		}
	}
	var cpu float64
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		s := string(stat)
		f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		cpu = (ut + st) / 100
	}
	return hwm, cpu
}

func main() {
	plugin := flag.String("plugin", "", "importer executable")
	proto := flag.String("proto", "postgres", "protocol name sent in Init")
	lean := flag.Bool("lean", false, "read with the minimal HTTP/2 client instead of plakar's grpc-go one")
	flag.Parse()
	config := map[string]string{}
	for _, kv := range flag.Args() {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "bench_reader: %q is not key=value\n", kv)
			os.Exit(2)
		}
		config[k] = v
	}
	runner := run
	if *lean {
		runner = runLean
	}
	if err := runner(*plugin, *proto, config); err != nil {
		fmt.Fprintf(os.Stderr, "bench_reader: %v\n", err)
		os.Exit(1)
	}
}

func run(plugin, proto string, config map[string]string) error {
	ctx := context.Background()
	cmd := exec.Command(plugin)
	cmd.Stderr = os.Stderr
	w, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	r, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	conn := &pipeConn{r: r.(*os.File), w: w.(*os.File), cmd: cmd}
	cc, err := grpc.NewClient("127.0.0.1:0",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithIdleTimeout(0),
		grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) { return conn, nil }),
	)
	if err != nil {
		return err
	}
	imp, err := grpcimporter.NewImporter(ctx, cc, &connectors.Options{MaxConcurrency: 4}, proto, config)
	if err != nil {
		return err
	}

	start := time.Now()
	records := make(chan *connectors.Record)
	results := make(chan *connectors.Result)
	var total int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	go func() {
		for rec := range records {
			wg.Add(1)
			go func(rec *connectors.Record) {
				defer wg.Done()
				if rec.Err != nil || rec.Reader == nil || !rec.FileInfo.Mode().IsRegular() {
					if rec.Err != nil {
						mu.Lock()
						firstErr = fmt.Errorf("%s: %w", rec.Pathname, rec.Err)
						mu.Unlock()
					}
					results <- rec.Ok()
					return
				}
				n, err := io.Copy(io.Discard, rec.Reader)
				mu.Lock()
				total += n
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", rec.Pathname, err)
				}
				mu.Unlock()
				if err != nil {
					results <- rec.Error(err)
				} else {
					results <- rec.Ok()
				}
			}(rec)
		}
		wg.Wait()
		close(results)
	}()
	if err := imp.Import(ctx, records, results); err != nil {
		return err
	}
	elapsed := time.Since(start).Seconds()
	rss, cpu := meter(cmd.Process.Pid)
	if err := imp.Close(ctx); err != nil {
		return err
	}
	conn.Close()
	if firstErr != nil {
		return firstErr
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"bytes": total, "seconds": elapsed, "peakRssBytes": rss, "cpuSeconds": cpu,
	})
}
