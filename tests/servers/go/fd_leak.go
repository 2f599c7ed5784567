// fd_leak.go - DEFECT: every session leaks one file descriptor.
//
// Like ok_goroutine.go, but each session opens /dev/null (say, a log it meant to write) and
// keeps it in a global list it never empties, so the descriptor is never closed (an *os.File
// that is still referenced is never closed by the garbage collector's finalizer either). The
// connection itself is closed correctly.
//
// Usage: fd_leak PORT [ok|echo]
package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
)

const msgMax = 1024     // ok profile: one read of up to 1024 bytes per message
const echoChunk = 65536 // echo profile: read size

var reply = []byte("OK!!!")

var logsMu sync.Mutex
var logs []*os.File // DEFECT: grows by one open file per session, never closed

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 || (len(os.Args) == 3 && os.Args[2] != "ok" && os.Args[2] != "echo") {
		fmt.Fprintln(os.Stderr, "usage: fd_leak PORT [ok|echo]")
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
	if f, err := os.OpenFile("/dev/null", os.O_WRONLY, 0); err == nil {
		logsMu.Lock()
		logs = append(logs, f)
		logsMu.Unlock()
	}
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
