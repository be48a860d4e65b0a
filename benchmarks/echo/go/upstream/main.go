// The grpc-go upstream of bench_proxy_vs_grpc_gateway.py: EchoService on 127.0.0.1:PORT.
package main

import (
	"context"
	"log"
	"net"
	"os"

	"google.golang.org/grpc"

	pb "restmonbench/echo"
)

type server struct{}

func (server) GetEcho(ctx context.Context, req *pb.GetEchoRequest) (*pb.Echo, error) {
	return &pb.Echo{Id: req.Id, Message: "hello, " + req.Id, Count: 42, Tags: []string{"a", "b"}}, nil
}

func (server) CreateEcho(ctx context.Context, req *pb.Echo) (*pb.Echo, error) {
	return &pb.Echo{Id: req.Id, Message: req.Message, Count: req.Count + 1, Tags: req.Tags}, nil
}

func main() {
	listener, err := net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	grpcServer := grpc.NewServer()
	pb.RegisterEchoServiceServer(grpcServer, server{})
	log.Fatal(grpcServer.Serve(listener))
}
