package tern

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// FsyncPolicy is when the file store calls fdatasync.
type FsyncPolicy int

// The fsync policies.
const (
	// FsyncBatch syncs once per batch that asks for durability (default).
	FsyncBatch FsyncPolicy = C.TERN_FSYNC_BATCH
	// FsyncAlways syncs once per batch.
	FsyncAlways FsyncPolicy = C.TERN_FSYNC_ALWAYS
	// FsyncNever leaves it to the OS; a power loss may lose confirmed
	// messages.
	FsyncNever FsyncPolicy = C.TERN_FSYNC_NEVER
)

// FileStoreOptions configures the file store. The zero value takes the
// library's defaults.
type FileStoreOptions struct {
	// Fsync is when to call fdatasync.
	Fsync FsyncPolicy
	// Strict refuses to open on damage other than a torn tail.
	Strict bool
	// SegmentSize starts a new segment before a batch would pass it; 0
	// takes 64 MiB.
	SegmentSize int64
	// CompactGarbage compacts when dead bytes exceed this percent of the
	// log; 0 takes 50. NoCompact turns automatic compaction off.
	CompactGarbage int
	NoCompact      bool
	// SyncThread fsyncs on a thread of the store's own; Hub.Run completes
	// the batches.
	SyncThread bool
}

// FileStore is the shipped store (tern_store_file): an append-only log of
// checksummed records in segment files in one directory. Attach it to an
// empty hub with Hub.SetStore; close it after the hub.
type FileStore struct {
	mu     sync.Mutex
	p      *C.tern_store_file // nil once closed
	hub    *hubState          // the hub it was attached to
	locked *hubState          // the hub lock() took, if any
	fd     int
}

// OpenFileStore opens (creating it if missing) the store in dir, locks it
// and recovers what it holds. Errors: ErrInvalid, ErrNoMem, ErrState (the
// directory is locked), ErrStore (a system call failed, or Strict found
// damage; Error.Detail says which).
func OpenFileStore(dir string, o *FileStoreOptions) (*FileStore, error) {
	var opts C.tern_store_file_options
	C.tern_store_file_options_default_versioned(C.TERN_STORE_FILE_OPTIONS_VERSION, &opts)
	if o != nil {
		opts.fsync = C.int(o.Fsync)
		if o.Strict {
			opts.strict = 1
		}
		if o.SegmentSize > 0 {
			opts.segment_size = C.size_t(o.SegmentSize)
		}
		if o.NoCompact {
			opts.compact_garbage = 0
		} else if o.CompactGarbage > 0 {
			opts.compact_garbage = C.uint32_t(o.CompactGarbage)
		}
		if o.SyncThread {
			opts.sync_thread = 1
		}
	}
	if !cstrCheck(dir) {
		return nil, errOp(C.TERN_ERR_INVALID, "open file store", "NUL in path")
	}
	cdir := C.CString(dir)
	defer C.free(unsafe.Pointer(cdir))
	// The reason of a failed open is kept per thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var p *C.tern_store_file
	if rc := C.tern_store_file_open(&p, cdir, &opts, nil); rc != 0 {
		e := &Error{Code: int(rc), Op: "open file store"}
		e.Detail = C.GoString(C.tern_store_file_error(nil))
		return nil, e
	}
	fs := &FileStore{p: p, fd: int(C.tern_store_file_fd(p))}
	runtime.SetFinalizer(fs, (*FileStore).finalize)
	return fs, nil
}

// lock locks the store and, while it is attached to an open hub, that
// hub (the store is used on the hub's thread only). Lock order: the
// store's mutex, then the hub's.
func (fs *FileStore) lock() bool {
	fs.mu.Lock()
	if fs.p == nil {
		fs.mu.Unlock()
		return false
	}
	fs.locked = fs.lockHub()
	return true
}

func (fs *FileStore) unlock() {
	if fs.locked != nil {
		fs.locked.mu.Unlock()
		fs.locked = nil
	}
	fs.mu.Unlock()
}

// lockHub returns the open hub the store is attached to, locked, or nil;
// a hub closed since is forgotten. The caller holds fs.mu.
func (fs *FileStore) lockHub() *hubState {
	s := fs.hub
	if s == nil {
		return nil
	}
	s.mu.Lock()
	if s.p == nil {
		s.mu.Unlock()
		fs.hub = nil
		return nil
	}
	return s
}

