// Proof consumer: Go drives libzerobus.so.1 through cgo WITHOUT linking it. The
// library is dlopen()ed at run time and used only through the function table of
// zerobus_get_api(ZEROBUS_ABI_MAJOR); the header supplies the types.
//
// It starts zerobus-local (with OAuth: test-client/test-secret), opens a JSON
// stream on main.default.abi_go, ingests 1,000 records from the main goroutine
// while a second goroutine drains acks with zerobus_stream_poll_events (C never
// calls into Go: no callbacks, no foreign threads entering the Go runtime),
// flushes, closes, and reads the row count back from SQLite (exactly 1,000).
// The drain goroutine waits without a timeout (poll_events(-1)); cancelling its
// context calls zerobus_stream_wake, which ends the blocked poll at once (a wake
// that lands between the goroutine's ctx check and its poll is not lost).
//
// Why this fits Go: errors are values returned through zerobus_error** (no
// thread-local "last error" that a goroutine hopping between OS threads would
// lose); events are pulled in bulk (an ACK event covers a range), so one cgo
// call carries many acks; every call is thread-safe, so ingest and polling run
// on different goroutines/threads without locking on the Go side.
//
//	go run . -lib build/plain/src/libzerobus.so.1 -server build/plain/server/zerobus-local
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../../include -std=c11 -Wall -Wextra -Werror
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>
#include "zerobus_abi.h"

// Resolves only zerobus_get_api and checks the table covers what this program
// uses (the last member it calls is stream_wake).
static const zerobus_api *zb_load(const char *path, const char **why) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) { *why = dlerror(); return NULL; }
  const zerobus_api *(*get_api)(int32_t);
  *(void **)&get_api = dlsym(h, "zerobus_get_api");
  if (!get_api) { *why = "zerobus_get_api not exported"; return NULL; }
  const zerobus_api *api = get_api(ZEROBUS_ABI_MAJOR);
  if (!api) { *why = "library does not provide ABI generation 1"; return NULL; }
  if (api->struct_size < offsetof(zerobus_api, stream_wake) + sizeof api->stream_wake) {
    *why = "function table too small for this program"; return NULL;
  }
  if (get_api(ZEROBUS_ABI_MAJOR + 1) != NULL) { *why = "get_api(2) is not NULL"; return NULL; }
  return api;
}

// cgo cannot call C function pointers: one trampoline per table member used.
static int32_t zb_abi_version(const zerobus_api *a) { return a->abi_version(); }
static const char *zb_status_name(const zerobus_api *a, int32_t s) { return a->status_name(s); }
static int32_t zb_error_code(const zerobus_api *a, const zerobus_error *e) { return a->error_code(e); }
static const char *zb_error_message(const zerobus_api *a, const zerobus_error *e) { return a->error_message(e); }
static int32_t zb_error_retryable(const zerobus_api *a, const zerobus_error *e) { return a->error_retryable(e); }
static void zb_error_destroy(const zerobus_api *a, zerobus_error *e) { a->error_destroy(e); }
static zerobus_status zb_options_new(const zerobus_api *a, zerobus_options **o) { return a->options_new(o); }
static zerobus_status zb_options_set(const zerobus_api *a, zerobus_options *o, const char *k,
                                     const char *v, zerobus_error **e) { return a->options_set(o, k, v, e); }
static void zb_options_destroy(const zerobus_api *a, zerobus_options *o) { a->options_destroy(o); }
static zerobus_status zb_sdk_new(const zerobus_api *a, const char *ep, const char *ws,
                                 zerobus_sdk **out, zerobus_error **e) { return a->sdk_new(ep, ws, NULL, out, e); }
static void zb_sdk_destroy(const zerobus_api *a, zerobus_sdk *s) { a->sdk_destroy(s); }
static zerobus_status zb_stream_create(const zerobus_api *a, zerobus_sdk *sdk, const char *table,
                                       const char *id, const char *secret, zerobus_options *o,
                                       zerobus_stream **out, zerobus_error **e) {
  return a->stream_create(sdk, table, NULL, 0, id, secret, o, NULL, out, e);
}
static zerobus_status zb_ingest(const zerobus_api *a, zerobus_stream *s, const void *d, size_t n,
                                int64_t *off, zerobus_error **e) { return a->stream_ingest(s, d, n, 0, off, e); }
