package main

// The lean reader: a minimal HTTP/2 gRPC client written on x/net's framer,
// so that the reading side costs as little as possible and the figure is the
// plugin's own throughput. Control messages use integration-grpc's protobuf
// types; Open streams are only parsed for their gRPC message lengths and
// counted, never copied.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	gconn "github.com/PlakarKorp/integration-grpc"
	grpcimporter "github.com/PlakarKorp/integration-grpc/importer"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"
)

const leanWindow = 1 << 30

type leanStream struct {
	path     string
	buf      bytes.Buffer // control streams: whole messages
	count    bool         // Open streams: count payload bytes only
	need     int          // bytes left in the current message (count mode)
	hdr      []byte       // partial 5-byte prefix (count mode)
	payload  int64
	status   string
	message  string
	done     chan struct{}
	credit   uint32
	messages chan []byte
}

type leanClient struct {
	mu      sync.Mutex
	fr      *http2.Framer
	w       *bufio.Writer
	enc     *hpack.Encoder
	hbuf    bytes.Buffer
	next    uint32
	streams map[uint32]*leanStream
}

func (c *leanClient) flush() { c.w.Flush() }

func (c *leanClient) open(path string, count bool) (uint32, *leanStream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.next
	c.next += 2
	s := &leanStream{path: path, count: count, done: make(chan struct{}), messages: make(chan []byte, 1024)}
	c.streams[id] = s
	c.hbuf.Reset()
	for _, kv := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", path}, {":authority", "localhost"}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		c.enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true})
	c.flush()
	return id, s
}

func (c *leanClient) send(id uint32, m proto.Message, end bool) {
	b, _ := proto.Marshal(m)
	msg := make([]byte, 5+len(b))
	binary.BigEndian.PutUint32(msg[1:], uint32(len(b)))
	copy(msg[5:], b)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fr.WriteData(id, end, msg)
	c.flush()
}

func (c *leanClient) closeSend(id uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fr.WriteData(id, true, nil)
	c.flush()
}

func (c *leanClient) readLoop() error {
	dec := hpack.NewDecoder(4096, nil)
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.mu.Lock()
				c.fr.WriteSettingsAck()
				c.flush()
				c.mu.Unlock()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				c.mu.Lock()
				c.fr.WritePing(true, f.Data)
				c.flush()
				c.mu.Unlock()
			}
		case *http2.DataFrame:
			c.mu.Lock()
			s := c.streams[f.StreamID]
			c.mu.Unlock()
			data := f.Data()
			if s != nil {
				if s.count {
					for len(data) > 0 {
						if s.need == 0 {
							n := min(5-len(s.hdr), len(data))
							s.hdr = append(s.hdr, data[:n]...)
							data = data[n:]
							if len(s.hdr) < 5 {
								break
							}
							s.need = int(binary.BigEndian.Uint32(s.hdr[1:]))
							s.hdr = s.hdr[:0]
							// OpenResponse{chunk}: tag, varint length, bytes.
							s.payload -= int64(1 + varintLen(s.need-1))
						}
						n := min(s.need, len(data))
						s.payload += int64(n)
						s.need -= n
						data = data[n:]
					}
				} else {
					s.buf.Write(data)
					for s.buf.Len() >= 5 {
						b := s.buf.Bytes()
						n := int(binary.BigEndian.Uint32(b[1:5]))
						if len(b) < 5+n {
							break
						}
						s.messages <- append([]byte(nil), b[5:5+n]...)
						s.buf.Next(5 + n)
					}
				}
				s.credit += uint32(len(f.Data()))
			}
			if s != nil && s.credit > 1<<20 {
				c.mu.Lock()
				c.fr.WriteWindowUpdate(0, s.credit)
				c.fr.WriteWindowUpdate(f.StreamID, s.credit)
				c.flush()
				c.mu.Unlock()
				s.credit = 0
			}
			if f.StreamEnded() && s != nil {
				s.status = "0"
				close(s.messages)
				close(s.done)
			}
		case *http2.HeadersFrame:
			fields, err := dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				return err
			}
			c.mu.Lock()
			s := c.streams[f.StreamID]
			c.mu.Unlock()
			if s == nil {
				continue
			}
			for _, hf := range fields {
				switch hf.Name {
				case "grpc-status":
					s.status = hf.Value
				case "grpc-message":
					s.message = hf.Value
				}
			}
			if f.StreamEnded() {
				close(s.messages)
				close(s.done)
			}
		case *http2.RSTStreamFrame:
			c.mu.Lock()
			s := c.streams[f.StreamID]
			c.mu.Unlock()
			if s != nil {
				s.status = "reset"
				close(s.messages)
				close(s.done)
			}
		}
	}
}