// SetStore attaches the file store to the hub, which must be empty (no
// sessions, connections or store: else ErrState), and restores what the
// store holds: sessions, pending messages, dedup ids and the epoch. The
// wall clock is set first (time.Now), so TTLs survive restarts. From then
// on the hub appends its changes in batches (HandleExpiry, Flush).
func (h *Hub) SetStore(fs *FileStore) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.p == nil {
		return errOp(C.TERN_ERR_CLOSED, "set store", "store closed")
	}
	if s := fs.lockHub(); s != nil {
		s.mu.Unlock()
		return errOp(C.TERN_ERR_STATE, "set store", "store attached to a hub")
	}
	s := h.s
	if err := s.lock("set store"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	now := s.now()
	if rc := C.tern_hub_set_wallclock(s.p, now, C.uint64_t(time.Now().UnixNano())); rc != 0 {
		return newError(rc, "set wallclock")
	}
	s.wallSet = true
	m := C.tern_store_file_methods_versioned(C.TERN_STORE_METHODS_VERSION)
	rc := C.tern_hub_set_store(s.p, m, unsafe.Pointer(fs.p), now)
	if rc != 0 && !s.storeAttached() {
		s.after(true)
		e := &Error{Code: int(rc), Op: "set store"}
		e.Detail = C.GoString(C.tern_store_file_error(fs.p))
		return e
	}
	fs.hub = s
	s.store = fs
	s.after(true)
	if rc != 0 {
		return newError(rc, "set store")
	}
	return nil
}

// storeAttached says whether a failed tern_hub_set_store still attached
// the store: when its first batch after loading failed. The hub was empty
// and storeless before, so a batch handed over means the store is on.
func (s *hubState) storeAttached() bool {
	var st C.tern_stats
	C.tern_hub_get_stats(s.p, &st, C.sizeof_tern_stats)
	return st.store_batches > 0
}

// FileStoreStats describes a file store.
type FileStoreStats struct {
	Records         uint64 // records in the log, live or dead
	Live            uint64 // live keys
	Bytes           uint64 // bytes of all segment files
	GarbageBytes    uint64 // bytes of dead records and damage
	Segments        uint64 // segment files
	Skipped         uint64 // damaged regions skipped at open
	Truncated       uint64 // bytes of torn tail truncated at open
	Compactions     uint64 // since open
	Fsyncs          uint64 // fsync and fdatasync calls since open
	SkippedBytes    uint64 // bytes in the skipped regions
	IndexBytes      uint64 // memory of the in-memory key index
	CompactFailures uint64 // automatic compactions that failed
	SkippedFiles    uint64 // segment names that were no regular files
}

// Stats returns the store's statistics (zero once closed).
func (fs *FileStore) Stats() FileStoreStats {
	if !fs.lock() {
		return FileStoreStats{}
	}
	defer fs.unlock()
	var st C.tern_store_file_stats
	C.tern_store_file_get_stats(fs.p, &st, C.sizeof_tern_store_file_stats)
	return FileStoreStats{
		Records: uint64(st.records), Live: uint64(st.live),
		Bytes: uint64(st.bytes), GarbageBytes: uint64(st.garbage_bytes),
		Segments: uint64(st.segments), Skipped: uint64(st.skipped),
		Truncated: uint64(st.truncated), Compactions: uint64(st.compactions),
		Fsyncs: uint64(st.fsyncs), SkippedBytes: uint64(st.skipped_bytes),
		IndexBytes: uint64(st.index_bytes), CompactFailures: uint64(st.compact_failures),
		SkippedFiles: uint64(st.skipped_files),
	}
}

// LastError describes the store's last failure ("fdatasync 000003.log:
// Input/output error"), or what the open skipped or moved aside, or "".
func (fs *FileStore) LastError() string {
	if !fs.lock() {
		return ""
	}
	defer fs.unlock()
	return C.GoString(C.tern_store_file_error(fs.p))
}

// Sync makes everything appended so far durable.
func (fs *FileStore) Sync() error {
	if !fs.lock() {
		return errOp(C.TERN_ERR_CLOSED, "store sync", "store closed")
	}
	defer fs.unlock()
	return fs.err(C.go_store_sync(fs.p), "store sync")
}

// Compact rewrites the log to its live records.
func (fs *FileStore) Compact() error {
	if !fs.lock() {
		return errOp(C.TERN_ERR_CLOSED, "store compact", "store closed")
	}
	defer fs.unlock()
	return fs.err(C.go_store_compact(fs.p), "store compact")
}

func (fs *FileStore) err(rc C.int, op string) error {
	if rc >= 0 {
		return nil
	}
	return &Error{Code: int(rc), Op: op, Detail: C.GoString(C.tern_store_file_error(fs.p))}
}

// Close closes the store: what was appended is fsynced (unless
// FsyncNever) and the lock released. Close the hub first: Close returns
// ErrState while the store is attached to an open hub. Idempotent.
func (fs *FileStore) Close() error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.p == nil {
		return nil
	}
	if s := fs.lockHub(); s != nil {
		s.mu.Unlock()
		return errOp(C.TERN_ERR_STATE, "close store", "the hub is still open")
	}
	C.tern_store_file_close(fs.p)
	fs.p = nil
	runtime.SetFinalizer(fs, nil)
	return nil
}

// finalize closes an unreachable store, and the hub it is attached to
// first (that hub is unreachable too).
func (fs *FileStore) finalize() {
	fs.mu.Lock()
	if s := fs.lockHub(); s != nil {
		s.closeLocked()
		s.mu.Unlock()
		fs.hub = nil
	}
	fs.mu.Unlock()
	fs.Close()
}