// event_size: zerobus_event as this program was compiled (the library writes
// only what both sides know and steps by this size).
static zerobus_status zb_poll_events(const zerobus_api *a, zerobus_stream *s, zerobus_event *ev,
                                     size_t cap, int32_t ms, size_t *n, zerobus_error **e) {
  return a->stream_poll_events(s, ev, cap, sizeof(zerobus_event), ms, n, e);
}
static int32_t zb_wake(const zerobus_api *a, zerobus_stream *s) { return a->stream_wake(s); }
static zerobus_status zb_flush(const zerobus_api *a, zerobus_stream *s, zerobus_error **e) { return a->stream_flush(s, e); }
static zerobus_status zb_close(const zerobus_api *a, zerobus_stream *s, zerobus_error **e) { return a->stream_close(s, e); }
static void zb_destroy(const zerobus_api *a, zerobus_stream *s) { a->stream_destroy(s); }
static int32_t zb_state(const zerobus_api *a, zerobus_stream *s) { return a->stream_state(s); }
static zerobus_status zb_stats(const zerobus_api *a, zerobus_stream *s, zerobus_stream_stats *st) {
  st->struct_size = sizeof *st;
  return a->stream_get_stats(s, st);
}
*/
import "C"

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

const (
	table = "main.default.abi_go"
	n     = 1000
)

var api *C.zerobus_api

// Error is a libzerobus error as a Go value.
type Error struct {
	Code      int32
	Name      string
	Message   string
	Retryable bool
}

func (e *Error) Error() string { return e.Name + ": " + e.Message }

// takeErr converts (and frees) the error a call produced.
func takeErr(status C.zerobus_status, e *C.zerobus_error) error {
	if e == nil && status == C.ZEROBUS_OK {
		return nil
	}
	out := &Error{Code: int32(status)}
	if e != nil {
		out.Code = int32(C.zb_error_code(api, e))
		out.Message = C.GoString(C.zb_error_message(api, e))
		out.Retryable = C.zb_error_retryable(api, e) != 0
		C.zb_error_destroy(api, e)
	}
	out.Name = C.GoString(C.zb_status_name(api, C.int32_t(out.Code)))
	return out
}

type ackRange struct{ first, last int64 }

// drainAcks pulls events until ctx ends; ACK ranges go to acks, anything else
// fails. It blocks in poll_events without a timeout: whoever cancels ctx must
// call zerobus_stream_wake (see cancelPoll).
func drainAcks(ctx context.Context, s *C.zerobus_stream, acks chan<- ackRange, fail chan<- error) {
	defer close(acks)
	events := (*[64]C.zerobus_event)(C.malloc(C.size_t(unsafe.Sizeof(C.zerobus_event{})) * 64))
	defer C.free(unsafe.Pointer(events))
	for ctx.Err() == nil {
		var got C.size_t
		var e *C.zerobus_error
		st := C.zb_poll_events(api, s, &events[0], 64, -1, &got, &e)
		if err := takeErr(st, e); err != nil {
			fail <- err
			return
		}
		for i := 0; i < int(got); i++ {
			ev := events[i]
			switch ev.kind {
			case C.ZEROBUS_EVENT_ACK:
				acks <- ackRange{int64(ev.first), int64(ev.last)}
			case C.ZEROBUS_EVENT_LOG:
			default:
				fail <- fmt.Errorf("event kind %d for %d..%d: %s", ev.kind, ev.first, ev.last,
					C.GoString(ev.message))
				return
			}
		}
	}
}

func startServer(bin, db string) (*exec.Cmd, string, string, error) {
	cmd := exec.Command(bin, "--port", "0", "--http-port", "0", "--db", db)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", "", err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, "", "", err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "zerobus-local ") {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, "", "", fmt.Errorf("zerobus-local did not start: %q %v", line, err)
	}
	var grpc, http string
	for _, f := range strings.Fields(line)[1:] {
		if v, ok := strings.CutPrefix(f, "grpc="); ok {
			grpc = "http://" + v
		} else if v, ok := strings.CutPrefix(f, "http="); ok {
			http = "http://" + v
		}
	}
	return cmd, grpc, http, nil
}

