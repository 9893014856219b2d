package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// demo is one run: its settings, its processes and its apps.
type demo struct {
	opts                  Options
	out                   io.Writer
	cpBin, dpBin, dataDir string
	hc                    *http.Client

	apiPort, dpServerPort int
	outboundPort          int
	cp                    *child
	apps                  []*app
	appLog                *syncWriter
	appErrs               chan error
	frontend              *sidecar
	sidecars              []*sidecar
}

// app is one in-process demo app and its HTTP server.
type app struct {
	name string
	port int
	srv  *http.Server
}

func (d *demo) logDir() string { return filepath.Join(d.dataDir, "logs") }

func (d *demo) apiURL() string { return "http://" + hostPort(d.apiPort) }

func (d *demo) frontendURL() string { return "http://" + hostPort(d.frontend.inboundPort) + "/" }

// start brings everything up in order: control plane, apps, sidecars, and
// waits until a request to the frontend makes it through the mesh.
func (d *demo) start(ctx context.Context, temporary bool) error {
	deadline := time.Now().Add(d.opts.ReadyTimeout)
	ports, err := d.pickPorts()
	if err != nil {
		return err
	}
	note := ""
	if temporary {
		note = " (temporary, removed when the demo stops; --data-dir keeps one)"
	}
	fmt.Fprintf(d.out, "Data dir: %s%s\nLogs:     %s\n\n", d.dataDir, note, d.logDir())

	fmt.Fprintf(d.out, "Starting the control plane (trellis-cp), API on %s ...\n", d.apiURL())
	if err := d.startCP(ports); err != nil {
		return err
	}
	cpReady := &check{what: d.cp.name, url: d.apiURL() + "/ready", proc: d.cp}
	if err := waitReady(ctx, d.hc, deadline, d.opts.ReadyTimeout, []*check{cpReady}); err != nil {
		return err
	}

	fmt.Fprintln(d.out, "Turning on mTLS (builtin CA, PERMISSIVE) with a MeshTrafficPermission allow-all for the default mesh ...")
	if err := d.secureMesh(ctx); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "Starting the apps (frontend and %d backend instance%s) and their sidecars (trellis-dp) ...\n",
		d.opts.Backends, plural(d.opts.Backends))
	if err := d.startApps(ports.next()); err != nil {
		return err
	}
	if err := d.startSidecars(ports); err != nil {
		return err
	}
	checks := make([]*check, 0, len(d.sidecars))
	for _, s := range d.sidecars {
		checks = append(checks, &check{what: s.proc.name, url: "http://" + hostPort(s.adminPort) + "/ready", proc: s.proc})
	}
	if err := waitReady(ctx, d.hc, deadline, d.opts.ReadyTimeout, checks); err != nil {
		return err
	}

	fmt.Fprintln(d.out, "Waiting for the frontend to reach the backend through the mesh ...")
	e2e := &check{what: "the frontend (through its sidecar, calling the backend through the mesh)", url: d.frontendURL(), proc: d.frontend.proc}
	return waitReady(ctx, d.hc, deadline, d.opts.ReadyTimeout, []*check{e2e})
}

// portList hands out reserved ports in order.
type portList []int

func (p *portList) next() int {
	v := (*p)[0]
	*p = (*p)[1:]
	return v
}

// pickPorts settles the API port and reserves every other port the demo
// needs, in the order start takes them: the DP server's, the HTTPS API's,
// the frontend's outbound port, then per sidecar an inbound and an admin
// port.
func (d *demo) pickPorts() (*portList, error) {
	n := 2 + 2*(d.opts.Backends+1) + 1
	free, err := freePorts(n + 1)
	if err != nil {
		return nil, err
	}
	switch {
	case d.opts.APIPort == 0:
		d.apiPort, free = free[n], free[:n]
	case portFree(d.opts.APIPort):
		d.apiPort, free = d.opts.APIPort, free[:n]
	case d.opts.APIPortFallback:
		d.apiPort, free = free[n], free[:n]
		fmt.Fprintf(d.out, "Note: port %d is in use (another control plane?), so the demo's API uses port %d.\n",
			d.opts.APIPort, d.apiPort)
	default:
		return nil, fmt.Errorf("--api-port %d: %s is in use; pick another port, or 0 for a free one",
			d.opts.APIPort, hostPort(d.opts.APIPort))
	}
	pl := portList(free)
	return &pl, nil
}

// startCP runs trellis-cp on the embedded SQLite store in the data dir,
// every listener on loopback; it takes the DP server's and the HTTPS
// API's ports from ports.
func (d *demo) startCP(ports *portList) error {
	d.dpServerPort = ports.next()
	env := append(inheritedEnv(),
		"TRELLIS_DATA_DIR="+d.dataDir,
		"TRELLIS_STORE_TYPE=sqlite",
		"TRELLIS_API_HTTP_ADDR="+hostPort(d.apiPort),
		"TRELLIS_API_HTTPS_ADDR="+hostPort(ports.next()),
		"TRELLIS_DP_SERVER_ADDR="+hostPort(d.dpServerPort),
	)
	var err error
	d.cp, err = startChild("the control plane (trellis-cp)", filepath.Join(d.logDir(), "trellis-cp.log"), d.cpBin, []string{"run"}, env)
	return err
}

// inheritedEnv is trellisctl's environment without TRELLIS_* settings,
// which could point the demo at another store or address.
func inheritedEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TRELLIS_") {
			env = append(env, kv)
		}
	}
	return env
}