// varintLen is the length of the protobuf varint of the chunk's length, given
// the message length minus the tag byte: found by trying each size.
func varintLen(rest int) int {
	for n := 1; n < 10; n++ {
		if (rest-n) < 1<<(7*n) {
			return n
		}
	}
	return 10
}

func (s *leanStream) err() error {
	if s.status != "0" {
		return fmt.Errorf("%s: status %s: %s", s.path, s.status, s.message)
	}
	return nil
}

func unaryCall(c *leanClient, path string, req proto.Message, res proto.Message) error {
	id, s := c.open(path, false)
	c.send(id, req, true)
	<-s.done
	if err := s.err(); err != nil {
		return err
	}
	for m := range s.messages {
		return proto.Unmarshal(m, res)
	}
	return fmt.Errorf("%s: no response", path)
}

func runLean(plugin, protoName string, config map[string]string) error {
	cmd := exec.Command(plugin)
	cmd.Stderr = os.Stderr
	w, _ := cmd.StdinPipe()
	r, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64*1024)
	bw.WriteString(http2.ClientPreface)
	c := &leanClient{w: bw, next: 1, streams: map[uint32]*leanStream{}}
	c.fr = http2.NewFramer(bw, bufio.NewReaderSize(r, 1<<20))
	c.fr.ReadMetaHeaders = nil
	c.enc = hpack.NewEncoder(&c.hbuf)
	c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: leanWindow})
	c.fr.WriteWindowUpdate(0, leanWindow)
	c.flush()
	readErr := make(chan error, 1)
	go func() { readErr <- c.readLoop() }()

	var initRes grpcimporter.InitResponse
	if err := unaryCall(c, "/importer.Importer/Init", &grpcimporter.InitRequest{
		Options: &grpcimporter.Options{Maxconcurrency: 4}, Proto: protoName, Config: config,
	}, &initRes); err != nil {
		return err
	}
	start := time.Now()
	impID, imp := c.open("/importer.Importer/Import", false)
	var wg sync.WaitGroup
	var total int64
	var mu sync.Mutex
	var firstErr error
	for m := range imp.messages {
		var res grpcimporter.ImportResponse
		if err := proto.Unmarshal(m, &res); err != nil {
			return err
		}
		if res.Finished {
			break
		}
		rec := res.Record
		if !rec.HasReader || rec.Error != "" {
			c.send(impID, &grpcimporter.ImportRequest{Result: &gconn.Result{Header: rec}}, false)
			continue
		}
		wg.Add(1)
		go func(rec *gconn.Record) {
			defer wg.Done()
			id, s := c.open("/importer.Importer/Open", true)
			c.send(id, &grpcimporter.OpenRequest{Record: &gconn.Record{Pathname: rec.Pathname}}, true)
			<-s.done
			result := &gconn.Result{Header: rec}
			mu.Lock()
			total += s.payload
			if err := s.err(); err != nil {
				result.Error = err.Error()
				if firstErr == nil {
					firstErr = err
				}
			}
			mu.Unlock()
			c.send(impID, &grpcimporter.ImportRequest{Result: result}, false)
		}(rec)
	}
	wg.Wait()
	c.closeSend(impID)
	<-imp.done
	if err := imp.err(); err != nil {
		return err
	}
	elapsed := time.Since(start).Seconds()
	rss, cpu := meter(cmd.Process.Pid)
	var closeRes grpcimporter.CloseResponse
	if err := unaryCall(c, "/importer.Importer/Close", &grpcimporter.CloseRequest{}, &closeRes); err != nil {
		return err
	}
	w.Close()
	io.Copy(io.Discard, r)
	cmd.Wait()
	if firstErr != nil {
		return firstErr
	}
	fmt.Printf("{\"bytes\":%d,\"seconds\":%s,\"peakRssBytes\":%d,\"cpuSeconds\":%s}\n",
		total, strconv.FormatFloat(elapsed, 'f', 3, 64), rss, strconv.FormatFloat(cpu, 'f', 2, 64))
	return nil
}