func run(endpoint, workspace string) error {
	var e *C.zerobus_error
	var opts *C.zerobus_options
	if err := takeErr(C.zb_options_new(api, &opts), nil); err != nil {
		return err
	}
	defer C.zb_options_destroy(api, opts)
	k, v := C.CString("record_type"), C.CString("json")
	defer C.free(unsafe.Pointer(k))
	defer C.free(unsafe.Pointer(v))
	if err := takeErr(C.zb_options_set(api, opts, k, v, &e), e); err != nil {
		return err
	}
	cEndpoint, cWorkspace := C.CString(endpoint), C.CString(workspace)
	defer C.free(unsafe.Pointer(cEndpoint))
	defer C.free(unsafe.Pointer(cWorkspace))
	var sdk *C.zerobus_sdk
	if err := takeErr(C.zb_sdk_new(api, cEndpoint, cWorkspace, &sdk, &e), e); err != nil {
		return err
	}
	defer C.zb_sdk_destroy(api, sdk)

	cTable, cID := C.CString(table), C.CString("test-client")
	defer C.free(unsafe.Pointer(cTable))
	defer C.free(unsafe.Pointer(cID))
	// A wrong secret must come back as a typed, non-retryable error value.
	bad := C.CString("not-the-secret")
	var s *C.zerobus_stream
	err := takeErr(C.zb_stream_create(api, sdk, cTable, cID, bad, opts, &s, &e), e)
	C.free(unsafe.Pointer(bad))
	var zerr *Error
	if !errors.As(err, &zerr) || zerr.Name != "ZEROBUS_ERR_UNAUTHENTICATED" || zerr.Retryable || s != nil {
		return fmt.Errorf("wrong secret: want UNAUTHENTICATED, got %v", err)
	}
	secret := C.CString("test-secret")
	defer C.free(unsafe.Pointer(secret))
	if err := takeErr(C.zb_stream_create(api, sdk, cTable, cID, secret, opts, &s, &e), e); err != nil {
		return err
	}
	defer C.zb_destroy(api, s)

	ctx, cancelCtx := context.WithCancel(context.Background())
	// Cancelling the drain: end the context, then wake the poll blocked in C.
	cancel := func() error {
		cancelCtx()
		if st := C.zb_wake(api, s); st != C.ZEROBUS_OK {
			return fmt.Errorf("zerobus_stream_wake: %d", st)
		}
		return nil
	}
	acks := make(chan ackRange, 1024)
	fail := make(chan error, 1)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		drainAcks(ctx, s, acks, fail)
	}()
	// No goroutine may be inside a call on s when it is destroyed (deferred above).
	defer func() {
		cancel()
		<-drained
	}()

	for i := 0; i < n; i++ {
		rec := []byte(fmt.Sprintf(`{"id":%d,"lang":"go"}`, i))
		var off C.int64_t
		// Go memory without Go pointers may be passed for the call; the library copies it.
		st := C.zb_ingest(api, s, unsafe.Pointer(&rec[0]), C.size_t(len(rec)), &off, &e)
		if err := takeErr(st, e); err != nil {
			return err
		}
		if int64(off) != int64(i) {
			return fmt.Errorf("ingest %d returned offset %d", i, off)
		}
	}
	next, ranges := int64(0), 0
	deadline := time.After(60 * time.Second)
	for next < n {
		select {
		case r, ok := <-acks:
			if !ok {
				return fmt.Errorf("ack drain stopped at %d", next)
			}
			if r.first != next || r.last < r.first {
				return fmt.Errorf("ack range %d..%d, expected to start at %d", r.first, r.last, next)
			}
			next = r.last + 1
			ranges++
		case err := <-fail:
			return err
		case <-deadline:
			return fmt.Errorf("timed out with acks up to %d", next-1)
		}
	}
	// Every ack is in: the drain goroutine is now blocked in poll_events(-1).
	// Cancelling must end it promptly, through zerobus_stream_wake.
	time.Sleep(50 * time.Millisecond)
	t0 := time.Now()
	if err := cancel(); err != nil {
		return err
	}
	select {
	case <-drained:
	case <-time.After(5 * time.Second):
		return fmt.Errorf("the blocked poll_events(-1) did not return 5 s after zerobus_stream_wake")
	}
	woke := time.Since(t0)
	for range acks { // nothing else may have been acked
		return fmt.Errorf("ack beyond offset %d", n-1)
	}
	if next != n {
		return fmt.Errorf("acked %d offsets", next)
	}
	if err := takeErr(C.zb_flush(api, s, &e), e); err != nil {
		return err
	}
	var stats C.zerobus_stream_stats
	if err := takeErr(C.zb_stats(api, s, &stats), nil); err != nil {
		return err
	}
	if stats.records_acked != n || stats.acked_offset != n-1 || stats.inflight_records != 0 {
		return fmt.Errorf("stats: acked %d, acked_offset %d, inflight %d", stats.records_acked,
			stats.acked_offset, stats.inflight_records)
	}
	if err := takeErr(C.zb_close(api, s, &e), e); err != nil {
		return err
	}
	if C.zb_state(api, s) != C.ZEROBUS_STATE_CLOSED {
		return fmt.Errorf("state after close: %d", C.zb_state(api, s))
	}
	fmt.Printf("go: %d acks in order, offsets 0..%d, in %d ACK ranges via poll_events on a goroutine; "+
		"cancelled its blocked poll with zerobus_stream_wake in %v\n", next, n-1, ranges, woke.Round(time.Microsecond))
	return nil
}

