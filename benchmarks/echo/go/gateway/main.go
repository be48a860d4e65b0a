// grpc-gateway (1.x, Debian's) in front of the upstream: REST on 127.0.0.1:PORT, each call made
// on one grpc-go connection to UPSTREAM, as `restmon serve --upstream` does.
package main

import (
	"context"
	"log"
	"net/http"
	"os"

	"github.com/grpc-ecosystem/grpc-gateway/runtime"
	"google.golang.org/grpc"

	pb "restmonbench/echo"
)

func main() {
	port, upstream := os.Args[1], os.Args[2]
	mux := runtime.NewServeMux()
	options := []grpc.DialOption{grpc.WithInsecure()}
	err := pb.RegisterEchoServiceHandlerFromEndpoint(context.Background(), mux, upstream, options)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, mux))
}
