// Command tproxyapp is the application of the transparent-proxy
// end-to-end test (test/e2e/tproxy_test.go): a plain program that knows
// nothing of the mesh.
//
//	tproxyapp serve -name N [-http ADDR] [-tcp ADDR]   HTTP answers "N <path>"; TCP answers "N:" then echoes
//	tproxyapp get URL                                  prints the status and body of GET URL
//	tproxyapp tcp HOST:PORT LINE                       sends LINE, prints the first line answered
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: tproxyapp serve|get|tcp ...")
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2:])
	case "get":
		if len(os.Args) != 3 {
			fail("usage: tproxyapp get URL")
		}
		get(os.Args[2])
	case "tcp":
		if len(os.Args) != 4 {
			fail("usage: tproxyapp tcp HOST:PORT LINE")
		}
		tcp(os.Args[2], os.Args[3])
	default:
		fail("unknown command " + os.Args[1])
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(1)
}

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	name := fs.String("name", "app", "name in every answer")
	httpAddr := fs.String("http", "", "HTTP address")
	tcpAddr := fs.String("tcp", "", "TCP echo address")
	_ = fs.Parse(args)
	if *tcpAddr != "" {
		ln, err := net.Listen("tcp", *tcpAddr)
		if err != nil {
			fail(err.Error())
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					_, _ = io.WriteString(c, *name+":")
					_, _ = io.Copy(c, c)
				}()
			}
		}()
	}
	if *httpAddr == "" {
		select {}
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s\n", *name, r.URL.Path)
	})
	srv := &http.Server{Addr: *httpAddr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fail(srv.ListenAndServe().Error())
}

func get(url string) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fail(err.Error())
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s", resp.StatusCode, body)
	if resp.StatusCode != http.StatusOK {
		os.Exit(2)
	}
}

func tcp(addr, line string) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		fail(err.Error())
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		fail(err.Error())
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fail(fmt.Sprintf("read: %v (got %q)", err, got))
	}
	fmt.Print(got)
}
