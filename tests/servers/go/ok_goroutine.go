// ok_goroutine.go - correct server, a goroutine per connection (the way Go servers are written).
//
// Design: the main goroutine accepts and starts a goroutine per connection, which serves the
// session and closes its connection. Go's runtime multiplexes goroutines on a few threads with
// its own epoll (the netpoller), starts threads when it likes (a goroutine blocked in a system
// call, the garbage collector) and keeps them: the kit sees neither a thread nor a process per
// connection, and must judge the server by what it does, not by its thread count.
//
// Usage: ok_goroutine PORT [ok|echo]
package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
)

const msgMax = 1024     // ok profile: one read of up to 1024 bytes per message
const echoChunk = 65536 // echo profile: read size

var reply = []byte("OK!!!")

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 || (len(os.Args) == 3 && os.Args[2] != "ok" && os.Args[2] != "echo") {
		fmt.Fprintln(os.Stderr, "usage: ok_goroutine PORT [ok|echo]")
		os.Exit(2)
	}
	port, err := strconv.Atoi(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad port:", os.Args[1])
		os.Exit(2)
	}
	echo := len(os.Args) == 3 && os.Args[2] == "echo"
	// net.Listen sets SO_REUSEADDR and a backlog of SOMAXCONN.
	listener, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "listening on", listener.Addr())
	for {
		conn, err := listener.Accept()
		if err != nil { // EMFILE, ECONNABORTED: report and go on accepting
			fmt.Fprintln(os.Stderr, "accept:", err)
			continue
		}
		go session(conn, echo)
	}
}

// session serves one connection to its end (exit, EOF or an error) and closes it.
func session(conn net.Conn, echo bool) {
	defer conn.Close()
	size := msgMax
	if echo {
		size = echoChunk
	}
	buf := make([]byte, size)
	for {
		n, err := conn.Read(buf)
		if n == 0 || err != nil { // EOF or a reset: this session only
			return
		}
		if echo {
			if _, err := conn.Write(buf[:n]); err != nil {
				return
			}
			continue
		}
		if _, err := conn.Write(reply); err != nil {
			return
		}
		if bytes.Equal(buf[:n], []byte("exit")) {
			return
		}
	}
}