func main() {
	root, _ := filepath.Abs("../../..")
	build := os.Getenv("BUILD")
	if build == "" {
		build = filepath.Join(root, "build", "plain")
	}
	lib := flag.String("lib", filepath.Join(build, "src", "libzerobus.so.1"), "libzerobus.so.1 to dlopen")
	server := flag.String("server", filepath.Join(build, "server", "zerobus-local"), "zerobus-local binary")
	flag.Parse()

	cLib := C.CString(*lib)
	var why *C.char
	api = C.zb_load(cLib, &why)
	C.free(unsafe.Pointer(cLib))
	if api == nil {
		fmt.Println("go: FAILED: cannot load", *lib+":", C.GoString(why))
		os.Exit(1)
	}
	if C.zb_abi_version(api) != 1 {
		fmt.Println("go: FAILED: abi_version", C.zb_abi_version(api))
		os.Exit(1)
	}
	tmp, err := os.MkdirTemp("", "zerobus-abi-go")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(tmp)
	db := filepath.Join(tmp, "go.db")
	cmd, endpoint, workspace, err := startServer(*server, db)
	if err != nil {
		fmt.Println("go: FAILED:", err)
		os.Exit(1)
	}
	runErr := run(endpoint, workspace)
	cmd.Process.Signal(syscall.SIGTERM)
	waitErr := cmd.Wait()
	if runErr != nil {
		fmt.Println("go: FAILED:", runErr)
		os.Exit(1)
	}
	if waitErr != nil {
		fmt.Println("go: FAILED: zerobus-local exit:", waitErr)
		os.Exit(1)
	}
	out, err := exec.Command("sqlite3", db,
		fmt.Sprintf(`SELECT count(*), group_concat(id) FROM (SELECT id FROM "%s" ORDER BY rowid)`, table)).Output()
	if err != nil {
		fmt.Println("go: FAILED: sqlite3:", err)
		os.Exit(1)
	}
	fields := strings.SplitN(strings.TrimSpace(string(out)), "|", 2)
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprint(i)
	}
	if len(fields) != 2 || fields[0] != fmt.Sprint(n) || fields[1] != strings.Join(want, ",") {
		fmt.Printf("go: FAILED: stored rows %q, expected %d with ids 0..%d in order\n", fields[0], n, n-1)
		os.Exit(1)
	}
	fmt.Printf("go: stored rows %s, ids 0..%d in order\n", fields[0], n-1)
}
