// The sequential client of bench_proxy_vs_grpc_gateway.py: one connection, one warm-up call,
// then N timed calls one after another; prints each call's latency in µs, one a line.
//
//	client http 127.0.0.1:PORT /v1/echo/abc N   keep-alive HTTP/1.1 GETs on a raw socket
//	client grpc 127.0.0.1:PORT abc N            GetEcho with grpc-go (the floor)
//
// The HTTP side is a raw socket, not net/http, so that the client adds as little as it can to
// the gateway's latency; both gateways get the same client.
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"

	pb "restmonbench/echo"
)

func main() {
	mode, address, arg := os.Args[1], os.Args[2], os.Args[3]
	n, err := strconv.Atoi(os.Args[4])
	if err != nil {
		log.Fatal(err)
	}
	var call func() error
	switch mode {
	case "http":
		call = httpCaller(address, arg)
	case "grpc":
		call = grpcCaller(address, arg)
	default:
		log.Fatalf("unknown mode %q", mode)
	}
	if err := call(); err != nil { // connected, and the connection accepted, before timing
		log.Fatal(err)
	}
	out := bufio.NewWriter(os.Stdout)
	samples := make([]time.Duration, n)
	for i := range samples {
		start := time.Now()
		if err := call(); err != nil {
			log.Fatal(err)
		}
		samples[i] = time.Since(start)
	}
	for _, sample := range samples {
		fmt.Fprintf(out, "%.1f\n", float64(sample.Nanoseconds())/1000)
	}
	out.Flush()
}

func httpCaller(address, path string) func() error {
	conn, err := net.Dial("tcp", address)
	if err != nil {
		log.Fatal(err)
	}
	request := []byte("GET " + path + " HTTP/1.1\r\nHost: bench\r\n\r\n")
	reader := textproto.NewReader(bufio.NewReader(conn))
	return func() error {
		if _, err := conn.Write(request); err != nil {
			return err
		}
		status, err := reader.ReadLine()
		if err != nil {
			return err
		}
		if !strings.HasPrefix(status, "HTTP/1.1 200") {
			return fmt.Errorf("unexpected response: %q", status)
		}
		header, err := reader.ReadMIMEHeader()
		if err != nil {
			return err
		}
		length, err := strconv.Atoi(header.Get("Content-Length"))
		if err != nil {
			return fmt.Errorf("no Content-Length: %v", header)
		}
		_, err = io.CopyN(io.Discard, reader.R, int64(length))
		return err
	}
}

func grpcCaller(address, id string) func() error {
	conn, err := grpc.Dial(address, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		log.Fatal(err)
	}
	client := pb.NewEchoServiceClient(conn)
	request := &pb.GetEchoRequest{Id: id}
	return func() error {
		_, err := client.GetEcho(context.Background(), request)
		return err
	}
}
