package tern_test

import (
	"syscall"
	"testing"
	"time"

	"libtern.dev/bindings/go/tern"
)

// ackFrame encodes the binary framing's ACK of seq (tern-protocol(7)):
// type 0x04, body length, seq as a varint. The receiver's side is played
// cheaply, as bench/core does in C: its cost is not the binding's.
func ackFrame(buf []byte, seq uint64) []byte {
	var body [8]byte
	var n int
	switch {
	case seq < 0x40:
		body[0], n = byte(seq), 1
	case seq < 0x4000:
		body[0], body[1], n = byte(0x40|seq>>8), byte(seq), 2
	case seq < 0x40000000:
		x := uint32(seq) | 0x80000000
		body[0], body[1], body[2], body[3], n = byte(x>>24), byte(x>>16), byte(x>>8), byte(x), 4
	default:
		x := seq | 0xc000000000000000
		for i := 0; i < 8; i++ {
			body[i] = byte(x >> (56 - 8*i))
		}
		n = 8
	}
	buf = append(buf[:0], 0x04, byte(n))
	return append(buf, body[:n]...)
}

const benchBatch = 256 // the default in-flight window

// single makes runBatches publish with Hub.Publish, one call per message.
var single bool

// benchPayload is the benchmark's message: 64 bytes, NORMAL.
var benchPayload = []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")

// BenchmarkPublishWriteAck measures publish -> write -> ack through the
// binding with batching: PublishBatch queues 256 messages in one call,
// one Fill writes all their frames, one ACK acknowledges them.
func BenchmarkPublishWriteAck(b *testing.B) {
	b.Run("binary", func(b *testing.B) {
		h := newHub(b, nil)
		conn, err := h.NewConn()
		if err != nil {
			b.Fatal(err)
		}
		cl, _ := tern.NewClient("bench", nil, nil)
		defer cl.Close()
		cl.NextEvent()
		cl.Connect()
		shuttle(b, cl, conn)
		runBatches(b, h, "bench", func(seq uint64, ack []byte) {
			if _, err := conn.Write(ackFrame(ack, seq)); err != nil {
				b.Fatal(err)
			}
		}, conn)
	})
	b.Run("binary-unbatched-publish", func(b *testing.B) {
		// The same, but each message published with its own Publish
		// call: the per-call cost of the binding (one cgo call, the
		// hub's mutex, the result's id copied out).
		h := newHub(b, nil)
		conn, err := h.NewConn()
		if err != nil {
			b.Fatal(err)
		}
		cl, _ := tern.NewClient("bench", nil, nil)
		defer cl.Close()
		cl.NextEvent()
		cl.Connect()
		shuttle(b, cl, conn)
		single = true
		defer func() { single = false }()
		runBatches(b, h, "bench", func(seq uint64, ack []byte) {
			if _, err := conn.Write(ackFrame(ack, seq)); err != nil {
				b.Fatal(err)
			}
		}, conn)
	})
	b.Run("sse", func(b *testing.B) {
		h := newHub(b, nil)
		conn, err := h.NewStream(tern.StreamOptions{Framing: tern.FramingSSE, Key: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		runBatches(b, h, "bench", func(seq uint64, _ []byte) {
			if _, err := h.Ack("bench", seq); err != nil {
				b.Fatal(err)
			}
		}, conn)
	})
}

func runBatches(b *testing.B, h *tern.Hub, key string, ack func(uint64, []byte), conn *tern.Conn) {
	var batch tern.Batch
	msg := &tern.Message{Payload: benchPayload, Priority: tern.PriorityNormal}
	for i := 0; i < benchBatch; i++ {
		if err := batch.Add(key, msg); err != nil {
			b.Fatal(err)
		}
	}
	out := make([]byte, 256<<10)
	ackBuf := make([]byte, 0, 16)
	before := h.Stats()
	seq := uint64(0)
	b.SetBytes(int64(len(benchPayload)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	cpu0 := cpuTime()
	for done := 0; done < b.N; done += benchBatch {
		if single {
			for i := 0; i < benchBatch; i++ {
				if _, err := h.Publish(key, msg); err != nil {
					b.Fatal(err)
				}
			}
		} else if q, err := h.PublishBatch(&batch); err != nil || q != benchBatch {
			b.Fatalf("PublishBatch: %d %v", q, err)
		}
		n, err := conn.Fill(out)
		if err != nil || n == 0 {
			b.Fatalf("Fill: %d %v", n, err)
		}
		seq += benchBatch
		ack(seq, ackBuf)
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	st := h.Stats()
	acked := st.Acked - before.Acked
	if acked != seq || st.Messages != 0 {
		b.Fatalf("acked %d of %d, %d held", acked, seq, st.Messages)
	}
	b.ReportMetric(float64(acked)/elapsed.Seconds(), "msgs/s")
	// Per second of the process's CPU time: on a shared machine, wall
	// time also counts the other processes' turns.
	if cpu > 0 {
		b.ReportMetric(float64(acked)/cpu.Seconds(), "msgs/cpu-s")
	}
}

// cpuTime is the process's CPU time, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
