// nl_request in Go: a client sends a request to a netlink port whose
// server never replies, then blocks in recvfrom for the reply, on a locked
// OS thread. The Go runtime's own locks (its scheduler, channels,
// sync.Mutex) are invisible from outside; the blocked system call is not.
//
// Prints "nl_request: client on netlink protocol 2 port N" and hangs.
package main

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
)

const netlinkUsersock = 2

func socket() (int, uint32) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW, netlinkUsersock)
	if err != nil {
		fmt.Fprintln(os.Stderr, "socket:", err)
		os.Exit(1)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		fmt.Fprintln(os.Stderr, "bind:", err)
		os.Exit(1)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		fmt.Fprintln(os.Stderr, "getsockname:", err)
		os.Exit(1)
	}
	return fd, sa.(*syscall.SockaddrNetlink).Pid
}

func main() {
	_, serverPort := socket() // never replies
	client, port := socket()
	fmt.Printf("nl_request: client on netlink protocol %d port %d\n", netlinkUsersock, port)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		req := []byte{16, 0, 0, 0, 0x10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}
		to := &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK, Pid: serverPort}
		if err := syscall.Sendto(client, req, 0, to); err != nil {
			fmt.Fprintln(os.Stderr, "sendto:", err)
			os.Exit(1)
		}
		buf := make([]byte, 4096)
		syscall.Recvfrom(client, buf, 0) // the reply never comes
		close(done)
	}()
	<-done
}