// startApps serves the backend instances and the frontend in-process on
// free loopback ports; their requests are logged to logs/apps.log. The
// frontend calls the backend at 127.0.0.1:outboundPort, its sidecar's
// outbound listener.
func (d *demo) startApps(outboundPort int) error {
	f, err := os.OpenFile(filepath.Join(d.logDir(), "apps.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("creating the apps' log: %w", err)
	}
	d.appLog = &syncWriter{w: f, c: f}
	d.appErrs = make(chan error, d.opts.Backends+1)
	d.outboundPort = outboundPort
	for i := 1; i <= d.opts.Backends; i++ {
		name := BackendService + "-" + strconv.Itoa(i)
		if err := d.serveApp(name, Backend(name)); err != nil {
			return err
		}
	}
	return d.serveApp(FrontendService+"-1", Frontend("http://"+hostPort(d.outboundPort), nil))
}

// serveApp listens on a free loopback port and serves h there.
func (d *demo) serveApp(name string, h http.Handler) error {
	ln, err := net.Listen("tcp", loopback+":0")
	if err != nil {
		return fmt.Errorf("starting the %s app: %w", name, err)
	}
	a := &app{name: name, port: ln.Addr().(*net.TCPAddr).Port,
		srv: &http.Server{Handler: accessLog(name, d.appLog, h), ReadHeaderTimeout: 10 * time.Second}}
	d.apps = append(d.apps, a)
	go func() {
		if err := a.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			d.appErrs <- fmt.Errorf("the %s app stopped serving: %w", name, err)
		}
	}()
	return nil
}

// startSidecars writes the Dataplane files and a dataplane token per
// service, and starts one trellis-dp per app, in the order the apps were
// started (backends, then the frontend).
func (d *demo) startSidecars(ports *portList) error {
	frontendFile, backendFile, err := writeDataplaneFiles(filepath.Join(d.dataDir, "dataplanes"))
	if err != nil {
		return err
	}
	caCert := filepath.Join(d.dataDir, "certs", "dp-server.crt")
	tokenFiles := map[string]string{}
	for _, svc := range []string{BackendService, FrontendService} {
		if tokenFiles[svc], err = d.writeDataplaneToken(filepath.Join(d.dataDir, "tokens"), svc); err != nil {
			return err
		}
	}
	for _, a := range d.apps {
		s := &sidecar{name: a.name, file: backendFile, inboundPort: ports.next(), adminPort: ports.next(), tokenFile: tokenFiles[BackendService]}
		s.vars = map[string]string{"name": s.name, "port": portVar(s.inboundPort), "appPort": portVar(a.port)}
		if strings.HasPrefix(a.name, FrontendService) {
			s.file = frontendFile
			s.vars["backendPort"] = portVar(d.outboundPort)
			s.tokenFile = tokenFiles[FrontendService]
			d.frontend = s
		}
		s.proc, err = startChild("the "+s.name+" sidecar (trellis-dp)", filepath.Join(d.logDir(), "dp-"+s.name+".log"),
			d.dpBin, s.args(d.dpServerPort, caCert), inheritedEnv())
		if err != nil {
			return err
		}
		d.sidecars = append(d.sidecars, s)
	}
	return nil
}

// printSummary tells the user where everything is and what to try.
func (d *demo) printSummary() {
	w := d.out
	fmt.Fprintf(w, "\nThe Trellis demo is running.\n\n")
	fmt.Fprintf(w, "  Frontend, through its sidecar:  %s\n", d.frontendURL())
	fmt.Fprintf(w, "  Control plane API:              %s\n", d.apiURL())
	fmt.Fprintf(w, "  Logs:                           %s (trellis-cp.log, dp-<name>.log, apps.log)\n", d.logDir())
	fmt.Fprintf(w, "  Dataplane files:                %s\n\n", filepath.Join(d.dataDir, "dataplanes"))
	fmt.Fprintf(w, "The frontend calls the backend through its sidecar's outbound listener %s.\n", hostPort(d.outboundPort))
	if d.opts.Backends > 1 {
		fmt.Fprintf(w, "There are %d backend instances: repeat the request to see them take turns.\n", d.opts.Backends)
	}
	fmt.Fprintf(w, "\nTry:\n  curl %s\n  %s --api-url %s inspect dataplanes\n\nPress Ctrl-C to stop.\n",
		d.frontendURL(), d.opts.CtlCommand, d.apiURL())
}

// wait blocks until ctx ends (nil) or a process or app fails (its error).
func (d *demo) wait(ctx context.Context) error {
	exited := make(chan *child, 1+len(d.sidecars))
	watch := func(c *child) {
		go func() {
			select {
			case <-c.done:
				exited <- c
			case <-ctx.Done():
			}
		}()
	}
	watch(d.cp)
	for _, s := range d.sidecars {
		watch(s.proc)
	}
	select {
	case <-ctx.Done():
		fmt.Fprintln(d.out, "\nStopping the demo ...")
		return nil
	case c := <-exited:
		return c.describeFailure(c.name, "exited unexpectedly ("+c.exitReason()+")")
	case err := <-d.appErrs:
		return err
	}
}

// stop ends everything that was started: the sidecars first (so traffic
// stops coming in), then the apps, then the control plane. Each process
// gets SIGTERM and is killed if it has not exited 5 s later.
func (d *demo) stop() {
	var wg sync.WaitGroup
	for _, s := range d.sidecars {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.proc.stop(stopGrace) {
				fmt.Fprintf(d.out, "Killed %s: it did not stop within %s.\n", s.proc.name, stopGrace)
			}
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, a := range d.apps {
		if a.srv.Shutdown(ctx) != nil {
			a.srv.Close()
		}
	}
	if d.cp != nil && d.cp.stop(stopGrace) {
		fmt.Fprintf(d.out, "Killed %s: it did not stop within %s.\n", d.cp.name, stopGrace)
	}
	if d.appLog != nil {
		d.appLog.Close()
	}
	if d.cp != nil {
		fmt.Fprintln(d.out, "Stopped.")
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
