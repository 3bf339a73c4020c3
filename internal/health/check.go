package health

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/dsrlab/dsrlab/topology"
)

// Dialer opens a connection whose socket carries mark: from inside a
// katran's namespace, where tc_healthcheck carries it to the mark's real.
type Dialer func(ctx context.Context, network, addr string, mark uint32) (net.Conn, error)

// maxAnswer bounds what a check reads of an answer.
const maxAnswer = 4096

// Run checks tg once through dial, within hc's timeout, to the VIP on
// tg's real, and says how long it took. tcp: the connection opens. http:
// GET hc.Path is answered 2xx or 3xx. udp-echo: a datagram is answered.
func Run(ctx context.Context, dial Dialer, tg Target) (time.Duration, error) {
	hc := tg.VIP.HealthCheck
	ctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	start := time.Now()
	at := netip.AddrPortFrom(tg.VIP.Address, hc.Port).String()
	network := "tcp"
	if hc.Type == topology.CheckUDPEcho {
		network = "udp"
	}
	c, err := dial(ctx, network, at, tg.Mark)
	if err != nil {
		return time.Since(start), err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	switch hc.Type {
	case topology.CheckHTTP:
		err = httpGet(c, tg.VIP.Address, hc.Path)
	case topology.CheckUDPEcho:
		err = udpEcho(c)
	}
	return time.Since(start), err
}

func httpGet(c net.Conn, host netip.Addr, path string) error {
	req := fmt.Sprintf("GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: dsrlab-health\r\nConnection: close\r\n\r\n", path, host)
	if _, err := c.Write([]byte(req)); err != nil {
		return err
	}
	line, err := bufio.NewReaderSize(c, maxAnswer).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no HTTP status line: %w", err)
	}
	// "HTTP/1.1 200 OK"
	fields := strings.Fields(line)
	if len(fields) < 2 || !strings.HasPrefix(fields[0], "HTTP/") || len(fields[1]) != 3 {
		return fmt.Errorf("not an HTTP answer: %q", strings.TrimSpace(line))
	}
	if fields[1][0] != '2' && fields[1][0] != '3' {
		return fmt.Errorf("HTTP status %s", fields[1])
	}
	return nil
}

func udpEcho(c net.Conn) error {
	if _, err := c.Write([]byte("dsrlab-health\n")); err != nil {
		return err
	}
	buf := make([]byte, maxAnswer)
	if _, err := c.Read(buf); err != nil {
		return fmt.Errorf("no answer: %w", err)
	}
	return nil
}
